"""InfoGAN (Chen et al., 2016): structured latent codes that the generator is pushed to make readable.

G's input is one vector [z | c]: incompressible noise z ~ N(0, I) (`latent_dim` of it) followed by the codes:
categorical codes drawn uniformly (one-hot, one block per entry of `categorical`) and `continuous` codes
drawn uniformly in [-1, 1]. A Q head on D's trunk predicts the codes of a fake; the variational lower
bound of the mutual information I(c; G(z, c)) is the negative of Q's loss (cross-entropy for categorical
codes, Gaussian log-likelihood with unit variance, i.e. squared error / 2, for continuous ones), and both
G (in its phase) and D + Q (in D's) minimise `info_weight` x that loss. Labels are never read.

Codes are named c0, c1, ... in order: the categorical ones first, then the continuous ones; with the
defaults (one 10-way categorical code, 2 continuous) that is c0 in {0..9} and c1, c2 in [-1, 1].
`sample(codes={"c0": 3})` fixes codes; `Family.noise` draws the whole input vector, codes included, so
seeds, interpolation and evaluation all see the distribution G was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.spec import Batch
from ..nn import AuxClassifierDiscriminator
from . import backbones
from .backbones import feature_dim
from .codes import Code, LatentCodes
from .base import AdversarialConfig, AdversarialFamily, StepOutput
from .phases import StepContext


@dataclass
class InfoGANConfig(AdversarialConfig):
    latent_dim: int = 62               # incompressible noise z (G's input is z plus the codes)
    categorical: list[int] = field(default_factory=lambda: [10])  # sizes of the categorical codes
    continuous: int = 2                # number of continuous codes, uniform in [-1, 1]
    info_weight: float = 1.0           # lambda for the categorical codes
    continuous_weight: float = 1.0     # lambda for the continuous codes
    q_hidden: int = 128                # hidden units of the Q head (0: linear head)
    q_trunk: bool = True               # D's phase trains the shared trunk on Q's loss too (false: the Q head only)
    arch: str = "auto"                 # auto (dcgan for images, mlp for points) | dcgan | mlp
    width: int = 64                    # dcgan: channels of G's last and D's first conv
    max_width: int = 512
    d_batchnorm: bool = True
    hidden: int = 256                  # mlp: units per hidden layer
    depth: int = 3                     # mlp: hidden layers


class InfoGAN(LatentCodes, AdversarialFamily):
    """InfoGAN on a DCGAN or MLP backbone; any adversarial loss."""

    Config = InfoGANConfig
    name = "infogan"
    description = "InfoGAN (Chen 2016): categorical + continuous latent codes, Q head; no labels needed"

    def __init__(self, cfg: InfoGANConfig, spec, generator_only: bool = False) -> None:
        if any(int(k) < 2 for k in cfg.categorical):
            raise ValueError(f"every categorical code needs >= 2 categories, got categorical={list(cfg.categorical)}")
        if cfg.continuous < 0 or (not cfg.categorical and cfg.continuous == 0):
            raise ValueError("infogan needs at least one code: set categorical=[10] and/or continuous >= 1")
        if cfg.info_weight < 0 or cfg.continuous_weight < 0:
            raise ValueError("info_weight and continuous_weight must be >= 0")
        self.arch = backbones.resolve_arch(self.name, cfg.arch, spec)
        offset, codes = int(cfg.latent_dim), []
        for k in cfg.categorical:
            codes.append(Code(f"c{len(codes)}", "categorical", int(k), offset))
            offset += int(k)
        for _ in range(cfg.continuous):
            codes.append(Code(f"c{len(codes)}", "continuous", 1, offset))
            offset += 1
        self._codes, self._width = tuple(codes), offset
        super().__init__(cfg, spec, generator_only)
        self._q: list[tuple[Tensor, Any]] = []
        self._phase = "g"

    @property
    def codes(self) -> tuple[Code, ...]:
        return self._codes

    @property
    def latent_dim(self) -> int:
        """Width of G's input: the noise plus every code."""
        return self._width

    @property
    def q_dim(self) -> int:
        return sum(c.size for c in self.codes)

    def build_generator(self) -> nn.Module:
        return backbones.generator(self.arch, self.latent_dim, self.spec, self.cfg)

    def build_discriminator(self) -> nn.Module:
        shape = tuple(self.spec.shape)
        base = backbones.discriminator(self.arch, shape, self.cfg)
        return AuxClassifierDiscriminator(base, self.q_dim, feature_dim(base, shape), hidden=self.cfg.q_hidden)

    # -- latents and codes --------------------------------------------------------------------------
    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """G's whole input (n, latent_dim): z ~ N(0, I), then one-hot uniform categories, then U(-1, 1)."""
        def draw(m: int) -> Tensor:
            parts = [torch.randn(m, int(self.cfg.latent_dim), generator=generator)]
            for c in self.codes:
                if c.kind == "categorical":
                    parts.append(F.one_hot(torch.randint(c.size, (m,), generator=generator), c.size).float())
                else:
                    parts.append(torch.rand(m, 1, generator=generator) * 2 - 1)
            return torch.cat(parts, 1)

        return self.rows(n, draw, generator).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, codes: dict[str, Any] | None = None, **cond: Any) -> Tensor:
        G = net if net is not None else self.G
        if z is None:
            z = self.noise(n, generator=generator)
        return G(self.set_codes(z, codes) if codes else z)

    # -- training -------------------------------------------------------------------------------------
    def generate(self, n: int) -> tuple[Tensor, Any]:
        latent = self.noise(n)
        return self.G(latent), latent

    def critic(self, x: Tensor, cond: Any) -> Tensor:
        adv, feats = self.D.base.forward_with_features(x)
        if self._phase == "d" and not self.cfg.q_trunk:
            feats = feats.detach()  # Q reads the trunk D trains for the adversarial loss, without shaping it
        self._q.append((self.D.classifier(feats), cond))  # Q's outputs with the latents to recover, in call order
        return adv

    def info_loss(self, q: Tensor, latent: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Q's negative log-likelihood of the codes behind `latent`, weighted; logs per kind."""
        q, cfg = q.float(), self.cfg
        cat, cont, acc, at = [], [], [], 0
        for c in self.codes:
            out = q[:, at:at + c.size]
            at += c.size
            if c.kind == "categorical":
                target = self.code_values(latent, c.name)
                cat.append(F.cross_entropy(out, target))
                acc.append((out.argmax(1) == target).float().mean())
            else:
                cont.append(0.5 * (out[:, 0] - latent[:, c.offset].float()).pow(2).mean())
        zero = q.new_zeros(())
        cat_l, cont_l = (torch.stack(cat).sum() if cat else zero), (torch.stack(cont).sum() if cont else zero)
        logs = {"cat": cat_l.detach(), "cont": cont_l.detach()}
        if acc:
            logs["cat_acc"] = torch.stack(acc).mean().detach()
        return cfg.info_weight * cat_l + cfg.continuous_weight * cont_l, logs

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        self._q, self._phase = [], phase
        out = super().loss(phase, batch, ctx)
        if phase not in ("d", "g"):  # a regulariser's phase (lazy R1) has no information term
            self._q = []
            return out
        q, latent = self._q[1] if phase == "d" else self._q[0]  # D phase: (real, fake, penalties...)
        self._q = []
        info, logs = self.info_loss(q, latent)
        out.logs.update({f"{phase}/info_{k}": v for k, v in logs.items()})
        return StepOutput(out.loss + info, out.logs)
