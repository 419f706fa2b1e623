"""CycleGAN (Zhu et al. 2017): unpaired translation A <-> B with cycle consistency.

Two generators G_AB: A -> B and G_BA: B -> A (ResNet generators, `ganforge.nn.resnet_gen`) and two
PatchGAN discriminators with instance norm, D_A on domain A and D_B on domain B. Per step:

    G phase  fake_B = G_AB(a), fake_A = G_BA(b), rec_A = G_BA(fake_B), rec_B = G_AB(fake_A)
             L_G = lambda_gan [g(D_B(fake_B)) + g(D_A(fake_A))]
                 + lambda_cycle [|rec_A - a|_1 + |rec_B - b|_1]
                 + lambda_identity lambda_cycle [|G_BA(a) - a|_1 + |G_AB(b) - b|_1]   (same channels only)
    D phase  L_D = d(D_A(a), D_A(pool_A(fake_A))) + d(D_B(b), D_B(pool_B(fake_B)))

with the LSGAN objective by default (the paper's section 4: G minimises (D(G(x)) - 1)^2, D minimises
[(D(y) - 1)^2 + D(G(x))^2] / 2 -- ganforge's `lsgan` has Mao et al.'s 1/2 on both sides, so G's term is
weighted lambda_gan = 2 to match), lambda_cycle = 10, identity weight 0.5 x lambda_cycle (the paper's
photo <-> painting setting; it keeps colours), and D trained on a history of 50 past fakes per direction
(Shrivastava et al. 2017): `HistoryPool`. The fakes D sees are those G made in this step's G phase (before
G's update), as in the reference implementation; G runs once per step.

`TwoWayGAN` is the algorithm without the network choices; `discogan` reuses it with its own networks,
loss and reconstruction distance. Paired data is accepted: the losses never compare a[i] with b[i].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..losses import AdversarialLoss, get_loss
from ..nn.patchgan import PatchDiscriminator, patch_layers_for
from ..nn.resnet_gen import ResnetGenerator, resnet_blocks_for
from .base import StepOutput, d_readout, spread
from .phases import Phase, StepContext, take
from .translation import TranslationFamily, TwoWay

DISTANCES = {"l1": F.l1_loss, "mse": F.mse_loss}


class HistoryPool(nn.Module):
    """A history of up to `size` generated images (Shrivastava et al. 2017, as used by CycleGAN).

    `query(fakes)` returns what D should see: while the pool fills, the fakes themselves (each is stored);
    once full, each fake is, with probability 1/2, swapped for a random stored image (which it replaces),
    else passed through. The images, the fill count and the state of the pool's own torch.Generator are
    buffers, so a checkpoint holds all of it and a resumed run draws exactly what an uninterrupted one would.
    """

    def __init__(self, size: int, shape: tuple[int, ...], seed: int) -> None:
        super().__init__()
        if size < 0:
            raise ValueError(f"pool_size must be >= 0 (0 turns the history off), got {size}")
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("rng_state", torch.Generator().manual_seed(seed).get_state())

    def _generator(self) -> torch.Generator:
        g = torch.Generator()
        g.set_state(self.rng_state.cpu())
        return g

    @torch.no_grad()
    def query(self, fakes: Tensor) -> Tensor:
        """fakes (N, C, H, W) -> the N images D trains on (detached)."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        g = self._generator()
        n = fakes.shape[0]
        swap = (torch.rand(n, generator=g) < 0.5).tolist()   # drawn for every fake: a fixed number of draws
        slot = torch.randint(self.size, (n,), generator=g).tolist()
        self.rng_state.copy_(g.get_state())
        out = fakes.clone()
        count = int(self.count)
        for i in range(n):
            if count < self.size:         # filling: store it, D sees it
                self.images[count] = fakes[i]
                count += 1
            elif swap[i]:                 # D sees an old fake, the new one takes its place
                j = slot[i]
                out[i] = self.images[j]
                self.images[j] = fakes[i]
        self.count.fill_(count)
        return out


