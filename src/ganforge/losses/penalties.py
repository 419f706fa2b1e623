"""Gradient penalties on the discriminator.

Both run in fp32 even inside a bf16 autocast region: the penalty is a difference of gradient norms (WGAN-GP:
(||g|| - 1)^2), which bf16's 8-bit mantissa would swamp, and its double backward is where rounding compounds.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al., 2017) on random interpolates; works for (N,C,H,W) and (N,F)."""
    real, fake = real.detach().float(), fake.detach().float()
    alpha = torch.rand(real.size(0), *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    with torch.autocast(real.device.type, enabled=False):
        (grad,) = torch.autograd.grad(critic(x_hat).float().sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, *, touch_all: bool = False) -> Tensor:
    """R1 (Mescheder et al., 2018): E[||grad_x D(x)||^2] on real data; scale by gamma/2 outside.

    touch_all adds 0 * D(x): the same value and gradients, but every parameter of D (a last bias has no
    gradient through R1) is in the graph, as distributed data parallel needs when R1 is a phase of its own
    (as in Karras et al.'s reference code)."""
    x = real.detach().float().requires_grad_(True)
    with torch.autocast(x.device.type, enabled=False):
        logits = critic(x).float()
        (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        r1 = grad.flatten(1).pow(2).sum(1).mean()
        return r1 + 0.0 * logits.mean() if touch_all else r1
