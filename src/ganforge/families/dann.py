"""Domain-adversarial training (`dann`, Ganin et al. 2016): a classifier trained on a labelled source domain whose
features a domain discriminator must not be able to tell from an unlabelled target domain's, so that it works on
the target domain too.

Networks (the names follow the family contract, where D is the classifier a run produces, as sgan's):
- D: the label classifier, a feature extractor (three stride-2 3x3 convs with BatchNorm and ReLU, dropout after the second and third, global average
  pool, a linear layer to `feature_dim` with ReLU) and a linear class head; `classify(x)` gives its logits, and
  `ganforge evaluate --classifier --data builtin:TARGET` measures it on the target domain's labelled test split.
- G: the domain discriminator, an MLP (feature_dim -> d_hidden -> d_hidden -> 1) on the features, fed through a
  gradient-reversal layer: identity forward, -lambda x the gradient backward, so one backward pass trains the
  discriminator to tell the domains apart and the feature extractor to make them alike.

One phase per step: cross-entropy on a labelled source batch plus the domain discriminator's binary cross-entropy
on that batch's features (domain 1) and on an equal batch of target images (domain 0, drawn from `model.target`'s
training split, labels unused); both batches go through the feature extractor in one pass, so its BatchNorm
layers normalise the two domains together, as the running statistics used at test time do. lambda follows Ganin et al.'s schedule, lambda_p = domain_weight x (2 / (1 +
exp(-10 p)) - 1) with p = step / schedule_steps (capped at 1), or stays at domain_weight (schedule=constant).
domain_weight = 0 is the source-only baseline: the same classifier, no domain term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from .base import Family, StepOutput
from .phases import Phase, StepContext


class GradientReversal(torch.autograd.Function):
    """y = x forward; dL/dx = -lam x dL/dy backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, lam: float) -> Tensor:
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.lam * grad, None


def reverse_gradient(x: Tensor, lam: float) -> Tensor:
    return GradientReversal.apply(x, lam)


class DomainClassifier(nn.Module):
    """x (N, C, H, W) -> class logits (N, K); `features(x)` (N, feature_dim) and `head` split it."""

    def __init__(self, shape: tuple[int, ...], n_classes: int, width: int = 32, feature_dim: int = 128) -> None:
        super().__init__()
        c, layers = shape[0], []
        for k in range(3):
            layers += [nn.Conv2d(c, width * 2**k, 3, 2, 1, bias=False), nn.BatchNorm2d(width * 2**k),
                       nn.ReLU(True)]
            if k:
                layers.append(nn.Dropout2d(0.1))
            c = width * 2**k
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, feature_dim),
                                   nn.ReLU(True))
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


@dataclass
class DANNConfig:
    target: str = "builtin:fashion-mnist-m"  # the unlabelled target domain (its training split's images)
    width: int = 32
    feature_dim: int = 128
    d_hidden: int = 256
    domain_weight: float = 1.0     # lambda's ceiling; 0: source only (no domain discriminator)
    schedule: str = "ganin"        # ganin (2 / (1 + exp(-10 p)) - 1) | constant
    schedule_steps: int = 3000     # p = step / schedule_steps