class TwoWayGAN(TranslationFamily):
    """The two-generator, two-discriminator cycle algorithm; subclasses choose the networks.

    Reads from the config: loss, lambda_gan (None: 2 for lsgan, else 1), lambda_cycle, cycle_distance
    ("l1" | "mse"), lambda_identity (a fraction of lambda_cycle; used only when A and B have the same
    channels) and pool_size (0: no history).
    """

    directions = ("AtoB", "BtoA")
    needs = "unpaired"

    def __init__(self, cfg: Any, spec: DataSpec, generator_only: bool = False) -> None:
        super().__init__(cfg, spec, generator_only)
        self.objective: AdversarialLoss = get_loss(cfg.loss)
        if self.objective.gp or self.objective.clip:
            raise ValueError(f"{self.name} supports the minimax, ns, lsgan and hinge losses, not '{cfg.loss}'")
        if cfg.cycle_distance not in DISTANCES:
            raise ValueError(f"cycle_distance must be one of {', '.join(DISTANCES)}, got '{cfg.cycle_distance}'")
        if min(cfg.lambda_cycle, cfg.lambda_identity) < 0 or (cfg.lambda_gan is not None and cfg.lambda_gan < 0):
            raise ValueError("lambda_gan, lambda_cycle and lambda_identity must be >= 0")
        self.distance = DISTANCES[cfg.cycle_distance]
        a, b = self.in_shape, self.out_shape
        self.G = TwoWay(self.build_generator(a[0], b[0]), self.build_generator(b[0], a[0]))
        self.D: nn.ModuleDict | None = None
        if not generator_only:
            self.D = nn.ModuleDict({"A": self.build_discriminator(a[0]), "B": self.build_discriminator(b[0])})
            seed = int(torch.randint(2**62, ()))  # from the run's seeded RNG, drawn once at construction
            self.pool_A = HistoryPool(cfg.pool_size, a, seed)
            self.pool_B = HistoryPool(cfg.pool_size, b, seed + 1)

    @classmethod
    def check_spec(cls, spec: DataSpec) -> None:
        super().check_spec(spec)
        if tuple(spec.shape[1:]) != tuple(spec.shape_b[1:]):
            raise ValueError(f"{cls.name} maps between domains of one image size, but '{spec.name}' has A "
                             f"{'x'.join(map(str, spec.shape[1:]))} and B {'x'.join(map(str, spec.shape_b[1:]))}: "
                             f"give it A and B images of one size, or use srgan / pix2pix for a change of size")

    # -- networks, chosen by the subclasses ---------------------------------------------------------
    def build_generator(self, in_channels: int, out_channels: int) -> nn.Module:
        raise NotImplementedError

    def build_discriminator(self, in_channels: int) -> nn.Module:
        raise NotImplementedError

    # -- the algorithm --------------------------------------------------------------------------------
    @property
    def lambda_gan(self) -> float:
        w = self.cfg.lambda_gan
        return (2.0 if self.objective.name == "lsgan" else 1.0) if w is None else float(w)

    @property
    def uses_identity(self) -> bool:
        """Identity terms need G_BA(a) and G_AB(b) to be defined: A and B with the same channels."""
        return self.cfg.lambda_identity > 0 and self.in_shape[0] == self.out_shape[0]

    def phase_specs(self) -> tuple[Phase, ...]:
        # G first: D trains on the fakes of this step's G phase. "G" holds both generators (TwoWay).
        return (Phase("g", ("G",), lr="lr_g", updates_ema=True), Phase("d", ("D",), lr="lr_d"))

    def _domains(self, batch: Batch) -> tuple[Tensor, Tensor]:
        if batch.x_b is None:
            raise ValueError(f"{self.name} trains on two domains: the batch has no x_b (domain B images)")
        return batch.x, batch.x_b

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if phase == "g":
            return self._g_loss(*self._domains(batch), ctx)
        if phase == "d":
            return self._d_loss(*self._domains(batch), ctx)
        raise ValueError(f"{self.name} has phases 'g' and 'd', not '{phase}'")

    def cycle_loss(self, a: Tensor, b: Tensor, fake_b: Tensor, fake_a: Tensor) -> Tensor:
        """distance(G_BA(G_AB(a)), a) + distance(G_AB(G_BA(b)), b), unweighted."""
        return self.distance(self.G.ba(fake_b).float(), a) + self.distance(self.G.ab(fake_a).float(), b)

    def identity_loss(self, a: Tensor, b: Tensor) -> Tensor:
        """distance(G_BA(a), a) + distance(G_AB(b), b), unweighted: each G leaves its own target domain alone."""
        return self.distance(self.G.ba(a).float(), a) + self.distance(self.G.ab(b).float(), b)

    def _g_loss(self, a: Tensor, b: Tensor, ctx: StepContext | None) -> StepOutput:
        cfg, obj, D = self.cfg, self.objective, self.D
        fake_b, fake_a = self.G.ab(a), self.G.ba(b)
        adv = obj.g(D["B"](fake_b).float()) + obj.g(D["A"](fake_a).float())
        cycle = self.cycle_loss(a, b, fake_b, fake_a)
        loss = self.lambda_gan * adv + cfg.lambda_cycle * cycle
        logs: dict[str, Tensor | float] = {"g/adv": adv.detach(), "g/cycle": cycle.detach()}
        if self.uses_identity:
            identity = self.identity_loss(a, b)
            loss = loss + cfg.lambda_identity * cfg.lambda_cycle * identity
            logs["g/identity"] = identity.detach()
        logs["g/loss"] = loss.detach()
        if ctx is not None and ctx.will_run("d"):
            ctx.handoff["fakes"] = (fake_a.detach(), fake_b.detach())
        return StepOutput(loss, logs)

    def _d_loss(self, a: Tensor, b: Tensor, ctx: StepContext | None) -> StepOutput:
        obj, D = self.objective, self.D
        fakes = take(ctx, "fakes")
        if fakes is None or fakes[0].shape[0] != b.shape[0] or fakes[1].shape[0] != a.shape[0]:
            with torch.no_grad():  # a D phase on its own (no G phase before it in this step)
                fakes = (self.G.ba(b), self.G.ab(a))
        fake_a, fake_b = fakes
        real_a, seen_a = D["A"](a).float(), D["A"](self.pool_A.query(fake_a)).float()
        real_b, seen_b = D["B"](b).float(), D["B"](self.pool_B.query(fake_b)).float()
        loss_a, loss_b = obj.d(real_a, seen_a), obj.d(real_b, seen_b)
        loss = loss_a + loss_b
        with torch.no_grad():
            real_logits = torch.cat([real_a.flatten(), real_b.flatten()])
            fake_logits = torch.cat([seen_a.flatten(), seen_b.flatten()])
            thr = obj.threshold if obj.threshold is not None else 0.5 * (real_logits.mean() + fake_logits.mean())
            logs: dict[str, Tensor | float] = {
                "d/loss": loss.detach(),
                "d/adv": 0.5 * (loss_a + loss_b).detach(),  # per discriminator, comparable with one-D families
                "d/A": loss_a.detach(), "d/B": loss_b.detach(),
                "d/real": 0.5 * (d_readout(obj, real_a) + d_readout(obj, real_b)),
                "d/fake": 0.5 * (d_readout(obj, seen_a) + d_readout(obj, seen_b)),
                "d/acc_real": (real_logits > thr).float().mean(),
                "d/acc_fake": (fake_logits < thr).float().mean(),
                # per-pixel std across the batch, averaged: translations that ignore their input have ~0
                "stats/real_spread": spread(b),
                "stats/fake_spread": spread(fake_b),
            }
        return StepOutput(loss, logs)


