"""Variational autoencoder (`vae`, Kingma & Welling 2014), with the beta-VAE weight (Higgins et al. 2017) and KL
annealing (Bowman et al. 2016).

- Encoder q(z|x) = N(mu(x), diag(exp(logvar(x)))), prior p(z) = N(0, I), sampled by re-parametrisation
  z = mu + exp(logvar / 2) * eps.
- Decoder p(x|z) = N(decoder(z), diag(sigma_c^2)): a Gaussian with one learned standard deviation per channel
  (G.log_sigma), so the likelihood, not a hand-set weight, balances reconstruction against the KL term.
- Data are dequantised (Theis et al. 2016): the uint8 pixels u in {0..255}, mapped to x = u / 127.5 - 1, get
  uniform noise of one grey level, U(0, 1 / 127.5). The ELBO of a continuous density on dequantised data is a lower
  bound on the discrete data's log-likelihood, so the bits per dimension reported,
      bpd = (-ELBO + D log 127.5) / (D log 2)          (D = C x H x W; log 127.5: the [-1, 1] scale's Jacobian)
  are an upper bound on the model's true bits per dimension.
- Training minimises (NLL + beta_t KL) / D, with beta_t = beta x min(1, step / kl_anneal_steps) (beta_t = beta
  without annealing). Samples are the decoder's mean at z ~ N(0, I) (the usual VAE samples; drawing the pixel
  noise as well would add grain of sigma_c, not detail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..data.spec import Batch
from .ae import AE
from .base import StepOutput
from .phases import Phase, StepContext

LOG_2PI = math.log(2 * math.pi)
GREY_LEVEL = 1 / 127.5  # one uint8 step on the [-1, 1] scale


@dataclass
class VAEConfig:
    latent_dim: int = 32
    width: int = 64
    max_width: int = 512
    beta: float = 1.0            # weight of the KL term (1: the ELBO; > 1: beta-VAE)
    kl_anneal_steps: int = 0     # ramp beta linearly from 0 over this many steps (0: no annealing)
    dequantize: bool = True      # add U(0, one grey level) to the training images


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row: 0.5 sum(mu^2 + exp(logvar) - 1 - logvar)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def gaussian_nll(x: Tensor, mean: Tensor, log_sigma: Tensor) -> Tensor:
    """-log N(x; mean, sigma_c^2) per image, summed over pixels; log_sigma (C,) one per channel."""
    ls = log_sigma.view(1, -1, *([1] * (x.dim() - 2)))
    return (0.5 * ((x - mean) * torch.exp(-ls)).pow(2) + ls + 0.5 * LOG_2PI).flatten(1).sum(1)


def bits_per_dim(neg_elbo: Tensor, dims: int) -> Tensor:
    """-ELBO (nats per image, [-1, 1] scale) -> bits per dimension of the 8-bit data (see the module docstring)."""
    return (neg_elbo + dims * math.log(127.5)) / (dims * math.log(2))


class VAE(AE):
    """VAE; `elbo(x)` gives the per-image ELBO terms and bits per dimension."""

    Config = VAEConfig
    name = "vae"
    description = "variational autoencoder (Kingma 2014): ELBO, beta-VAE and KL annealing; reports bits/dim"
    sample_note = "samples are the decoder's mean at z ~ N(0, I) (no pixel noise drawn)"
    learn_sigma = True
    likelihood = True

    def __init__(self, cfg: VAEConfig, spec, generator_only: bool = False) -> None:
        if cfg.beta < 0 or cfg.kl_anneal_steps < 0:
            raise ValueError(f"vae: beta and kl_anneal_steps must be >= 0, got {cfg.beta}, {cfg.kl_anneal_steps}")
        super().__init__(cfg, spec, generator_only)

    @property
    def enc_dim(self) -> int:
        return 2 * int(self.cfg.latent_dim)  # mu and logvar

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, logvar) of q(z|x), logvar clamped to [-30, 20] so exp() stays finite."""
        h = self.G.encode(x).float()
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def codes_of(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def beta_at(self, step: int | None) -> float:
        cfg = self.cfg
        if step is None or cfg.kl_anneal_steps <= 0:
            return float(cfg.beta)
        return float(cfg.beta) * min(1.0, step / cfg.kl_anneal_steps)

    def elbo(self, x: Tensor, generator: torch.Generator | None = None, dequantize: bool = True) -> dict[str, Tensor]:
        """Per-image terms on images x in [-1, 1]: nll (nats), kl (nats), elbo = -(nll + kl), bpd (bits per
        dimension, from one posterior sample); dequantised with one grey level of uniform noise unless told not."""
        if dequantize:  # rows(): in a K-process run each rank keeps its slice of the global batch's draws
            x = x.float() + self.rows(len(x), lambda m: torch.rand(m, *x.shape[1:], generator=generator),
                                      generator).to(x.device) * GREY_LEVEL
        mu, logvar = self.posterior(x)
        eps = self.rows(len(mu), lambda m: torch.randn(m, mu.shape[1], generator=generator), generator).to(mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        nll = gaussian_nll(x.float(), self.G.decode(z).float(), self.G.log_sigma.float())
        kl = gaussian_kl(mu, logvar)
        dims = x[0].numel()
        return {"nll": nll, "kl": kl, "elbo": -(nll + kl), "bpd": bits_per_dim(nll + kl, dims)}

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if phase != "ae":
            raise ValueError(f"vae has the phase ae, not '{phase}'")
        terms = self.elbo(batch.x, dequantize=self.cfg.dequantize)
        dims = batch.x[0].numel()
        beta = self.beta_at(ctx.step if ctx is not None else None)
        loss = (terms["nll"] + beta * terms["kl"]).mean() / dims
        with torch.no_grad():
            logs: dict[str, Any] = {"ae/recon": terms["nll"].mean() / dims, "vae/kl": terms["kl"].mean(),
                                    "vae/bpd": terms["bpd"].mean(), "vae/beta": beta,
                                    "vae/sigma": self.G.log_sigma.exp().mean()}
        return StepOutput(loss, logs)