class DANN(Family):
    Config = DANNConfig
    name = "dann"
    description = "domain-adversarial classifier (Ganin 2016): labelled source + unlabelled target (model.target)"
    kind = "classifier"
    needs = "labelled"
    classifies = True
    truncation = None
    truncation_reason = "dann draws no samples: it is a classifier"

    def __init__(self, cfg: DANNConfig, spec: DataSpec, generator_only: bool = False) -> None:
        if spec.kind != "image" or not spec.n_classes:
            raise ValueError(f"dann needs labelled images (builtin:fashion-mnist, class sub-folders); '{spec.name}' "
                             "has none")
        if cfg.domain_weight < 0 or cfg.schedule not in ("ganin", "constant") or cfg.schedule_steps < 1:
            raise ValueError("dann: domain_weight must be >= 0, schedule ganin or constant, schedule_steps >= 1")
        if not cfg.target:
            raise ValueError("dann needs a target domain: --set model.target=builtin:fashion-mnist-m (or a folder)")
        super().__init__(cfg, spec, generator_only)
        self.D = DomainClassifier(tuple(spec.shape), int(spec.n_classes), cfg.width, cfg.feature_dim)
        self.G = nn.Sequential(nn.Linear(cfg.feature_dim, cfg.d_hidden), nn.ReLU(True),
                               nn.Linear(cfg.d_hidden, cfg.d_hidden), nn.ReLU(True), nn.Linear(cfg.d_hidden, 1))
        self.target_x: Tensor | None = None

    @property
    def latent_dim(self) -> int:
        return 0

    def bind_data(self, data: Any) -> None:
        """Load the target domain's training images at the source's size and channels (labels dropped)."""
        from ..data import load_data

        shape = tuple(self.spec.shape)
        target = load_data(self.cfg.target, size=shape[1:], channels=shape[0])
        if tuple(target.spec.shape) != shape:
            raise ValueError(f"target domain {self.cfg.target} has images {tuple(target.spec.shape)}, the source "
                             f"{shape}: give --size / --channels that both can take")
        self.target_x = target.x

    def phase_specs(self) -> tuple[Phase, ...]:
        return (Phase("dann", ("D", "G"), lr="lr_d"),)

    def lam(self, step: int | None) -> float:
        cfg = self.cfg
        if cfg.schedule == "constant" or step is None:
            return float(cfg.domain_weight)
        p = min(1.0, step / cfg.schedule_steps)
        return float(cfg.domain_weight) * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)

    def classify(self, x: Tensor) -> Tensor:
        return self.D(x)

    def target_batch(self, n: int) -> Tensor:
        if self.target_x is None:
            raise ValueError("dann's target images are not loaded: the trainer calls bind_data first")
        idx = self.rows(n, lambda m: torch.randint(len(self.target_x), (m,)))
        return self.target_x[idx].to(self.device).float() / 127.5 - 1

    @property
    def device(self) -> torch.device:
        return next(self.D.parameters()).device

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if phase != "dann":
            raise ValueError(f"dann has the phase dann, not '{phase}'")
        xs, ys = batch.x, batch.y
        n = len(xs)
        if self.cfg.domain_weight <= 0:  # source only; + 0 x G's parameters keeps them in the graph (DDP)
            logits = self.D(xs).float()
            cls = F.cross_entropy(logits, ys)
            unused = sum(p.reshape(-1)[0] for p in self.G.parameters())
            return StepOutput(cls + 0.0 * unused, {"dann/class_loss": cls.detach(),
                                                   "dann/source_acc": (logits.argmax(1) == ys).float().mean()})
        # one pass over both domains, so BatchNorm normalises them together in training as at test time
        feats = self.D.features(torch.cat([xs, self.target_batch(n).to(xs.dtype)]))
        f_s = feats[:n]
        logits = self.D.head(f_s).float()
        cls = F.cross_entropy(logits, ys)
        logs: dict[str, Any] = {"dann/class_loss": cls.detach(), "dann/source_acc": (logits.argmax(1) == ys).float().mean()}
        lam = self.lam(ctx.step if ctx is not None else None)
        dom = self.G(reverse_gradient(feats, lam)).flatten().float()
        truth = torch.cat([torch.ones(len(xs)), torch.zeros(len(xs))]).to(dom.device)
        dom_loss = F.binary_cross_entropy_with_logits(dom, truth)
        logs.update({"dann/domain_loss": dom_loss.detach(), "dann/lambda": lam,
                     "dann/domain_acc": ((dom > 0).float() == truth).float().mean()})
        return StepOutput(cls + dom_loss, logs)

    @torch.no_grad()
    def sample(self, n: int, **kw: Any) -> Tensor:
        raise ValueError("dann is a classifier: it draws no samples; measure it with `ganforge evaluate --ckpt RUN "
                         "--classifier --data builtin:TARGET`")
