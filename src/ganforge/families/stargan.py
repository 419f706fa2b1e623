"""StarGAN (Choi et al. 2018): one generator translates an image into any of K domains.

Data: ordinary labelled images, the class names being the domain names (e.g. builtin:fmnist-shoes:
sandal, sneaker, ankle boot). G(x, c) takes the target domain c as K one-hot maps; D has two heads on one
trunk, D_src (real/fake patch logits) and D_cls (domain logits). Each step draws, for every real x of
domain c', a target c uniformly from the other K - 1 domains, and minimises

    L_D = L_adv^D + lambda_cls * CE(D_cls(x), c')                      (+ gp_weight * GP for wgan-gp)
    L_G = L_adv^G + lambda_cls * CE(D_cls(G(x, c)), c) + lambda_rec * |x - G(G(x, c), c')|_1

The paper's adversarial term is WGAN-GP (lambda_gp 10) with n_critic 5: D updates every step, G after
every n_critic-th D update (so a log line at a step divisible by n_critic carries G's terms); any ganforge
loss can replace it (`loss`). When G trains in a step it reuses the fakes drawn
for that step's D update (one G forward per step, as in the other adversarial families).

Measured (bench/stargan.py: fmnist-shoes, 28 px, width 32, 3 residual blocks, the paper's objective,
4,000 steps = 800 G updates, ~13 min on one shared CPU thread): the fashion classifier puts 79-98% of
the translations in the target domain for every (source, target) pair; reconstruction L1 0.106.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..losses import AdversarialLoss, get_loss, gradient_penalty
from ..nn.stargan import StarDiscriminator, StarGenerator
from .base import StepOutput, critic_logs
from .phases import Phase, StepContext, runs_later, take
from .translation import TranslationFamily


@dataclass
class StarGANConfig:
    width: int = 64             # G's base channels (the paper: 64)
    n_res: int = 0              # G's residual blocks; 0: 6 (the paper) for images >= 64 px, 3 below
    d_width: int = 64           # D's first-layer channels, doubled per stride-2 layer
    d_layers: int = 0           # D's stride-2 layers; 0: halve down to a map of <= 8 px (28 px: 2, 7x7)
    loss: str = "wgan-gp"       # adversarial term: minimax | ns | lsgan | wgan | wgan-gp | hinge
    gp_weight: float = 10.0     # lambda_gp of WGAN-GP
    n_critic: int = 5           # D updates per G update
    lambda_cls: float = 1.0     # domain classification, for both players
    lambda_rec: float = 10.0    # cycle reconstruction |x - G(G(x, c), c')|_1
    clip_value: float = 0.01    # weight clipping range of the plain wgan loss


class StarGAN(TranslationFamily):
    """StarGAN: multi-domain image-to-image translation from domain-labelled images."""

    Config = StarGANConfig
    name = "stargan"
    description = "multi-domain translation (Choi 2018); labelled images, class = domain"
    directions = ("AtoB",)
    needs = "labelled"
    conditioning = "image+domain"

    def __init__(self, cfg: StarGANConfig, spec: DataSpec, generator_only: bool = False) -> None:
        super().__init__(cfg, spec, generator_only)
        if cfg.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {cfg.n_critic}")
        if cfg.lambda_cls < 0 or cfg.lambda_rec < 0 or cfg.gp_weight < 0:
            raise ValueError("lambda_cls, lambda_rec and gp_weight must be >= 0, got "
                             f"{cfg.lambda_cls}, {cfg.lambda_rec}, {cfg.gp_weight}")
        self.objective: AdversarialLoss = get_loss(cfg.loss)
        channels, h, w = spec.shape
        if h % 4 or w % 4:
            raise ValueError(f"stargan's generator downsamples twice, so image sides must be divisible by 4; "
                             f"'{spec.name}' is {h}x{w}: resize the data (e.g. --size {max(4, (h + 2) // 4 * 4)})")
        self.n_domains = int(spec.n_classes)
        n_res = cfg.n_res or (6 if min(h, w) >= 64 else 3)
        self.G = StarGenerator(channels, self.n_domains, cfg.width, n_res)
        self.D = None if generator_only else StarDiscriminator(channels, (h, w), self.n_domains, cfg.d_width,
                                                               cfg.d_layers)

    # -- training ---------------------------------------------------------------------------------
    def phase_specs(self) -> tuple[Phase, ...]:
        # G after every n_critic-th D update, as in the paper's loop: steps n_critic - 1, 2 n_critic - 1, ...
        n = self.cfg.n_critic
        return (Phase("d", ("D",), lr="lr_d", double_backward=bool(self.objective.gp)),
                Phase("g", ("G",), lr="lr_g", every=n, offset=n - 1, updates_ema=True))

    def random_targets(self, source: Tensor) -> Tensor:
        """A target domain per image, uniform over the K - 1 domains other than its own: (N,) long."""
        shift = torch.randint(1, self.n_domains, source.shape, device=source.device)
        return (source + shift) % self.n_domains

    def _labels(self, batch: Batch) -> Tensor:
        if batch.y is None:
            raise ValueError("stargan trains on images labelled with their domain; this batch has no labels")
        return batch.y

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        if phase == "d":
            return self._d_loss(batch, ctx)
        if phase == "g":
            return self._g_loss(batch, ctx)
        raise ValueError(f"{self.name} has phases 'd' and 'g', not '{phase}'")

    def _d_loss(self, batch: Batch, ctx: StepContext | None) -> StepOutput:
        cfg, obj = self.cfg, self.objective
        real, source = batch.x, self._labels(batch)
        target = self.random_targets(source)
        if runs_later(ctx, "g"):
            fake_g = self.G(real, target)  # keeps G's graph for this step's G phase
            ctx.handoff["fakes"] = (fake_g, target)
            fake = fake_g.detach()
        else:
            with torch.no_grad():
                fake = self.G(real, target)
        src_real, cls_real = self.D(real)
        src_fake, _ = self.D(fake)
        src_real, src_fake, cls_real = src_real.float(), src_fake.float(), cls_real.float()
        adv = obj.d(src_real, src_fake)
        cls = F.cross_entropy(cls_real, source)
        loss = adv + cfg.lambda_cls * cls
        logs: dict[str, Tensor | float] = {"d/adv": adv.detach(), "d/cls": cls.detach()}
        if obj.gp:
            gp = gradient_penalty(lambda x: self.D(x)[0], real, fake)
            loss = loss + cfg.gp_weight * gp
            logs["d/gp"] = gp.detach()
        with torch.no_grad():
            logs.update(critic_logs(obj, loss, src_real, src_fake))
            logs["d/cls_acc_real"] = (cls_real.argmax(1) == source).float().mean()
        return StepOutput(loss, logs)

    def _g_loss(self, batch: Batch, ctx: StepContext | None) -> StepOutput:
        cfg = self.cfg
        real, source = batch.x, self._labels(batch)
        shared = take(ctx, "fakes")
        if shared is None or shared[0].shape[0] != batch.size:
            target = self.random_targets(source)
            shared = (self.G(real, target), target)
        fake, target = shared
        src_fake, cls_fake = self.D(fake)
        adv = self.objective.g(src_fake.float())
        cls = F.cross_entropy(cls_fake.float(), target)
        rec = (self.G(fake, source).float() - real.float()).abs().mean()
        loss = adv + cfg.lambda_cls * cls + cfg.lambda_rec * rec
        with torch.no_grad():
            acc = (cls_fake.argmax(1) == target).float().mean()
        return StepOutput(loss, {"g/loss": loss.detach(), "g/adv": adv.detach(), "g/cls": cls.detach(),
                                 "g/rec": rec.detach(), "g/cls_acc": acc})

    @torch.no_grad()
    def after_step(self, phase: str) -> None:
        if phase == "d" and self.objective.clip:
            for p in self.D.parameters():
                p.clamp_(-self.cfg.clip_value, self.cfg.clip_value)

    # -- sampling ---------------------------------------------------------------------------------
    def target_domains(self, domain: Any, n: int, device: torch.device) -> Tensor:
        """Target domains (n,) long from one index or name, or n of them; range-checked."""
        names = list(self.spec.class_names)
        if domain is None:
            raise ValueError(f"stargan needs a target domain: domain=k or a tensor of n k's, k in "
                             f"0..{self.n_domains - 1} ({', '.join(f'{i}={d}' for i, d in enumerate(names))})")
        if isinstance(domain, str):
            if domain not in names:
                raise ValueError(f"unknown domain '{domain}'; choose one of: {', '.join(names)}")
            domain = names.index(domain)
        c = torch.as_tensor(domain, dtype=torch.long, device=device)
        if c.dim() == 0:
            c = c.expand(n)
        if c.shape != (n,):
            raise ValueError(f"domain must be one index or {n} of them (one per image), got shape {tuple(c.shape)}")
        if n and (int(c.min()) < 0 or int(c.max()) >= self.n_domains):
            raise ValueError(f"domains must lie in 0..{self.n_domains - 1}, got {c.unique().tolist()}")
        return c

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str = "AtoB", domain: Any = None,
                  net: nn.Module | None = None) -> Tensor:
        """x (N, C, H, W) in [-1, 1] translated into `domain`: one index or name, or N indices."""
        self.check_direction(direction)
        G = net if net is not None else self.G
        return G(x, self.target_domains(domain, x.shape[0], x.device))

    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, domain: Any = None, **cond: Any) -> Tensor:
        """n preview inputs (or z) translated; without `domain`, input i goes to domain i mod K, so a
        sample grid shows every domain."""
        x = self.sample_inputs(n, generator=generator) if z is None else z
        if domain is None:
            domain = torch.arange(x.shape[0], device=x.device) % self.n_domains
        return self.translate(x, domain=domain, net=net)
