"""pix2pix (Isola, Zhu, Zhou & Efros, 2017): paired image-to-image translation with a conditional GAN.

G is a U-Net (nn/unet.py) from domain A to domain B; D is a PatchGAN (nn/patchgan.py) that sees the
pair (input, output) concatenated along channels and scores every patch of it. The objective is

    G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G),   lambda = 100,

with the non-saturating G loss (maximise log D(x, G(x))) and D's objective halved, as in the paper.
There is no z: the paper's only source of noise is dropout in G's decoder at training time.
`adversarial=False` is the paper's "L1 only" baseline: the same U-Net trained on lambda * L1 alone,
with no discriminator (phases ("g",) only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..losses import get_loss, gradient_penalty
from ..nn.patchgan import PatchDiscriminator, patch_layers_for
from ..nn.unet import UNetGenerator
from .base import StepOutput, critic_logs, spread
from .phases import Phase, StepContext, runs_later, take
from .translation import TranslationFamily


@dataclass
class Pix2PixConfig:
    loss: str = "ns"             # adversarial loss (ganforge.losses): minimax | ns | lsgan | wgan | wgan-gp | hinge
    l1_weight: float = 100.0     # lambda of the L1 term
    adversarial: bool = True     # False: the "L1 only" U-Net baseline (no D)
    width: int = 64              # U-Net's first encoder channels; doubled per level up to max_width
    max_width: int = 512
    depth: int = 0               # U-Net levels; 0 = down to a 1-px bottleneck (at most 8)
    dropout: float = 0.5         # dropout-as-noise in G's innermost decoder blocks (training only)
    dropout_blocks: int = 3      # how many decoder blocks get it (3 in the paper)
    norm: str = "batch"          # G's normalisation: batch | instance | none
    d_width: int = 64            # PatchGAN's first channels
    d_layers: int = 0            # PatchGAN stride-2 layers; 0 = chosen from the image side (patch_layers_for)
    d_norm: str = "batch"        # D's normalisation; use instance or none with wgan-gp
    gp_weight: float = 10.0      # WGAN-GP lambda (loss=wgan-gp)
    clip_value: float = 0.01     # WGAN weight clipping (loss=wgan)


class Pix2Pix(TranslationFamily):
    """Conditional GAN with a U-Net generator and a PatchGAN on (input, output) pairs; paired data."""

    Config = Pix2PixConfig
    name = "pix2pix"
    description = "paired image-to-image translation (Isola 2017): U-Net G + PatchGAN D, cGAN + L1"
    needs = "paired"

    def __init__(self, cfg: Pix2PixConfig, spec: DataSpec, generator_only: bool = False) -> None:
        super().__init__(cfg, spec, generator_only)
        self.objective = get_loss(cfg.loss)
        if cfg.l1_weight < 0:
            raise ValueError(f"l1_weight must be >= 0, got {cfg.l1_weight}")
        if not cfg.adversarial and cfg.l1_weight == 0:
            raise ValueError("with adversarial=False the L1 term is the whole objective: set l1_weight > 0")
        if self.objective.gp and cfg.d_norm == "batch":
            raise ValueError("wgan-gp penalises each sample's gradient, which BatchNorm in D mixes across the batch: "
                             "set d_norm=instance or d_norm=none")
        c_a, h, w = spec.shape
        c_b = spec.shape_b[0]
        self.G = UNetGenerator(c_a, c_b, (h, w), cfg.width, cfg.max_width, cfg.depth, cfg.dropout,
                               cfg.dropout_blocks, cfg.norm)
        self.D: nn.Module | None = None
        if cfg.adversarial and not generator_only:
            layers = cfg.d_layers or patch_layers_for(min(h, w))
            self.D = PatchDiscriminator(c_a + c_b, cfg.d_width, layers, cfg.d_norm)

    @classmethod
    def check_spec(cls, spec: DataSpec) -> None:
        super().check_spec(spec)
        if tuple(spec.shape[1:]) != tuple(spec.shape_b[1:]):
            a, b = spec.shape[1:], spec.shape_b[1:]
            raise ValueError(f"pix2pix's U-Net keeps the image size, but '{spec.name}' maps {a[0]}x{a[1]} inputs to "
                             f"{b[0]}x{b[1]} targets: use srgan for super-resolution (e.g. builtin:fmnist-lowres), "
                             f"or resize both domains to one size")

    # -- contract -------------------------------------------------------------------------------------
    def phase_specs(self) -> tuple[Phase, ...]:
        g = Phase("g", ("G",), lr="lr_g", updates_ema=True)
        if not self.cfg.adversarial:  # the L1-only baseline: G alone
            return (g,)
        return (Phase("d", ("D",), lr="lr_d", double_backward=bool(self.objective.gp)), g)

    def critic(self, a: Tensor, b: Tensor) -> Tensor:
        """D's patch logits (N, 1, h, w) for the pair (a, b): the input and a real or translated target."""
        return self.D(torch.cat([a, b], dim=1)).float()

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if batch.x_b is None:
            raise ValueError("pix2pix trains on paired batches (x = input A, x_b = target B); got a batch without x_b")
        a, b = batch.x, batch.x_b
        if phase == "d":
            return self._d_loss(a, b, ctx)
        if phase == "g":
            return self._g_loss(a, b, ctx)
        raise ValueError(f"pix2pix has phases 'd' and 'g', not '{phase}'")

    def _d_loss(self, a: Tensor, b: Tensor, ctx: StepContext | None) -> StepOutput:
        if self.D is None:
            raise ValueError("this pix2pix has no discriminator (adversarial=False or generator_only): "
                             "its only phase is 'g'")
        obj = self.objective
        if runs_later(ctx, "g"):  # G's phase of this step reuses these fakes (one G forward per step)
            fake_g = self.G(a)
            ctx.handoff["fakes"] = (a, fake_g)
            fake = fake_g.detach()
        else:
            with torch.no_grad():
                fake = self.G(a)
        real_logits, fake_logits = self.critic(a, b), self.critic(a, fake)
        adv = obj.d(real_logits, fake_logits)
        loss = adv
        logs: dict[str, Tensor | float] = {"d/adv": adv.detach()}
        if obj.gp:
            gp = gradient_penalty(lambda x: self.critic(a, x), b, fake)
            loss = loss + self.cfg.gp_weight * gp
            logs["d/gp"] = gp.detach()
        loss = 0.5 * loss  # "we divide the objective by 2 while optimizing D" (Isola et al., sec. 3.3)
        with torch.no_grad():
            logs.update(critic_logs(obj, loss, real_logits, fake_logits))
            logs.update({
                # a G that ignores its input has a tiny spread across the batch (health monitor)
                "stats/real_spread": spread(b),
                "stats/fake_spread": spread(fake),
            })
        return StepOutput(loss, logs)

    def _g_loss(self, a: Tensor, b: Tensor, ctx: StepContext | None) -> StepOutput:
        shared = take(ctx, "fakes")
        fake = shared[1] if shared is not None and shared[0] is a else self.G(a)
        l1 = (fake.float() - b.float()).abs().mean()
        loss = self.cfg.l1_weight * l1
        logs: dict[str, Tensor | float] = {"g/l1": l1.detach()}
        if self.cfg.adversarial:
            adv = self.objective.g(self.critic(a, fake))
            loss = adv + loss
            logs["g/adv"] = adv.detach()
        logs["g/loss"] = loss.detach()
        return StepOutput(loss, logs)

    @torch.no_grad()
    def after_step(self, phase: str) -> None:
        if phase == "d" and self.objective.clip and self.D is not None:
            for p in self.D.parameters():
                p.clamp_(-self.cfg.clip_value, self.cfg.clip_value)

    # -- sampling ---------------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: Tensor, direction: str = "AtoB", domain: Any = None,
                  net: nn.Module | None = None) -> Tensor:
        """G(x) for inputs x (N, C_A, H, W) in [-1, 1] -> (N, C_B, H, W), in eval mode.

        The paper keeps dropout on at test time (its only noise) and normalises with the test batch's
        statistics; we translate in eval mode instead (no dropout, BatchNorm's running statistics), so a
        translation is deterministic and does not depend on the other images in the batch. G's
        train/eval mode is restored afterwards.
        """
        self.check_direction(direction)
        G = net if net is not None else self.G
        was_training = G.training
        G.eval()
        try:
            return G(x)
        finally:
            G.train(was_training)
