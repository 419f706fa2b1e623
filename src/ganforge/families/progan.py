"""Progressive GAN (Karras et al., 2018): G and D grow from a coarse grid to the target size, fading each new
level in.

What the paper does, and what this family keeps:
- Growing by images shown. Each level trains `stable_kimg` thousand real images at its resolution, then the
  next level fades in over `fade_kimg` thousand: alpha rises linearly from 0 to 1 while G's output blends
  the new toRGB with the upsampled previous one and D mirrors it with fromRGB (nn/progan.py). The reals are
  blended the same way: (1 - alpha) * up(pool(x)) + alpha * x at the new level (the reference code's FadeLOD).
  The paper shows 800k images per phase, the reference code 600k; the defaults here (20k + 20k) are sized for
  CPU runs: a 28x28 target (levels 7, 14, 28) fades its last level in from 60k to 80k images (steps 938 to
  1,250 at batch 64).
  `stable_kimg = fade_kimg = 0` trains the target level from the start (the paper's no-growing ablation).
- The images shown are counted by D's phase (the global batch: the local batch x the number of processes) in
  the buffer `images_shown`; the level and alpha of a step follow from the count before it (`schedule`), and
  G keeps them in its buffers (`level`, `alpha`), so a checkpoint holds them and a resume continues
  mid-fade-in bit for bit. `stage_boundaries(batch_size)` says where each level's fade-in and stable phase
  start (images and steps); `stage_changed` is True after a D phase that began a new one, and the step logs
  carry `progan/level`, `progan/resolution` (the level's height) and `progan/alpha`.
- At each step G draws images at the current level's resolution and D sees the reals average-pooled to it.
  `sample()` (G(z)) always returns the full target size: while growing, the current level's images are
  nearest-upsampled to it. Any H x W works: see nn/progan.py (`progan_levels`).
- No truncation trick (Family.truncation None): G normalises each latent to the sphere first, so scaling z
  changes nothing, and the paper has none; every runtime refuses psi != 1 instead of ignoring it.
- Equalized learning rate in every layer, pixel norm in G, the minibatch standard deviation in D (groups of
  `mbstd_group`, the reference code's 4).
- The loss: WGAN-GP (lambda 10) plus the drift term `drift` * E[D(x)^2] (epsilon_drift = 0.001) on the reals,
  n_critic 1. Any loss of ganforge.losses runs; the drift term is added to each (0 drops it).

Where it differs: the reference code resets Adam's moments whenever a fade-in starts or ends; the trainer owns
the optimizers here, so they carry on (new layers start from zero moments anyway). Its per-resolution batch
sizes and learning rates are not modelled: train.* apply to every level. Its Adam settings are lr 0.001,
betas (0, 0.99): set them with --set train.lr_g=1e-3 train.lr_d=1e-3 train.beta1=0 train.beta2=0.99.
Under distributed data parallel every parameter a phase trains must be in its graph, so the layers not in use
yet are added as 0 * p (zero gradients): Adam's step count then advances for them while they wait, and their
first real steps are less bias-corrected than in one process, where they have no gradient until used.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..data.spec import Batch
from ..nn.progan import ProGANDiscriminator, ProGANGenerator, pool2, up2
from .base import AdversarialConfig, AdversarialFamily, StepOutput
from .phases import StepContext


@dataclass
class ProGANConfig(AdversarialConfig):
    latent_dim: int = 128      # the paper: 512
    loss: str = "wgan-gp"      # the paper's WGAN-GP, with the drift term below
    width: int = 32            # channels at the target resolution, doubled per coarser level ...
    max_width: int = 256       # ... up to this (the paper: 16 at 1024x1024 up to 512)
    stable_kimg: float = 20.0  # thousands of real images each level trains fully faded in (the paper: 800)
    fade_kimg: float = 20.0    # thousands of real images over which the next level fades in (the paper: 800)
    drift: float = 0.001       # epsilon_drift: weight of E[D(x)^2] on the reals in D's loss; 0 drops it
    mbstd_group: int = 4       # group size of D's minibatch standard deviation; 0 disables it


class StageStart(NamedTuple):
    """Where one phase of the schedule starts: `level` fading in (fading=True) or trained fully faded in."""

    level: int
    resolution: tuple[int, int]
    fading: bool
    images: int   # the number of real images shown before the phase's first step
    step: int     # its first step at the given global batch size


class ProGAN(AdversarialFamily):
    """Progressive growing of G and D with fade-ins; any adversarial loss, any image size."""

    Config = ProGANConfig
    name = "progan"
    grows = True  # stages: level l fading in, then stable (Family.grows)
    truncation = None  # no truncation trick: psi z would give the same images (see the module docstring)
    truncation_reason = "its generator normalises each latent to the sphere, so scaling z by psi changes nothing"
    description = "progressive growing GAN (Karras 2018): G and D grow from ~4x4 with fade-ins; images of any HxW"

    def __init__(self, cfg: ProGANConfig, spec, generator_only: bool = False) -> None:
        if spec.kind != "image":
            raise ValueError(f"progan needs images but '{spec.name}' holds {spec.kind}; use --family gan for 2-D points")
        if cfg.width < 1 or cfg.max_width < 1:
            raise ValueError(f"width and max_width must be >= 1, got {cfg.width} and {cfg.max_width}")
        for key in ("stable_kimg", "fade_kimg", "drift"):
            value = getattr(cfg, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{key} must be a finite number >= 0, got {value}")
        if cfg.mbstd_group < 0:
            raise ValueError(f"mbstd_group must be >= 0 (0 disables the minibatch std), got {cfg.mbstd_group}")
        super().__init__(cfg, spec, generator_only)
        self.register_buffer("images_shown", torch.zeros((), dtype=torch.int64))
        self.stage_changed = False
        self._record: list[Tensor] | None = None

    def build_generator(self) -> nn.Module:
        return ProGANGenerator(self.cfg.latent_dim, self.spec.shape, self.cfg.width, self.cfg.max_width)

    def build_discriminator(self) -> nn.Module:
        return ProGANDiscriminator(self.spec.shape, self.cfg.width, self.cfg.max_width, self.cfg.mbstd_group)

    # -- the schedule -----------------------------------------------------------------------------
    @property
    def levels(self) -> tuple[tuple[int, int], ...]:
        """(height, width) of every level, coarsest first."""
        return self.G.levels

    @property
    def stable_images(self) -> int:
        return round(self.cfg.stable_kimg * 1000)

    @property
    def fade_images(self) -> int:
        return round(self.cfg.fade_kimg * 1000)

    def schedule(self, shown: int) -> tuple[int, float]:
        """(level, alpha) after `shown` real images: level 0 for stable_images, then per level l >= 1 a fade-in
        of fade_images (alpha = images into it / fade_images) and a stable phase of stable_images (alpha 1);
        the last level stays once faded in."""
        s, f, top = self.stable_images, self.fade_images, len(self.levels) - 1
        if top == 0 or shown < s:
            return 0, 1.0
        if s + f == 0:
            return top, 1.0
        k = shown - s
        level, into = k // (s + f) + 1, k % (s + f)
        if level > top:
            return top, 1.0
        return (level, into / f) if into < f else (level, 1.0)

    def stage_boundaries(self, batch_size: int) -> list[StageStart]:
        """Every phase of the schedule with the images shown before it and its first step at `batch_size` (the
        global batch): the first step k with k * batch_size >= its start. Phases of zero length are left out."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        s, f = self.stable_images, self.fade_images
        phases = [(0, False, 0)]
        for lv in range(1, len(self.levels)):
            phases += [(lv, True, lv * s + (lv - 1) * f), (lv, False, lv * (s + f))]
        kept = [p for p, nxt in zip(phases, phases[1:] + [None]) if nxt is None or nxt[2] > p[2]]
        return [StageStart(lv, self.levels[lv], fading, start, -(-start // batch_size)) for lv, fading, start in kept]

    def describe_stage(self) -> str:
        """The stage G and D train in now, e.g. 'level 2 (28x28) fading in (alpha 0.40)'."""
        level, alpha = self.progress
        h, w = self.levels[level]
        return f"level {level} ({h}x{w})" + (f" fading in (alpha {alpha:.2f})" if alpha < 1.0 else "")

    @property
    def progress(self) -> tuple[int, float]:
        """The (level, alpha) G and D train at now."""
        return self.G._level, self.G._alpha

    @staticmethod
    def _stage_index(level: int, alpha: float) -> int:
        return 2 * level - (1 if alpha < 1.0 else 0)  # 0: level 0; 2l - 1: fading l in; 2l: l fully in

    def _advance(self, n: int) -> None:
        """Set this step's level and alpha from the images shown so far, then count the n of this step."""
        shown = int(self.images_shown)
        level, alpha = self.schedule(shown)
        self.stage_changed = self._stage_index(level, alpha) != self._stage_index(*self.progress)
        self.G.set_progress(level, alpha)
        with torch.no_grad():
            self.images_shown.fill_(shown + n)

    def stage_reals(self, x: Tensor) -> Tensor:
        """Real images (N, C, H, W) as D sees them at the current level: pooled to its size, and while it
        fades in, blended with their pooled-and-upsampled version by alpha (as G's output is)."""
        level, alpha = self.progress
        for _ in range(len(self.levels) - 1 - level):
            x = pool2(x)
        if alpha < 1.0:
            coarse = up2(pool2(x), self.levels[level])
            x = coarse + self.G.alpha.to(x.dtype) * (x - coarse)
        return x

    # -- the AdversarialFamily hooks ---------------------------------------------------------------
    def generate(self, n: int) -> tuple[Tensor, Any]:
        return self.G(self.noise(n), full=False), None

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        _, alpha = self.progress
        logits = self.D(x, self.G.alpha if alpha < 1.0 else None)
        if self._record is not None:
            self._record.append(logits)  # in call order: the reals first in D's phase (see loss)
        return logits

    def _anchor(self, params: list[nn.Parameter]) -> Tensor | float:
        """0 * one element of each parameter: the same loss and gradients, but the parameters are in the graph,
        as distributed data parallel needs of every parameter it reduces."""
        return 0.0 * sum(p.reshape(-1)[0] for p in params) if params else 0.0

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if phase == "d":
            self._advance(batch.size * self.shard[1])
        staged = batch if phase == "g" else dataclasses.replace(batch, x=self.stage_reals(batch.x))
        ddp = self.shard[1] > 1
        level, alpha = self.progress
        if phase == "d":
            self._record = []
            try:
                out = super().loss("d", staged, ctx)
                real_logits = self._record[0].float()  # AdversarialFamily scores the (augmented) reals first
            finally:
                self._record = None
            loss = out.loss
            if self.cfg.drift > 0:
                drift = real_logits.pow(2).mean()
                loss = loss + self.cfg.drift * drift
                out.logs["d/drift"] = drift.detach()
            if ddp:
                loss = loss + self._anchor(self.D.inactive_parameters(level, alpha < 1.0))
            out.logs["d/loss"] = loss.detach()
            out.logs.update({"progan/level": float(level), "progan/resolution": float(self.levels[level][0]),
                             "progan/alpha": alpha})
            return StepOutput(loss, out.logs)
        if phase == "d_reg":  # lazy R1 on the staged reals; the anchor holds the parameters DDP reduces
            penalty, r1 = self.r1(staged, float(self.cfg.r1_every))
            inactive = {id(p) for p in self.D.inactive_parameters(level, alpha < 1.0)}
            held = [p for p in self.D.parameters() if ddp or id(p) not in inactive]
            return StepOutput(penalty + self._anchor(held), {"d/r1": r1.detach()})
        out = super().loss(phase, staged, ctx)
        if phase == "g" and ddp:
            out = StepOutput(out.loss + self._anchor(self.G.inactive_parameters()), out.logs)
        return out
