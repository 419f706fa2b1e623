"""FastGAN (Liu et al., ICLR 2021): few-shot image synthesis (100 to 1,000 images) on a small compute budget.

G is built from cheap up-sampling blocks with skip-layer excitation (SLE); D is a self-supervised
discriminator: besides its logit, two small decoders reconstruct the real image it sees from D's own
feature maps (the whole image at low resolution from the smallest map, and a random quadrant from the map one
halving before it), so D has to keep features that describe the image instead of only the few cues that
separate a small real set from G's images. The networks and how they are sized for any H x W are in
`ganforge.nn.fastgan`.

The loss: D minimises the adversarial loss (hinge by default, as the paper; any ganforge loss runs) plus
`recon_weight` x the reconstruction error on real images only; G minimises its adversarial loss. Every image D
sees passes through `augmented(x)`: the paper trains with DiffAugment (`--augment diffaugment`; its reference
code uses the `color,translation` policy). The decoders reconstruct the image as D saw it, augmented.

Where this differs from the paper, and why:
- Reconstruction error: the paper uses the LPIPS perceptual distance, whose VGG/AlexNet weights are not
  available offline here; this uses L1 on pixels (`recon_loss: l1`, or `mse`).
- Hinge: the reference code draws the hinge margin from U(0.8, 1.0) per step; ganforge's hinge loss has margin 1.
  The reference code also takes D's loss over every entry of D's logit map (9x9 at 100x100), a patch-wise loss:
  `patch_loss: true` does that; the default takes it on each image's mean logit, as every other ganforge D.
  G's loss is on each image's mean logit either way: for hinge and the wgan losses (linear in D's output) that
  is the loss over the entries; for ns and lsgan it is not. What D's phase logs (accuracy, r_t, D(x)), which
  the health monitor and ADA read, stays per image.
- Sizes: the defaults (`width` 16, `max_width` 256, `latent_dim` 256 as the reference code) are sized for CPU
  training: at 100x100 G has 7.3M parameters (6.4M of them in the latent projection, which is one matmul) and
  D 0.5M, and a step (batch 16, 2 cores) takes about twice a default dcgan step; `width: 32` takes four times.
  Every up-sampling conv feeds a GLU, so it has twice the output channels: G's compute grows with width^2
  and is about the same at every doubling. The paper's networks are far wider (1024 channels at 4x4).
  `d_width` sizes D (its trunk and decoders) apart from G. Speed is not smooth in the width: at 100x100, batch
  8, bf16, on 2 cores of an AMD EPYC, width 12 trained at 43.5 images/s and width 14 at 29.0 over 150 steps
  (1.5x slower for 1.36x the compute), while a 20-minute run of width 16 averaged 31 (0.259 s a step).
- Learning rates: the paper's Adam at 2e-4 with betas (0.5, 0.999) are ganforge's train defaults (train.lr_g,
  train.lr_d, train.beta1, train.beta2), so the family sets nothing there.
- BatchNorm in D (`d_batchnorm`, the paper's) mixes the samples of a batch, which the per-sample gradient
  penalty of WGAN-GP assumes it does not: set `d_batchnorm: false` for `loss: wgan-gp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch
from ..nn import FastGANDiscriminator, FastGANGenerator
from ..nn.fastgan import quadrant, resized
from .base import AdversarialConfig, AdversarialFamily, StepOutput, critic_logs
from .phases import StepContext

RECON_LOSSES = ("l1", "mse")
SPECTRAL_NORM = {True: "gd", False: "", "both": "gd", "d": "d", "g": "g", "none": ""}  # setting -> networks it covers


@dataclass
class FastGANConfig(AdversarialConfig):
    latent_dim: int = 256       # the reference code's nz
    loss: str = "hinge"         # the paper's
    width: int = 16             # channels of G's last map and D's stem, doubled per halving (CPU-sized; see above)
    d_width: int = 0            # D's own width (its stem's channels; its decoders follow) when > 0; 0: `width`
    double_conv: bool = False   # a second conv in G's 1st, 3rd ... up-sampling blocks (the reference code's)
    max_width: int = 256        # cap on channels per layer
    d_batchnorm: bool = True    # set False for WGAN-GP (the penalty is per-sample; BatchNorm mixes samples)
    spectral_norm: bool | str = True  # spectral normalisation of every conv: true (G and D, the reference code's),
                                      # "d" (D only), "g" (G only) or false
    sn_power_iterations: int = 1  # power-method iterations per training forward of a normalised conv (torch's and
                                  # the reference code's 1; the clipart recipe's 2: see clipart-fastgan.yaml)
    recon_weight: float = 1.0   # weight of D's reconstruction error on real images; 0 drops the decoders
    recon_loss: str = "l1"      # l1 | mse on pixels (the paper: LPIPS; see the module doc)
    patch_loss: bool = False    # D's adversarial loss on every entry of its logit map (the reference code's),
                                # not on their mean per image; G's loss is on the mean either way


class FastGAN(AdversarialFamily):
    """FastGAN: SLE generator, self-supervised auto-encoding discriminator; any adversarial loss, any image size."""

    Config = FastGANConfig
    name = "fastgan"
    description = "few-shot GAN: SLE generator, self-supervised D (Liu 2021); images of any HxW"

    def __init__(self, cfg: FastGANConfig, spec, generator_only: bool = False) -> None:
        if spec.kind != "image":
            raise ValueError(f"fastgan needs images but '{spec.name}' holds {spec.kind}; "
                             "use --family gan for 2-D points")
        for name, low, hint in (("width", 1, ""), ("d_width", 0, " (0: D takes model.width)")):
            value = getattr(cfg, name)
            if not low <= value <= cfg.max_width:
                raise ValueError(f"fastgan needs {low} <= model.{name} <= model.max_width{hint}, got {name}={value}, "
                                 f"max_width={cfg.max_width}")
        if cfg.recon_weight < 0:
            raise ValueError(f"model.recon_weight must be >= 0 (0 drops the decoders), got {cfg.recon_weight}")
        if cfg.recon_loss not in RECON_LOSSES:
            raise ValueError(f"model.recon_loss must be one of {', '.join(RECON_LOSSES)}, got {cfg.recon_loss!r}")
        if not isinstance(cfg.spectral_norm, (bool, str)) or cfg.spectral_norm not in SPECTRAL_NORM:
            raise ValueError(f"model.spectral_norm must be true, false, 'd' (D only) or 'g' (G only), "
                             f"got {cfg.spectral_norm!r}")
        if isinstance(cfg.sn_power_iterations, bool) or not isinstance(cfg.sn_power_iterations, int) \
                or cfg.sn_power_iterations < 1:
            raise ValueError(f"model.sn_power_iterations must be an integer >= 1, got {cfg.sn_power_iterations!r}")
        super().__init__(cfg, spec, generator_only)
        self._seen: list[tuple[Tensor, Tensor, Tensor]] = []
        self._patch_calls = 0  # critic calls left that give per-entry logits (D's real and fake, with patch_loss)
        self._image_logits: list[Tensor] = []  # those calls' logits averaged per image, for the logs

    def build_generator(self) -> nn.Module:
        c = self.cfg
        return FastGANGenerator(c.latent_dim, self.spec.shape, c.width, c.max_width,
                                "g" in SPECTRAL_NORM[c.spectral_norm], c.double_conv, c.sn_power_iterations)

    def build_discriminator(self) -> nn.Module:
        c = self.cfg
        return FastGANDiscriminator(self.spec.shape, c.d_width or c.width, c.max_width, c.d_batchnorm,
                                    "d" in SPECTRAL_NORM[c.spectral_norm],
                                    decoders=c.recon_weight > 0, sn_power_iterations=c.sn_power_iterations)

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        # with patch_loss, D's phase's first two calls (its real and fake batch) give per-entry logits; a
        # penalty's calls after them (WGAN-GP, R1) stay per image, as the penalties are defined
        patches = self._patch_calls > 0
        logits, small, mid = self.D.forward_with_maps(x, patches=patches)
        if patches:
            self._patch_calls -= 1
            self._image_logits.append(logits.detach().float().view(len(x), -1).mean(1))
        self._seen.append((x, small, mid))  # what D saw and its maps, in call order (real first in the D phase)
        return logits

    def reconstruction(self, x: Tensor, small: Tensor, mid: Tensor) -> Tensor:
        """D's reconstruction error on the images x it saw: the whole image from its smallest map, plus a random
        quadrant (one per batch, from the global RNG, so resume draws the same) from the map before it."""
        D, err = self.D, F.l1_loss if self.cfg.recon_loss == "l1" else F.mse_loss
        target = x.detach().float()
        whole = D.decode_whole(small).float()
        q = int(torch.randint(4, ()))
        part = D.decode_part(quadrant(mid, q)).float()
        return (err(whole, resized(target, tuple(whole.shape[-2:])))
                + err(part, resized(quadrant(target, q), tuple(part.shape[-2:]))))

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        self._seen = []
        self._patch_calls = 2 if phase == "d" and self.cfg.patch_loss else 0
        self._image_logits = []
        try:
            out = super().loss(phase, batch, ctx)
            if len(self._image_logits) == 2:  # per image, as every other D logs (the health monitor, ADA's r_t)
                out.logs.update(critic_logs(self.objective, out.logs["d/loss"], *self._image_logits))
            if phase != "d" or self.cfg.recon_weight == 0:
                return out
            recon = self.reconstruction(*self._seen[0])  # the real batch: D's first critic call
            out.logs["d/recon"] = recon.detach()
            return StepOutput(out.loss + self.cfg.recon_weight * recon, out.logs)
        finally:
            self._seen = []
            self._patch_calls = 0
            self._image_logits = []
