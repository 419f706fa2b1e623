"""Adversarial objectives as pure functions of discriminator logits.

Every loss has a D side and a G side. `real_target` (one-sided label smoothing, Salimans et al. 2016)
applies to the real term of the D side of the cross-entropy and least-squares losses only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn.functional as F
from torch import Tensor


def bce_d(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Original GAN D loss (Goodfellow et al., 2014): -log D(x) - log(1 - D(G(z)))."""
    real = F.binary_cross_entropy_with_logits(real_logits, real_logits.new_full(real_logits.shape, real_target))
    fake = F.softplus(fake_logits).mean()  # -log(1 - sigmoid(l)) = softplus(l)
    return real + fake


def minimax_g(fake_logits: Tensor) -> Tensor:
    """Saturating minimax G loss (Goodfellow et al., 2014): minimise log(1 - D(G(z))) = -softplus(l)."""
    return -F.softplus(fake_logits).mean()


def nonsaturating_g(fake_logits: Tensor) -> Tensor:
    """Non-saturating G loss (Goodfellow et al., 2014): minimise -log D(G(z)) = softplus(-l)."""
    return F.softplus(-fake_logits).mean()


def lsgan_d(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Least-squares D loss (Mao et al., 2017), a-b-c = 0-1-1 coding: ((D(x) - 1)^2 + D(G(z))^2) / 2."""
    return 0.5 * ((real_logits - real_target).pow(2).mean() + fake_logits.pow(2).mean())


def lsgan_g(fake_logits: Tensor) -> Tensor:
    """Least-squares G loss (Mao et al., 2017): (D(G(z)) - 1)^2 / 2."""
    return 0.5 * (fake_logits - 1.0).pow(2).mean()


def wasserstein_d(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Critic loss (Arjovsky et al., 2017): -(E[D(x)] - E[D(G(z))])."""
    return fake_logits.mean() - real_logits.mean()


def wasserstein_g(fake_logits: Tensor) -> Tensor:
    """Wasserstein G loss (Arjovsky et al., 2017): -E[D(G(z))]."""
    return -fake_logits.mean()


def hinge_d(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Hinge D loss (Lim & Ye, 2017): relu(1 - D(x)) + relu(1 + D(G(z)))."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


@dataclass(frozen=True)
class AdversarialLoss:
    """A named objective: its D and G sides, how to read logits, and what the trainer must add.

    threshold  the logit value separating "real" from "fake" for D accuracy (None: midpoint of the batch)
    prob       True when sigmoid(logit) is D's probability that x is real (so D(x) is logged as such)
    clip       WGAN weight clipping is applied to D after each D step
    gp         a gradient penalty (WGAN-GP) is part of the D loss
    """

    name: str
    d: Callable[..., Tensor]
    g: Callable[[Tensor], Tensor]
    threshold: float | None
    prob: bool
    clip: bool = False
    gp: bool = False
    smoothing: bool = True  # whether real_target < 1 means anything for this loss


LOSSES: dict[str, AdversarialLoss] = {
    "minimax": AdversarialLoss("minimax", bce_d, minimax_g, 0.0, True),
    "ns": AdversarialLoss("ns", bce_d, nonsaturating_g, 0.0, True),
    "lsgan": AdversarialLoss("lsgan", lsgan_d, lsgan_g, 0.5, False),
    "wgan": AdversarialLoss("wgan", wasserstein_d, wasserstein_g, None, False, clip=True, smoothing=False),
    "wgan-gp": AdversarialLoss("wgan-gp", wasserstein_d, wasserstein_g, None, False, gp=True, smoothing=False),
    "hinge": AdversarialLoss("hinge", hinge_d, wasserstein_g, 0.0, False, smoothing=False),
}


def get_loss(name: str) -> AdversarialLoss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}'; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]
