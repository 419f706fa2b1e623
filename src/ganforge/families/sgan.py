"""Semi-supervised GAN (Salimans et al., 2016): D is a (K+1)-way classifier trained on a few labels.

D outputs K class logits l(x). The "fake" class gets a fixed logit of 0 (the K-logit trick), so
p(real | x) = Z / (Z + 1) with Z = sum_k exp(l_k): the adversarial logit is logsumexp(l(x)), and every
adversarial loss of `ganforge.losses` applies to it (with `ns`, D's unsupervised loss is exactly the
paper's). D minimises `unsup_weight` x that loss on all training images and fakes plus the K-way
cross-entropy on the labelled subset; G minimises feature matching: the squared distance between the
batch means of D's last hidden layer on real images and on fakes (`g_objective: adversarial` uses the
adversarial loss instead).

The labelled subset is `labels_per_class` images of every class of the training data, picked with
`label_seed` (reproducible; the indices are in `labelled_index`); `labels_per_class: 0` uses every label.
`supervised_only: true` trains the same D on the same labelled subset with the cross-entropy alone (no G,
no unlabelled images): the baseline that shows what the GAN adds. `classify(x)` gives D's class logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch
from ..nn import MLPGenerator, NoisyMLPClassifier
from .base import AdversarialConfig, AdversarialFamily, StepOutput
from .phases import Phase, StepContext, take


@dataclass
class SGANConfig(AdversarialConfig):
    latent_dim: int = 100
    labels_per_class: int = 10       # labelled images per class (0: all labels)
    label_seed: int = 0              # picks the labelled subset
    labelled_batch: int = 100        # labelled images per D step (all of them when fewer)
    unsup_weight: float = 0.5        # weight of D's real/fake loss (0.5 as in the paper's code)
    g_objective: str = "feature_matching"  # feature_matching | adversarial
    supervised_only: bool = False    # baseline: D trained with the cross-entropy on the labelled subset only
    d_hidden: list[int] = field(default_factory=lambda: [1000, 500, 250, 250, 250])
    input_noise: float = 0.3         # std of D's Gaussian input noise
    hidden_noise: float = 0.5        # std of the Gaussian noise on D's hidden layers
    hidden: int = 500                # G: units per hidden layer
    depth: int = 2                   # G: hidden layers (BatchNorm + ReLU)


class SGAN(AdversarialFamily):
    """Semi-supervised GAN with feature matching on the Salimans et al. MLP networks."""

    Config = SGANConfig
    name = "sgan"
    classifies = True
    description = "semi-supervised GAN (Salimans 2016): (K+1)-way D on a few labels, feature matching"

    def __init__(self, cfg: SGANConfig, spec, generator_only: bool = False) -> None:
        if spec.n_classes < 2:
            raise ValueError(f"sgan needs labelled data with >= 2 classes but '{spec.name}' has "
                             f"{spec.n_classes}; use class sub-folders (DATA/<class>/*.png) or builtin:fashion-mnist")
        if cfg.g_objective not in ("feature_matching", "adversarial"):
            raise ValueError(f"sgan g_objective must be feature_matching or adversarial, got '{cfg.g_objective}'")
        if cfg.labels_per_class < 0 or cfg.labelled_batch < 1:
            raise ValueError("labels_per_class must be >= 0 and labelled_batch >= 1")
        if cfg.supervised_only and cfg.lecam_weight > 0:
            raise ValueError("supervised_only trains D as a classifier alone, without the adversarial loss LeCam "
                             "regularises; set model.lecam_weight=0")
        super().__init__(cfg, spec, generator_only)
        self._lab_x: Tensor | None = None
        self._lab_y: Tensor | None = None
        self.labelled_index: Tensor | None = None
        self._feats: list[Tensor] = []
        self._logits: list[Tensor] = []

    @property
    def n_classes(self) -> int:
        return int(self.spec.n_classes)

    def build_generator(self) -> nn.Module:
        c = self.cfg
        return MLPGenerator(c.latent_dim, self.spec.shape, c.hidden, c.depth, tanh=self.spec.kind == "image",
                            batchnorm=True)

    def build_discriminator(self) -> nn.Module:
        c = self.cfg
        return NoisyMLPClassifier(tuple(self.spec.shape), self.n_classes, tuple(c.d_hidden), c.input_noise,
                                  c.hidden_noise)

    # -- the labelled subset --------------------------------------------------------------------------
    def bind_data(self, data: Any) -> None:
        """Pick the labelled subset from the training data: labels_per_class per class, with label_seed."""
        if data.y is None:
            raise ValueError("sgan needs labels for its labelled subset; use class sub-folders or a labelled built-in")
        y = data.y.long()
        n = self.cfg.labels_per_class
        g = torch.Generator().manual_seed(self.cfg.label_seed)
        if n == 0:
            index = torch.arange(len(y))
        else:
            picks = []
            for k in range(self.n_classes):
                members = torch.nonzero(y == k).flatten()
                if len(members) < n:
                    raise ValueError(f"--labels-per-class {n}: class {k} ({self.spec.class_names[k] if self.spec.class_names else k}) "
                                     f"has only {len(members)} images; use at most {len(members)}")
                picks.append(members[torch.randperm(len(members), generator=g)[:n]])
            index = torch.cat(picks)
        self.labelled_index = index
        self._lab_x = data.to_float(data.x[index])
        self._lab_y = y[index]

    def labelled_batch(self) -> tuple[Tensor, Tensor]:
        if self._lab_x is None:
            raise RuntimeError("sgan has no labelled subset: build it with build_run (which calls bind_data)")
        if self._lab_x.device != self.device:  # moved once, not copied to the device every step
            self._lab_x, self._lab_y = self._lab_x.to(self.device), self._lab_y.to(self.device)
        n = len(self._lab_y)
        idx = torch.randperm(n)[: self.cfg.labelled_batch] if n > self.cfg.labelled_batch else torch.arange(n)
        idx = idx.to(self.device)
        return self._lab_x[idx], self._lab_y[idx]

    # -- D as a classifier and as a critic --------------------------------------------------------------
    def classify(self, x: Tensor) -> Tensor:
        """D's K class logits (N, K)."""
        return self.D(x)

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        logits, feats = self.D.forward_with_features(x)
        self._feats.append(feats)
        self._logits.append(logits)
        return torch.logsumexp(logits.float(), 1)  # the K-logit trick: the fake class's logit is 0

    def phase_specs(self) -> tuple[Phase, ...]:
        specs = super().phase_specs()
        if self.cfg.supervised_only:  # the classifier baseline: D's supervised loss only, no G
            return (Phase("d", ("D",), lr="lr_d"),)
        return specs

    def supervised(self) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = self.labelled_batch()
        logits = self.D(x).float()
        ce = F.cross_entropy(logits, y)
        return ce, {"d/sup": ce.detach(), "d/sup_acc": (logits.argmax(1) == y).float().mean().detach()}

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        self._feats, self._logits = [], []
        if phase == "d" and self.cfg.supervised_only:
            ce, logs = self.supervised()
            return StepOutput(ce, {**logs, "d/loss": ce.detach()})
        if phase == "d":
            out = super().loss("d", batch, ctx)
            ce, logs = self.supervised()
            out.logs.update(logs)
            if batch.y is not None:  # how well D classifies the unlabelled batch (monitoring only)
                out.logs["d/unlabelled_acc"] = (self._logits[0].argmax(1) == batch.y).float().mean().detach()
            total = self.cfg.unsup_weight * out.loss + ce
            out.logs["d/loss"] = total.detach()
            self._feats, self._logits = [], []
            return StepOutput(total, out.logs)
        if phase != "g":  # a regulariser's phase (lazy R1), or an unknown name (the base class says which)
            out = super().loss(phase, batch, ctx)
            self._feats, self._logits = [], []
            return out
        if self.cfg.g_objective == "adversarial":
            out = super().loss("g", batch, ctx)
            self._feats, self._logits = [], []
            return out
        shared = take(ctx, "fakes")
        fake = shared[0] if shared is not None and shared[0].shape[0] == batch.size else self.generate(batch.size)[0]
        with torch.no_grad():
            real_feats = self.D.forward_with_features(batch.x)[1].float()
        fake_feats = self.D.forward_with_features(fake)[1].float()
        fm = (real_feats.mean(0) - fake_feats.mean(0)).pow(2).mean()
        self._feats, self._logits = [], []
        return StepOutput(fm, {"g/loss": fm.detach(), "g/feature_matching": fm.detach()})
