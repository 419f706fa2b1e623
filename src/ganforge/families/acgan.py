"""Auxiliary-classifier GAN (Odena et al., 2017): G gets the label, D does not but predicts it.

D has two heads on one trunk: the adversarial logit and a K-way classifier. Both players also minimise
the class cross-entropy: D on real images (true labels), G on its fakes (the labels they were drawn with).
`aux_weight` scales the class terms. G, sampling and `sample(y=...)` are those of cgan.

The paper's L_C also trains D's classifier on fakes (`aux_on_fakes: true`). Measured on Fashion-MNIST
(bench/conditional.py, 6,000 steps) that variant let D learn a class code of its own for fakes, which G
satisfied with a permutation of the classes: 20% of samples were of the requested class by the `fashion`
classifier. Trained on real images only, D's classifier stays anchored to the true labels.

`aux_loss: d2d` is ReACGAN (Kang et al., 2021): D's classifier becomes a unit-norm embedding of its features
with one learned proxy per class, trained with the data-to-data cross-entropy (nn.conditional.d2d_cross_entropy):
each sample is pulled to its class proxy and pushed from other-class samples of the batch, with margins that
stop the pull and the push once they are met. Both players use it (D on real images, G on its fakes).

`twin: true` is TAC-GAN (Gong et al., 2019): a second ("twin") classifier head on D's trunk learns the labels
of fakes, and G's class term becomes CE(classifier, fake) - CE(twin, fake). Plain ACGAN's G term alone
rewards fakes that are easy to classify, which shrinks each class to its most typical images (and can drop
a class whose images sit near another's); subtracting the twin's cross-entropy cancels that entropy bias so
that G matches each class's whole distribution (the paper's Theorem 1).

`d_conditional: true` gives the adversarial D the label as well (cgan's concatenating D) and the classifier a
trunk of its own. This is the layout the Fashion-MNIST recipe uses: with an unconditional D, G tends to draw one
image per class, because nothing else asks the images of one class to differ (bench/results/acgan_variants.json:
FID about 40 with any class term, 7.7 with this D, cgan's 7.1).

`aux_warmup: N` ramps G's class weight linearly from 0 to its value over the first N steps (D's classifier
learns the real labels from the start), so that G first learns the images from the adversarial game and only
then sorts them by label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch
from ..nn import (AuxClassifierDiscriminator, ConditionalAuxClassifierDiscriminator, ProxyEmbeddingHead,
                  SeparateAuxClassifierDiscriminator, d2d_cross_entropy)
from . import backbones
from .backbones import feature_dim
from .base import StepOutput
from .phases import StepContext
from .cgan import CGAN, CGANConfig


@dataclass
class ACGANConfig(CGANConfig):
    aux_weight: float = 1.0   # weight of the class cross-entropy for both players ...
    g_aux_weight: float = -1.0  # ... or, when >= 0, G's own weight (a weaker pull towards typical images)
    aux_on_fakes: bool = False  # D's classifier also trains on fakes (the paper's L_C); see the module doc
    twin: bool = False         # TAC-GAN's twin auxiliary classifier (Gong et al. 2019); see the module doc
    aux_loss: str = "ce"       # ce | d2d: ReACGAN's data-to-data cross-entropy (Kang et al. 2021); see the module doc
    d2d_temperature: float = 0.5
    d2d_margin: float = 0.98
    d2d_dim: int = 128         # d2d: the dimension of D's class embedding (embed_dim stays G's label embedding, as in cgan)
    shared_trunk: bool = True  # false: D's classifier gets a trunk of its own (same layout) instead of sharing D's
    d_conditional: bool = False  # the adversarial D also sees the label (cgan's concat D); the classifier has its own trunk
    aux_warmup: int = 0        # G's class weight ramps linearly from 0 over this many steps (D's classifier trains from step 0)


class ACGAN(CGAN):
    """ACGAN on a DCGAN or MLP backbone; any adversarial loss."""

    Config = ACGANConfig
    name = "acgan"
    description = "auxiliary-classifier GAN (Odena 2017); labelled data"

    def __init__(self, cfg: ACGANConfig, spec, generator_only: bool = False) -> None:
        if cfg.projection:
            raise ValueError("acgan's D does not take the label, so projection has no meaning; drop model.projection")
        if cfg.aux_loss not in ("ce", "d2d"):
            raise ValueError(f"model.aux_loss must be 'ce' or 'd2d', got {cfg.aux_loss!r}")
        if cfg.aux_loss == "d2d" and (cfg.twin or cfg.aux_on_fakes):
            raise ValueError("model.aux_loss=d2d trains its classifier on real images only; drop model.twin / aux_on_fakes")
        if not (cfg.d2d_temperature > 0 and 0 <= cfg.d2d_margin <= 1 and cfg.d2d_dim >= 1):
            raise ValueError("model.d2d_temperature must be > 0, model.d2d_margin in [0, 1] and model.d2d_dim >= 1")
        if cfg.twin and cfg.aux_on_fakes:
            raise ValueError("model.twin trains its own classifier on fakes; drop model.aux_on_fakes")
        if cfg.aux_warmup < 0:
            raise ValueError(f"model.aux_warmup must be >= 0 steps, got {cfg.aux_warmup}")
        if cfg.aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {cfg.aux_weight}")
        super().__init__(cfg, spec, generator_only)
        self._aux: list[tuple[Tensor, Tensor]] = []

    def build_discriminator(self) -> nn.Module:
        c, shape = self.cfg, tuple(self.spec.shape)
        base = backbones.discriminator(self.arch, shape, c)
        heads = self.n_classes * (2 if c.twin else 1)  # the twin's logits follow the classifier's
        if c.d_conditional:
            cond = super().build_discriminator()  # cgan's concat D (acgan never takes projection)
            cls_base = backbones.discriminator(self.arch, shape, c)
            d = ConditionalAuxClassifierDiscriminator(cond, cls_base, heads, feature_dim(cls_base, shape))
        elif c.shared_trunk:
            d = AuxClassifierDiscriminator(base, heads, feature_dim(base, shape))
        else:
            d = SeparateAuxClassifierDiscriminator(base, backbones.discriminator(self.arch, shape, c), heads,
                                                   feature_dim(base, shape))
        if c.aux_loss == "d2d":
            d.classifier = ProxyEmbeddingHead(feature_dim(base, shape), self.n_classes, c.d2d_dim)
        return d

    def g_aux_ramp(self, step: int | None) -> float:
        """The fraction of G's class weight in force at `step`: step / aux_warmup, capped at 1 (1 without a step)."""
        if step is None or self.cfg.aux_warmup <= 0:
            return 1.0
        return min(1.0, step / self.cfg.aux_warmup)

    def _class_loss(self, out: Tensor, y: Tensor) -> Tensor:
        """The class term on one head's output: cross-entropy on logits, or d2d on embeddings."""
        if self.cfg.aux_loss == "d2d":
            return d2d_cross_entropy(out, self.D.classifier.proxies, y, self.cfg.d2d_temperature, self.cfg.d2d_margin)
        return F.cross_entropy(out.float(), y)

    def _class_accuracy(self, out: Tensor, y: Tensor) -> Tensor:
        pred = (out.float() @ self.D.classifier.proxies.t()).argmax(1) if self.cfg.aux_loss == "d2d" else out.argmax(1)
        return (pred == y).float().mean()

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        adv, cls = self.D(x, cond) if self.cfg.d_conditional else self.D(x)
        self._aux.append((cls, cond))  # class logits with their labels, in call order (real, fake, penalties)
        return adv

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        self._aux = []
        out = super().loss(phase, batch, ctx)
        if phase not in ("d", "g"):  # a regulariser's phase (lazy R1) has no class term
            self._aux = []
            return out
        w, k = self.cfg.aux_weight, self.n_classes
        if phase == "g" and self.cfg.g_aux_weight >= 0:
            w = self.cfg.g_aux_weight
        if phase == "g":
            w = w * self.g_aux_ramp(ctx.step if ctx is not None else None)
        if phase == "d":
            (cls_real, y_real), (cls_fake, y_fake) = self._aux[0], self._aux[1]
            head = cls_real if self.cfg.aux_loss == "d2d" else cls_real[:, :k]
            ce = self._class_loss(head, y_real)
            if self.cfg.aux_on_fakes:
                ce = ce + F.cross_entropy(cls_fake.float(), y_fake)
            out.logs["d/cls"] = ce.detach()
            out.logs["d/cls_acc_real"] = self._class_accuracy(head.detach(), y_real)
            if self.cfg.twin:
                twin = F.cross_entropy(cls_fake[:, k:].float(), y_fake)
                out.logs["d/twin"] = twin.detach()
                ce = ce + twin
        else:
            cls_fake, y_fake = self._aux[0]
            ce = self._class_loss(cls_fake if self.cfg.aux_loss == "d2d" else cls_fake[:, :k], y_fake)
            out.logs["g/cls"] = ce.detach()
            if self.cfg.twin:
                twin = F.cross_entropy(cls_fake[:, k:].float(), y_fake)
                out.logs["g/twin"] = twin.detach()
                ce = ce - twin
        self._aux = []
        return StepOutput(out.loss + w * ce, out.logs)
