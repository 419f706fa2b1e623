"""Auxiliary-classifier GAN (Odena et al., 2017): G gets the label, D does not but predicts it.

D has two heads on one trunk: the adversarial logit and a K-way classifier. Both players also minimise
the class cross-entropy: D on real images (true labels), G on its fakes (the labels they were drawn with).
`aux_weight` scales the class terms. G, sampling and `sample(y=...)` are those of cgan.

The paper's L_C also trains D's classifier on fakes (`aux_on_fakes: true`). Measured on Fashion-MNIST
(bench/conditional.py, 6,000 steps) that variant let D learn a class code of its own for fakes, which G
satisfied with a permutation of the classes: 20% of samples were of the requested class by the `fashion`
classifier. Trained on real images only, D's classifier stays anchored to the true labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch
from ..nn import AuxClassifierDiscriminator
from . import backbones
from .backbones import feature_dim
from .base import StepOutput
from .phases import StepContext
from .cgan import CGAN, CGANConfig


@dataclass
class ACGANConfig(CGANConfig):
    aux_weight: float = 1.0   # weight of the class cross-entropy for both players
    aux_on_fakes: bool = False  # D's classifier also trains on fakes (the paper's L_C); see the module doc


class ACGAN(CGAN):
    """ACGAN on a DCGAN or MLP backbone; any adversarial loss."""

    Config = ACGANConfig
    name = "acgan"
    description = "auxiliary-classifier GAN (Odena 2017); labelled data"

    def __init__(self, cfg: ACGANConfig, spec, generator_only: bool = False) -> None:
        if cfg.projection:
            raise ValueError("acgan's D does not take the label, so projection has no meaning; drop model.projection")
        if cfg.aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {cfg.aux_weight}")
        super().__init__(cfg, spec, generator_only)
        self._aux: list[tuple[Tensor, Tensor]] = []

    def build_discriminator(self) -> nn.Module:
        c, shape = self.cfg, tuple(self.spec.shape)
        base = backbones.discriminator(self.arch, shape, c)
        return AuxClassifierDiscriminator(base, self.n_classes, feature_dim(base, shape))

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        adv, cls = self.D(x)
        self._aux.append((cls, cond))  # class logits with their labels, in call order (real, fake, penalties)
        return adv

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        self._aux = []
        out = super().loss(phase, batch, ctx)
        if phase not in ("d", "g"):  # a regulariser's phase (lazy R1) has no class term
            self._aux = []
            return out
        w = self.cfg.aux_weight
        if phase == "d":
            (cls_real, y_real), (cls_fake, y_fake) = self._aux[0], self._aux[1]
            ce = F.cross_entropy(cls_real.float(), y_real)
            if self.cfg.aux_on_fakes:
                ce = ce + F.cross_entropy(cls_fake.float(), y_fake)
            out.logs["d/cls"] = ce.detach()
            out.logs["d/cls_acc_real"] = (cls_real.argmax(1) == y_real).float().mean()
        else:
            cls_fake, y_fake = self._aux[0]
            ce = F.cross_entropy(cls_fake.float(), y_fake)
            out.logs["g/cls"] = ce.detach()
        self._aux = []
        return StepOutput(out.loss + w * ce, out.logs)
