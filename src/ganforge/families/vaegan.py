"""VAE/GAN (`vaegan`, Larsen et al. 2016): a VAE whose decoder is also a GAN generator, with the reconstruction
error measured in the discriminator's feature space instead of pixels.

Networks: G = encoder + decoder (nn/autoencoder.py; the sampler and EMA carry both), D = DCGAN's discriminator,
whose last conv layer's features (`forward_with_features`) are the space reconstructions are compared in.
Per image x, with z ~ q(z|x) (re-parametrised), x_rec = Dec(z) and x_p = Dec(z_p), z_p ~ N(0, I):
- rec  = mean over D's features of (f(x) - f(x_rec))^2       (the paper's Dis_l likelihood, up to constants)
- kl   = KL(q(z|x) || N(0, I)) / (pixels)                    (scaled per pixel, as vae's loss)
- adv  = the non-saturating GAN loss of D on x (real) against x_rec and x_p (fake)
Three phases, as in the paper's algorithm: "d" trains D on adv; "enc" trains the encoder on rec + beta x kl (no
GAN gradient); "dec" trains the decoder on gamma x rec + G's adversarial loss on x_rec and x_p. D's features are
taken with D frozen in the encoder's and decoder's phases (the trainer freezes what a phase does not train).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.spec import Batch
from ..losses import get_loss
from ..nn import DCGANDiscriminator
from .base import StepOutput, critic_logs
from .phases import Phase, StepContext
from .vae import VAE, gaussian_kl


@dataclass
class VAEGANConfig:
    latent_dim: int = 64
    width: int = 64
    max_width: int = 512
    beta: float = 1.0          # weight of the KL term in the encoder's loss
    gamma: float = 1.0         # weight of the feature reconstruction against the GAN loss in the decoder's loss
    kl_anneal_steps: int = 0
    dequantize: bool = False   # (vae's option; vaegan reports no likelihood)


class VAEGAN(VAE):
    Config = VAEGANConfig
    name = "vaegan"
    description = "VAE/GAN (Larsen 2016): VAE decoder = GAN generator, reconstruction in D's feature space"
    learn_sigma = False
    likelihood = False
    sample_note = ""  # G(z ~ N(0, I)), as a GAN's

    def __init__(self, cfg: VAEGANConfig, spec, generator_only: bool = False) -> None:
        super().__init__(cfg, spec, generator_only)
        self.objective = get_loss("ns")
        self.D = None if generator_only else DCGANDiscriminator(tuple(spec.shape), cfg.width, cfg.max_width)

    # the phases name the encoder and decoder inside G
    @property
    def E(self) -> nn.Module:
        return self.G.encoder

    @property
    def Dec(self) -> nn.Module:
        return self.G.decoder

    def phase_specs(self) -> tuple[Phase, ...]:
        return (Phase("d", ("D",), lr="lr_d"), Phase("enc", ("E",), lr="lr_g"),
                Phase("dec", ("Dec",), lr="lr_g", updates_ema=True))

    def elbo(self, x: Tensor, generator: torch.Generator | None = None, dequantize: bool = True) -> dict[str, Tensor]:
        raise ValueError("vaegan has no pixel likelihood (it reconstructs in D's feature space); use vae for an ELBO")

    def forward_pass(self, x: Tensor) -> dict[str, Tensor]:
        mu, logvar = self.posterior(x)
        n, d = mu.shape
        eps, z_p = (self.rows(n, lambda m: torch.randn(m, d)).to(mu.device) for _ in range(2))
        z = mu + torch.exp(0.5 * logvar) * eps
        return {"mu": mu, "logvar": logvar, "rec": self.G.decode(z), "prior": self.G.decode(z_p)}

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        x, obj = batch.x, self.objective
        if phase == "d":
            with torch.no_grad():
                out = self.forward_pass(x)
            real = self.D(x).float()
            fake_rec, fake_prior = self.D(out["rec"]).float(), self.D(out["prior"]).float()
            loss = 0.5 * (obj.d(real, fake_rec, 1.0) + obj.d(real, fake_prior, 1.0))
            with torch.no_grad():
                logs: dict[str, Any] = critic_logs(obj, loss, real, torch.cat([fake_rec, fake_prior]))
            return StepOutput(loss, logs)
        if phase in ("enc", "dec"):
            out = self.forward_pass(x)
            with torch.no_grad():
                _, f_real = self.D.forward_with_features(x)
            logit_rec, f_rec = self.D.forward_with_features(out["rec"])
            rec = (f_real.float() - f_rec.float()).pow(2).mean()
            if phase == "enc":
                kl = gaussian_kl(out["mu"], out["logvar"]).mean() / x[0].numel()
                beta = self.beta_at(ctx.step if ctx is not None else None)
                return StepOutput(rec + beta * kl, {"ae/recon": rec.detach(), "vae/kl": kl.detach() * x[0].numel()})
            adv = 0.5 * (obj.g(logit_rec.float()) + obj.g(self.D(out["prior"]).float()))
            return StepOutput(self.cfg.gamma * rec + adv, {"g/loss": adv.detach(), "ae/recon": rec.detach()})
        raise ValueError(f"vaegan has the phases d, enc and dec, not '{phase}'")
