"""Convolutional autoencoder (`ae`): reconstruction only, and the shared machinery of the autoencoder families.

G is an `AutoEncoderNet` (nn/autoencoder.py): encoder and decoder in one module, so the sampler, EMA and
checkpoints carry both. The loss is the mean squared error between an image and its reconstruction. An
autoencoder has no prior to sample from, so its samples decode a Gaussian FITTED to the codes: the mean and
covariance of the training codes, tracked as running averages during training (momentum `code_momentum`), and
G(z) = decoder(mean + L z) with L the covariance's Cholesky factor. Reports and grids call them "samples from a
Gaussian fitted to the codes"; they show what the decoder makes of plausible codes, not a learned distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.spec import Batch, DataSpec
from ..nn.autoencoder import AutoEncoderNet
from .base import Family, StepOutput
from .phases import Phase, StepContext


@dataclass
class AEConfig:
    latent_dim: int = 32        # code size
    width: int = 64             # channels of the decoder's last and the encoder's first conv; doubled per stage
    max_width: int = 512
    code_momentum: float = 0.01  # running mean / covariance of the codes (ae's sampling Gaussian)


class AE(Family):
    """Autoencoder; the base of vae and aae (which override `enc_dim`, `learn_sigma`, the phases and the loss)."""

    Config = AEConfig
    name = "ae"
    description = "convolutional autoencoder (reconstruction only); samples decode a Gaussian fitted to the codes"
    sample_note = "samples decode a Gaussian fitted to the training codes (an autoencoder has no prior)"
    learn_sigma = False
    has_encoder = True  # latent_of(x) gives a starting latent for `ganforge project`

    def __init__(self, cfg: Any, spec: DataSpec, generator_only: bool = False) -> None:
        if spec.kind != "image":
            raise ValueError(f"{self.name} needs images but '{spec.name}' holds {spec.kind}")
        if cfg.latent_dim < 1 or cfg.width < 1:
            raise ValueError(f"{self.name}: latent_dim and width must be >= 1, got {cfg.latent_dim}, {cfg.width}")
        super().__init__(cfg, spec, generator_only)
        self.G = AutoEncoderNet(tuple(spec.shape), self.code_dim, self.enc_dim, cfg.width, cfg.max_width,
                                learn_sigma=self.learn_sigma, mixture=self.mixture)
        self.D = None

    @property
    def mixture(self) -> tuple[int, float, float] | None:
        """(components, radius, std) when G(z) maps noise onto a mixture prior (aae), else None."""
        return None

    @property
    def code_dim(self) -> int:
        """The decoder's input width."""
        return int(self.cfg.latent_dim)

    @property
    def enc_dim(self) -> int:
        """The encoder's output width."""
        return int(self.cfg.latent_dim)

    def phase_specs(self) -> tuple[Phase, ...]:
        return (Phase("ae", ("G",), lr="lr_g", updates_ema=True),)

    def codes_of(self, x: Tensor) -> Tensor:
        """The code an image is decoded from (ae: the encoder's output; vae: its mean)."""
        return self.G.encode(x)

    @torch.no_grad()
    def latent_of(self, x: Tensor) -> Tensor:
        """The sampler latent z whose G(z) decodes x's code: the encoder's answer, mapped back through the prior
        (the start of `ganforge project --init encoder`)."""
        return self.G.code_to_prior(self.codes_of(x).float())

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.G.decode(self.codes_of(x))

    @torch.no_grad()
    def track_codes(self, codes: Tensor) -> None:
        """Move the sampling Gaussian (code_mean, code_tril) towards the batch's mean and covariance, in float32
        outside autocast (1% steps vanish in bf16); a batch with non-finite codes, or a covariance Cholesky cannot
        factor, leaves it as it was (the health monitor deals with the divergence)."""
        m = float(self.cfg.code_momentum)
        c = codes.detach().float()
        if len(c) < 2 or not bool(torch.isfinite(c).all()):
            return
        with torch.autocast(c.device.type, enabled=False):
            tril = self.G.code_tril.float()
            mean = (1 - m) * self.G.code_mean.float() + m * c.mean(0)
            cov = (1 - m) * (tril @ tril.T) + m * torch.cov(c.T).reshape(len(mean), len(mean))
            eye = torch.eye(len(mean), device=c.device)
            factor, info = torch.linalg.cholesky_ex(cov + 1e-5 * eye)
        if int(info) != 0:
            return
        self.G.code_mean.copy_(mean)
        self.G.code_tril.copy_(factor)

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if phase != "ae":
            raise ValueError(f"ae has the phase ae, not '{phase}'")
        codes = self.G.encode(batch.x)
        recon = F.mse_loss(self.G.decode(codes).float(), batch.x.float())
        if self.training and torch.is_grad_enabled():
            self.track_codes(codes)
        return StepOutput(recon, {"ae/recon": recon.detach(), "ae/code_std": codes.detach().float().std()})
