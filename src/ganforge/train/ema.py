"""The exponential moving average of G's weights that sampling, evaluation and export use."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019).

    The decay warms up as min(decay, (1 + k) / (10 + k)) over the first G updates k, so early samples
    are not dominated by the random initialisation. Buffers (BatchNorm statistics) are copied.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_p = [p for p in self.module.parameters()]
        src_p = [p.detach() for p in source.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1.0 - d)
        for b_ema, b in zip(self.module.buffers(), source.buffers()):
            b_ema.copy_(b)
        self.updates += 1
