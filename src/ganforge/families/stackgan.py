"""StackGAN (Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked Generative
Adversarial Networks"): text to image in two stages, on the one trainer.

- Conditioning augmentation: G never reads the sentence embedding t itself but a code c ~ N(mu(t), sigma(t)^2)
  drawn by re-parametrisation, with kl_weight * KL(N(mu, sigma^2) || N(0, I)) added to G's loss (nn/stackgan.py);
  at sampling time c = mu, so that a seed and a caption give one image.
- Stage-I draws the image at 1/`scale` of the target size from (z, c1) and is judged by a Stage-I D on the real
  images downsampled to that size. After `stage1_steps` steps Stage-II trains: it refines Stage-I's image (Stage-I
  frozen, as in the paper, and run in eval mode: its code is mu and its BatchNorm statistics stay) with its own
  code c2 to the target size, judged by a Stage-II D on full-size reals.
  The stage lives in G's `stage` buffer, so checkpoints (and the EMA) carry it and a resumed run continues in the
  stage it stopped in; the progress line logs it (`stage`).
- Both Ds are matching-aware as in gan-int-cls (real image + wrong caption counts as fake, `wrong_weight`), with
  the text joined by concatenation or projection (`d_condition`); any adversarial loss works. The interpolation
  term of GAN-INT is not part of StackGAN (interp_weight 0).
- kl_weight defaults to 2.0, the coefficient of the public StackGAN configurations; the CA layer uses a leaky ReLU
  where the reference uses a ReLU, so that log sigma^2 may go below 0.
The sampler's images are always at the target size: Stage-I's upsampled (bilinear) while stage 1 trains, then
Stage-II's. `stage_outputs(z, t)` gives both, for comparing Stage-II with Stage-I upsampled (bench/text2image.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..nn.stackgan import StackGenerator, kl_to_standard_normal
from .base import StepOutput
from .ganintcls import PREVIEW_CAPTIONS, GANINTCLS, GANINTCLSConfig
from .phases import StepContext, runs_later, take


@dataclass
class StackGANConfig(GANINTCLSConfig):
    interp_weight: float = 0.0   # StackGAN has no GAN-INT term
    c_dim: int = 128             # conditioning augmentation's code (the paper's N_g = 128)
    kl_weight: float = 2.0       # weight of KL(N(mu, sigma^2) || N(0, I)) in G's loss
    scale: int = 2               # Stage-II's output / Stage-I's, per side
    stage1_steps: int = 3000     # steps of Stage-I before Stage-II trains
    s2_width: int = 64           # Stage-II's channels


class StackGAN(GANINTCLS):
    """Two-stage text-to-image GAN with conditioning augmentation (Zhang et al. 2017)."""

    Config = StackGANConfig
    name = "stackgan"
    description = "text to image in two stages, conditioning augmentation (Zhang 2017); captioned images"

    def standing_forward(self, net: nn.Module, inputs: Tensor, start: int = 0) -> None:
        """Nothing: Stage-II trains on a frozen Stage-I run in eval mode (c1 = mu, its statistics fixed), which a
        train-mode pass of the whole generator would not reproduce; the EMA copy keeps G's statistics."""

    def __init__(self, cfg: StackGANConfig, spec: DataSpec, generator_only: bool = False) -> None:
        if spec.kind != "image":
            raise ValueError(f"stackgan draws images; '{spec.name}' holds {spec.kind}")
        if cfg.scale < 2 or cfg.stage1_steps < 0 or cfg.kl_weight < 0 or cfg.c_dim < 1:
            raise ValueError("stackgan needs scale >= 2, stage1_steps >= 0, kl_weight >= 0 and c_dim >= 1")
        h, w = spec.shape[1:]
        self.low_hw = (max(4, round(h / cfg.scale)), max(4, round(w / cfg.scale)))
        super().__init__(cfg, spec, generator_only)
        if self.arch != "dcgan":
            raise ValueError("stackgan's stages are convolutional: arch must be auto or dcgan")

    def build_generator(self) -> nn.Module:
        c = self.cfg
        return StackGenerator(c.latent_dim, self.spec.text_dim, c.c_dim, tuple(self.spec.shape), self.low_hw,
                              c.width, c.max_width, c.s2_width, PREVIEW_CAPTIONS)

    def build_discriminator(self) -> nn.Module:
        channels = self.spec.shape[0]
        return nn.ModuleDict({"stage1": self.text_discriminator((channels, *self.low_hw)),
                              "stage2": self.text_discriminator(tuple(self.spec.shape))})

    # -- stages -----------------------------------------------------------------------------------
    @property
    def stage(self) -> int:
        return int(self.G.stage)

    def _update_stage(self, step: int) -> None:
        if self.stage == 1 and step >= self.cfg.stage1_steps:
            self.G.stage.fill_(2)

    def low_reals(self, x: Tensor) -> Tensor:
        return F.interpolate(x, size=self.low_hw, mode="area")

    def stage_outputs(self, z: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(Stage-I's image upsampled to the target size, Stage-II's image) for the same z and captions."""
        low = self.G.low(z, t)[0]
        return self.G.upsampled(low), self.G.high(low, t)[0]

    # -- training ---------------------------------------------------------------------------------
    def _fakes(self, n: int, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """This stage's fakes with the graph to G's trained stage, and that stage's (mu, logvar)."""
        z = self.noise(n)
        if self.stage == 1:
            return self.G.low(z, t)
        frozen = (self.G.stage1, self.G.ca1)
        was = [m.training for m in frozen]
        with torch.no_grad():  # Stage-I is frozen while Stage-II trains: eval mode, c1 = mu, no BatchNorm updates
            for m in frozen:
                m.eval()
            low = self.G.low(z, t)[0]
            for m, mode in zip(frozen, was):
                m.train(mode)
        return self.G.high(low, t)

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if ctx is not None:
            self._update_stage(ctx.step)
        stage = self.stage
        D = self.D[f"stage{stage}"]
        real, t = (self.low_reals(batch.x) if stage == 1 else batch.x), self.text(batch)
        if phase == "d":
            if runs_later(ctx, "g"):
                fakes = self._fakes(batch.size, t)
                ctx.handoff["fakes"] = (fakes, t)
                fake = fakes[0].detach()
            else:
                with torch.no_grad():
                    fake = self._fakes(batch.size, t)[0]
            out = self.critic_loss(D, real, fake, t)
            out.logs["stage"] = float(stage)
            return out
        if phase == "d_reg":
            return self.r1_phase(D, real, t)
        if phase == "g":
            shared = take(ctx, "fakes")
            (fake, mu, logvar), t_fake = shared if shared is not None and shared[0][0].shape[0] == batch.size else \
                (self._fakes(batch.size, t), t)
            adv = self.objective.g(D(self.augmented(fake), t_fake).float())
            kl = kl_to_standard_normal(mu.float(), logvar.float())
            loss = adv + self.cfg.kl_weight * kl
            return StepOutput(loss, {"g/adv": adv.detach(), "g/kl": kl.detach(), "g/loss": loss.detach()})
        raise ValueError(f"{self.name} has phases {', '.join(p.name for p in self.phase_specs())}, not '{phase}'")
