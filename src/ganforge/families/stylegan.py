"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), pure PyTorch.

The networks are in `nn/stylegan.py` (mapping network, modulated/demodulated convolutions, noise inputs, the skip
generator from a learned constant, the residual discriminator with minibatch std; its docstring lists where they
differ from the paper's: bilinear / average-pool resampling instead of FIR filters, any H x W by a non-square
constant grid and a centre crop). This file is the training recipe:

- the non-saturating logistic loss by default (any loss of `ganforge.losses` works), through
  AdversarialFamily's D and G phases, so every image D sees passes through `augmented(x)` (ADA / DiffAugment)
  and the standard logs (d/acc_real, d/rt, stats/*) stay;
- lazy R1 on reals: AdversarialFamily's "d_reg" phase every `r1_every` = 16 steps (the paper's setting), the
  penalty weighted x 16 and D's Adam at lr * 16/17, betas ** (16/17). gamma (`r1_weight`) defaults to 0.01, the
  value of Karras et al.'s CIFAR-10 (32x32) configuration: the paper's 10 is for 1024x1024 faces, and their
  heuristic gamma = 0.0002 H W / batch gives 0.003-0.03 for 28x28 to 64x64 images at batch 32-64;
- style mixing regularisation: with probability `mixing` (0.9, the paper's) a sample gets two latents, w(z1)
  for the layers before a random crossover layer and w(z2) from there (drawn per sample, not per batch);
- path-length regularisation as its own lazy G phase "g_reg" every `pl_every` = 4 steps on batch / 2 samples:
  (|J_w^T y| - a)^2 with y ~ N(0, I) / sqrt(H W) images and a the running mean of the lengths (decay 0.01),
  weighted by `pl_weight` x `pl_every` (the paper's weight is 2). Off by default (`pl_weight` 0): its double
  backward through G roughly doubles a G step on CPU, and it improves smoothness more than FID;
- the running average of w (`G.mapping.w_avg`, decay 0.995, updated from w(z1) in every training forward) and
  the truncation trick w' = w_avg + psi (w - w_avg): `sample(n, z=..., truncation=psi)`, psi in [0, 1], else
  `model.truncation`, which G applies whenever it is called as G(z). The family declares truncation = "w", so
  the sampler, `ganforge sample --truncation`, the server, the Lambda handler and the site pass psi here
  instead of scaling z (which the mapping network's normalisation would undo), and the exported ONNX graph
  takes psi as a second input `truncation` (N,); model.truncation is then only the default they use.
- noise inputs: training draws fresh maps each forward (through `rows`, so a multi-process run draws what one
  process would); sampling and export use fixed maps stored in G ("const", `sample_noise`) or none, so a seed
  always gives the same image.

Settings the paper uses that live elsewhere: Adam lr 0.002 and betas (0, 0.99) for both players
(`--set train.lr_g=0.002 train.lr_d=0.002 train.beta1=0 train.beta2=0.99`), the EMA of G (train.ema_decay), the
mapping network's 8 layers of 512 (`model.mapping_layers=8 model.w_dim=512 model.latent_dim=512`; the
defaults here, 2 layers of 128, keep CPU steps cheap) and 512 channels at the low resolutions (model.max_width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.spec import Batch
from ..nn.stylegan import NOISE_MODES, StyleGAN2Discriminator, StyleGAN2Generator
from .base import AdversarialConfig, AdversarialFamily, StepOutput
from .phases import Phase, StepContext


@dataclass
class StyleGANConfig(AdversarialConfig):
    latent_dim: int = 128        # z (the paper: 512)
    w_dim: int = 128             # w (the paper: 512)
    mapping_layers: int = 2      # fully connected layers of the mapping network (the paper: 8; fewer for CPU)
    mapping_lr_mul: float = 0.01  # the mapping network's learning-rate multiplier (the paper's 0.01)
    width: int = 32              # channels at the output resolution, doubled per halving ...
    max_width: int = 256         # ... up to this many (the paper: 512)
    mixing: float = 0.9          # probability of style mixing per sample (0 disables it)
    w_avg_beta: float = 0.995    # decay of the running average of w
    truncation: float = 1.0      # psi that G(z) applies (sampling, export): 1 = no truncation, 0 = always w_avg
    sample_noise: str = "const"  # noise inputs outside training: const (fixed maps in the checkpoint) | none
    mbstd_group: int = 4         # minibatch-std group size
    r1_weight: float = 0.01      # R1 gamma (see the module doc)
    r1_every: int = 16           # lazy R1: its own D phase every 16 steps
    pl_weight: float = 0.0       # path-length regularisation weight (the paper: 2); 0 disables it
    pl_every: int = 4            # lazy path-length regularisation: its own G phase every 4 steps
    pl_batch_shrink: int = 2     # it runs on batch / pl_batch_shrink samples
    pl_decay: float = 0.01       # decay of the running mean path length


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


class StyleGAN(AdversarialFamily):
    """StyleGAN2: style-based G with a mapping network, residual D, lazy R1, style mixing, truncation."""

    Config = StyleGANConfig
    name = "stylegan"
    description = "StyleGAN2 (Karras 2020): mapping network, modulated convs, noise inputs; images of any HxW"
    truncation = "w"  # the truncation trick moves w towards w_avg (z is pixel-normalised, so scaling it does nothing)

    def __init__(self, cfg: StyleGANConfig, spec, generator_only: bool = False) -> None:
        if spec.kind != "image":
            raise ValueError(f"stylegan needs images but '{spec.name}' holds {spec.kind}; use --family gan for 2-D points")
        _check(cfg.latent_dim >= 1 and cfg.w_dim >= 1, "model.latent_dim and model.w_dim must be >= 1")
        _check(cfg.mapping_layers >= 1, f"model.mapping_layers must be >= 1 (the paper: 8), got {cfg.mapping_layers}")
        _check(cfg.mapping_lr_mul > 0, f"model.mapping_lr_mul must be > 0 (the paper: 0.01), got {cfg.mapping_lr_mul}")
        _check(cfg.width >= 1 and cfg.max_width >= cfg.width,
               f"model.width must be >= 1 and model.max_width >= width, got {cfg.width} and {cfg.max_width}")
        _check(0.0 <= cfg.mixing <= 1.0, f"model.mixing is a probability in [0, 1] (the paper: 0.9), got {cfg.mixing}")
        _check(0.0 <= cfg.w_avg_beta < 1.0, f"model.w_avg_beta must be in [0, 1) (e.g. 0.995), got {cfg.w_avg_beta}")
        _check(0.0 <= cfg.truncation <= 1.0, f"model.truncation (psi) must be in [0, 1] (1 = none), got {cfg.truncation}")
        _check(cfg.sample_noise in NOISE_MODES,
               f"model.sample_noise must be one of {', '.join(NOISE_MODES)}, got {cfg.sample_noise!r}")
        _check(cfg.mbstd_group >= 1, f"model.mbstd_group must be >= 1 (e.g. 4), got {cfg.mbstd_group}")
        _check(cfg.r1_weight >= 0, f"model.r1_weight (R1 gamma) must be >= 0, got {cfg.r1_weight}")
        _check(cfg.pl_weight >= 0, f"model.pl_weight must be >= 0 (0 disables path-length regularisation), got {cfg.pl_weight}")
        _check(cfg.pl_every >= 1 and cfg.pl_batch_shrink >= 1,
               f"model.pl_every and model.pl_batch_shrink must be >= 1, got {cfg.pl_every} and {cfg.pl_batch_shrink}")
        _check(0.0 < cfg.pl_decay <= 1.0, f"model.pl_decay must be in (0, 1] (e.g. 0.01), got {cfg.pl_decay}")
        super().__init__(cfg, spec, generator_only)
        self.register_buffer("pl_mean", torch.zeros(()))  # running mean path length (in the checkpoint)

    def build_generator(self) -> nn.Module:
        c = self.cfg
        return StyleGAN2Generator(c.latent_dim, tuple(self.spec.shape), w_dim=c.w_dim, mapping_layers=c.mapping_layers,
                                  width=c.width, max_width=c.max_width, lr_mul=c.mapping_lr_mul,
                                  w_avg_beta=c.w_avg_beta, truncation=c.truncation, noise_mode=c.sample_noise)

    def build_discriminator(self) -> nn.Module:
        c = self.cfg
        return StyleGAN2Discriminator(tuple(self.spec.shape), c.width, c.max_width, c.mbstd_group)

    def phase_specs(self) -> tuple[Phase, ...]:
        specs = super().phase_specs()
        if self.cfg.pl_weight > 0:
            specs += (Phase("g_reg", ("G",), lr="lr_g", every=self.cfg.pl_every, optimizer="g", lazy=True,
                            double_backward=True),)
        return specs

    # -- what a training forward draws ------------------------------------------------------------------
    def noise_maps(self, n: int) -> list[Tensor]:
        """Fresh per-pixel noise for each synthesis layer, (n, 1, h, w) each."""
        dev = self.device
        return [self.rows(n, lambda m, s=s: torch.randn(m, 1, *s, device=dev)) for s in self.G.synthesis.noise_shapes]

    def mixing_inputs(self, n: int) -> dict[str, Any]:
        """The G(...) keywords of style mixing: a second latent and per-sample crossover layers, the layer count
        (no mixing) for a sample with probability 1 - mixing. Empty when mixing is off."""
        p, layers = self.cfg.mixing, self.G.num_ws
        if p <= 0:
            return {}
        z2 = self.noise(n)

        def draw(m: int) -> Tensor:
            cut = torch.randint(1, layers, (m,))
            return torch.where(torch.rand(m) < p, cut, torch.full_like(cut, layers))

        return {"z2": z2, "cutoff": self.rows(n, draw).to(self.device)}

    def styles(self, n: int, track: bool = True) -> Tensor:
        """ws (n, num_ws, w_dim) as training draws them: fresh latents, style mixing, w_avg tracked."""
        return self.G.styles(self.noise(n), track=track, truncation=1.0, **self.mixing_inputs(n))

    def generate(self, n: int) -> tuple[Tensor, Any]:
        z = self.noise(n)
        mix = self.mixing_inputs(n)
        return self.G(z, 1.0, self.noise_maps(n), track=True, **mix), None

    # -- losses -------------------------------------------------------------------------------------------
    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if phase != "g_reg":
            return super().loss(phase, batch, ctx)
        c = self.cfg
        n = max(1, batch.size // c.pl_batch_shrink)
        # in fp32, like the gradient penalties: a difference of gradient norms, differentiated once more
        with torch.autocast(self.device.type, enabled=False):
            ws = self.styles(n, track=False)
            img = self.G.synthesize(ws, self.noise_maps(n))
            h, w = img.shape[2:]
            y = self.rows(n, lambda m: torch.randn(m, *img.shape[1:], device=img.device)) / math.sqrt(h * w)
            (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()  # (n,)
            with torch.no_grad():
                self.pl_mean.copy_(torch.lerp(self.pl_mean, lengths.mean(), c.pl_decay))
            penalty = (lengths - self.pl_mean).square().mean()
        # + 0 * every G parameter: parameters the penalty does not reach (the last toRGB bias) stay in the graph,
        # as distributed data parallel needs (cf. d_reg)
        untouched = sum(p.reshape(-1)[0] for p in self.G.parameters())
        loss = c.pl_weight * c.pl_every * penalty + 0.0 * untouched
        return StepOutput(loss, {"g/pl": penalty.detach(), "g/pl_mean": self.pl_mean.clone()})

    @torch.no_grad()
    def after_step(self, phase: str) -> None:
        # WGAN's clipping also after lazy R1, which steps D's optimizer once more (on by default here)
        super().after_step("d" if phase == "d_reg" else phase)

    # -- sampling -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, truncation: float | None = None, **cond: Any) -> Tensor:
        """n samples from `net` (default self.G) with the truncation trick at psi = `truncation` (default
        model.truncation; 1 = none) and the fixed noise maps (model.sample_noise), so a z always gives one image."""
        G = net if net is not None else self.G
        if truncation is not None and not 0.0 <= float(truncation) <= 1.0:
            raise ValueError(f"truncation (psi) must be in [0, 1] (1 = none), got {truncation}")
        if z is None:
            z = self.noise(n, generator=generator)
        return G(z, truncation, G.noise_mode)