@dataclass
class CycleGANConfig:
    loss: str = "lsgan"              # lsgan (the paper) | ns | minimax | hinge
    lambda_gan: float | None = None  # weight of G's adversarial terms; None: 2 with lsgan (the paper's (D-1)^2), else 1
    lambda_cycle: float = 10.0       # cycle-consistency weight (the paper's lambda)
    lambda_identity: float = 0.5     # identity weight as a fraction of lambda_cycle (0 disables; same channels only)
    cycle_distance: str = "l1"       # l1 (the paper) | mse
    pool_size: int = 50              # fakes kept per direction for D's updates (0 disables the history)
    width: int = 64                  # G's first conv channels (c7s1-64)
    n_blocks: int | None = None      # residual blocks; None: by image size (9 at 256 px, 6 at 128, 4 at 48, 3 below)
    d_width: int = 64                # D's first conv channels (C64)
    d_layers: int | None = None      # PatchGAN stride-2 layers; None: by image size (3 at >= 128 px: 70x70 patches)


class CycleGAN(TwoWayGAN):
    """CycleGAN: ResNet generators, instance-norm PatchGAN discriminators, LSGAN + cycle + identity losses."""

    Config = CycleGANConfig
    name = "cyclegan"
    description = "CycleGAN (Zhu 2017): unpaired A <-> B, ResNet G, PatchGAN D, cycle + identity losses"

    def _side(self) -> int:
        return min(self.in_shape[1:])

    def build_generator(self, in_channels: int, out_channels: int) -> nn.Module:
        c = self.cfg
        blocks = resnet_blocks_for(self._side()) if c.n_blocks is None else c.n_blocks
        return ResnetGenerator(in_channels, out_channels, c.width, blocks)

    def build_discriminator(self, in_channels: int) -> nn.Module:
        c = self.cfg
        layers = patch_layers_for(self._side()) if c.d_layers is None else c.d_layers
        return PatchDiscriminator(in_channels, c.d_width, layers, norm="instance")
