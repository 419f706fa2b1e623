"""Adversarial autoencoder (`aae`, Makhzani et al. 2015): an autoencoder whose codes are pushed towards a prior by
discriminators on the codes instead of a KL term.

Priors (model.prior):
- "gaussian": the code z (latent_dim) against N(0, I);
- "categorical": the code is [z, y], z (latent_dim) against N(0, I) and y = softmax(logits) (categories) against
  one-hot vectors drawn uniformly. This is the paper's unsupervised clustering (its section 6): the decoder must
  rebuild the image from a near one-hot y plus a style z, so y comes to name a cluster. `cluster(x)` gives the
  argmax of y; `ganforge sample --code c0=K` decodes cluster K with random styles (y is a categorical code, like
  infogan's).
- "mixture": z against a mixture of `categories` Gaussians on a circle of radius 2 in the first two dimensions
  (standard deviation 0.5 there, N(0, I) in the others).

With a categorical prior, balance_weight > 0 adds log K - H(mean of y over the batch), the marginal-entropy term of
CatGAN (Springenberg 2016) and IMSAT (Hu et al. 2017): the per-sample discriminator on y makes each y one-hot but
cannot see clusters going unused. 0 (the default) is the paper's AAE.

Each step runs two phases: "d" trains the code discriminators (prior samples real, encoder codes fake; the
non-saturating loss), "g" trains encoder and decoder on the reconstruction error (mean squared) plus
adv_weight x the encoder's adversarial loss against the discriminators (the paper's reconstruction and
regularisation phases, taken together). Sampling decodes prior draws: G(z) reads [z, one-hot] for "categorical"
and maps the mixture's N(0, I) noise onto a random component for "mixture".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch
from ..losses import get_loss
from ..nn.autoencoder import CodeDiscriminator, mixture_from_noise
from .ae import AE
from .base import StepOutput
from .codes import Code, LatentCodes
from .phases import Phase, StepContext

PRIORS = ("gaussian", "categorical", "mixture")


@dataclass
class AAEConfig:
    latent_dim: int = 8          # the continuous code z
    width: int = 64
    max_width: int = 512
    prior: str = "gaussian"      # gaussian | categorical | mixture
    categories: int = 10         # categorical: clusters; mixture: components
    adv_weight: float = 1.0      # weight of the encoder's adversarial loss against the reconstruction
    balance_weight: float = 0.0  # categorical: weight of log K - H(batch mean of y) (0: the paper's AAE)
    d_hidden: int = 512
    mixture_radius: float = 2.0
    mixture_std: float = 0.5


class CodeCritics(nn.Module):
    """The code discriminators: `z` on the continuous code, `y` on the categories (categorical prior only)."""

    def __init__(self, z_dim: int, y_dim: int, hidden: int) -> None:
        super().__init__()
        self.z = CodeDiscriminator(z_dim, hidden)
        self.y = CodeDiscriminator(y_dim, hidden) if y_dim else None


class AAE(LatentCodes, AE):
    Config = AAEConfig
    name = "aae"
    description = "adversarial autoencoder (Makhzani 2015): Gaussian, categorical (clustering) or mixture prior"
    sample_note = ""  # G(z ~ prior), as a GAN's (not ae's fitted Gaussian)

    def __init__(self, cfg: AAEConfig, spec, generator_only: bool = False) -> None:
        if cfg.prior not in PRIORS:
            raise ValueError(f"aae: prior must be one of {', '.join(PRIORS)}, got '{cfg.prior}'")
        if cfg.prior != "gaussian" and cfg.categories < 2:
            raise ValueError(f"aae: a {cfg.prior} prior needs categories >= 2, got {cfg.categories}")
        if cfg.prior == "mixture" and cfg.latent_dim < 2:
            raise ValueError("aae: the mixture prior lives in the first two code dimensions; set latent_dim >= 2")
        self.y_dim = int(cfg.categories) if cfg.prior == "categorical" else 0
        self._codes = (Code("c0", "categorical", self.y_dim, int(cfg.latent_dim)),) if self.y_dim else ()
        super().__init__(cfg, spec, generator_only)
        self.objective = get_loss("ns")
        self.D = None if generator_only else CodeCritics(int(cfg.latent_dim), self.y_dim, cfg.d_hidden)

    # -- codes: the categorical prior's y is a code, as infogan's are ---------------------------------
    @property
    def codes(self) -> tuple[Code, ...]:
        return self._codes

    @property
    def code_dim(self) -> int:
        return int(self.cfg.latent_dim) + self.y_dim

    @property
    def enc_dim(self) -> int:
        return self.code_dim  # z, then y's logits

    @property
    def latent_dim(self) -> int:
        return self.code_dim

    def split(self, h: Tensor) -> tuple[Tensor, Tensor | None]:
        """Encoder output -> (z, y probabilities or None)."""
        k = int(self.cfg.latent_dim)
        return h[:, :k], (F.softmax(h[:, k:].float(), dim=1) if self.y_dim else None)

    def codes_of(self, x: Tensor) -> Tensor:
        z, y = self.split(self.G.encode(x))
        return z if y is None else torch.cat([z, y.to(z.dtype)], 1)

    @torch.no_grad()
    def cluster(self, x: Tensor) -> Tensor:
        """The category (argmax of y) of each image (categorical prior)."""
        if not self.y_dim:
            raise ValueError("cluster() needs an aae trained with prior=categorical")
        return self.G.encode(x)[:, int(self.cfg.latent_dim):].argmax(1)

    # -- the prior ------------------------------------------------------------------------------------
    @property
    def mixture(self) -> tuple[int, float, float] | None:
        cfg = self.cfg
        return (int(cfg.categories), float(cfg.mixture_radius), float(cfg.mixture_std)) if cfg.prior == "mixture" else None

    def prior(self, n: int) -> tuple[Tensor, Tensor | None]:
        """n draws (z, one-hot y or None) from the prior, on the training RNG."""
        k = int(self.cfg.latent_dim)
        z = self.rows(n, lambda m: torch.randn(m, k)).to(self.device)
        if self.mixture is not None:
            z = mixture_from_noise(z, *self.mixture)
        y = (F.one_hot(self.rows(n, lambda m: torch.randint(self.y_dim, (m,))), self.y_dim).float().to(self.device)
             if self.y_dim else None)
        return z, y

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """G's input: N(0, I) noise, then (categorical prior) a uniform one-hot category."""
        def draw(m: int) -> Tensor:
            z = torch.randn(m, int(self.cfg.latent_dim), generator=generator)
            if not self.y_dim:
                return z
            return torch.cat([z, F.one_hot(torch.randint(self.y_dim, (m,), generator=generator), self.y_dim).float()], 1)

        return self.rows(n, draw, generator).to(self.device)

    # -- training -------------------------------------------------------------------------------------
    def phase_specs(self) -> tuple[Phase, ...]:
        return (Phase("d", ("D",), lr="lr_d"), Phase("g", ("G",), lr="lr_g", updates_ema=True))

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        obj = self.objective
        if phase == "d":
            with torch.no_grad():
                z_fake, y_fake = self.split(self.G.encode(batch.x))
            z_real, y_real = self.prior(batch.size)
            real_logits, fake_logits = self.D.z(z_real).float(), self.D.z(z_fake.float()).float()
            loss = obj.d(real_logits, fake_logits, 1.0)
            logs: dict[str, Any] = {"d/loss_z": loss.detach()}
            if self.y_dim:
                ry, fy = self.D.y(y_real).float(), self.D.y(y_fake).float()
                loss_y = obj.d(ry, fy, 1.0)
                loss = loss + loss_y
                logs["d/loss_y"] = loss_y.detach()
            with torch.no_grad():
                logs.update({"d/loss": loss.detach(), "d/real": torch.sigmoid(real_logits).mean(),
                             "d/fake": torch.sigmoid(fake_logits).mean(),
                             "d/acc_real": (real_logits > 0).float().mean(),
                             "d/acc_fake": (fake_logits < 0).float().mean()})
            return StepOutput(loss, logs)
        if phase == "g":
            h = self.G.encode(batch.x)
            z, y = self.split(h)
            code = z if y is None else torch.cat([z, y.to(z.dtype)], 1)
            recon = F.mse_loss(self.G.decode(code).float(), batch.x.float())
            adv = obj.g(self.D.z(z.float()).float())
            if y is not None:
                adv = adv + obj.g(self.D.y(y).float())
            loss = recon + self.cfg.adv_weight * adv
            logs = {"ae/recon": recon.detach(), "g/loss": adv.detach()}
            if y is not None and self.cfg.balance_weight > 0:
                # the per-sample D on y cannot see that whole clusters go unused; this batch term can: it is 0 when
                # the batch's average y is uniform over the categories and grows as clusters empty
                mean_y = y.mean(0)
                imbalance = math.log(self.y_dim) + (mean_y * mean_y.clamp(min=1e-8).log()).sum()
                loss = loss + self.cfg.balance_weight * imbalance
            if y is not None:
                with torch.no_grad():
                    used = torch.bincount(y.argmax(1), minlength=self.y_dim).float() / len(y)
                    logs["aae/confidence"] = y.max(1).values.mean()
                    logs["aae/clusters_used"] = (used > 0.5 / self.y_dim).float().sum()
            return StepOutput(loss, logs)
        raise ValueError(f"aae has the phases d and g, not '{phase}'")
