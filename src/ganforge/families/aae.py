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
from ..nn.autoencoder import AutoEncoderNet, CodeDiscriminator, mixture_from_noise
from ..nn.progan import _tracing
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
    neighbour_weight: float = 0.0  # categorical: weight of -log <y(x), y(x')> for x' among x's nearest images
    neighbours: int = 5          # k of those nearest images (pixel space, at most 14x14, found once in bind_data)
    neighbour_anchors: int = 20000  # how many training images get their neighbours listed (0: all)
    restarts: int = 1            # categorical: AAEs trained side by side from different initialisations until
    select_at: int = 1000        # this step, when the one whose clusters best agree with the neighbours is kept
    #                              (a run that ends before select_at keeps member 0, having made no choice)
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
        if cfg.restarts < 1 or (cfg.restarts > 1 and not self.y_dim):
            raise ValueError(f"aae: model.restarts must be >= 1, and > 1 only with prior=categorical (the choice reads the "
                             f"clusters), got {cfg.restarts} with prior={cfg.prior}")
        if cfg.neighbour_weight > 0 and not self.y_dim:
            raise ValueError("aae: model.neighbour_weight acts on the categories; use prior=categorical or set it to 0")
        super().__init__(cfg, spec, generator_only)
        self.objective = get_loss("ns")
        restarts = int(cfg.restarts)
        if restarts > 1:
            others = [AutoEncoderNet(tuple(spec.shape), self.code_dim, self.enc_dim, cfg.width, cfg.max_width,
                                     mixture=self.mixture) for _ in range(restarts - 1)]
            self.G = AutoEncoderPopulation([self.G, *others])
        critics = lambda: CodeCritics(int(cfg.latent_dim), self.y_dim, cfg.d_hidden)  # noqa: E731
        self.D = None if generator_only else (critics() if restarts == 1 else
                                               nn.ModuleList([critics() for _ in range(restarts)]))
        self._nb_x: Tensor | None = None      # the training images (float, on the device) for the neighbour term
        self._nb_anchor: Tensor | None = None  # (A,) anchor indices into _nb_x
        self._nb_index: Tensor | None = None   # (A, k) their nearest neighbours' indices

    # -- the neighbour term's data ---------------------------------------------------------------------
    def bind_data(self, data: Any) -> None:
        cfg = self.cfg
        if not (self.y_dim and (cfg.neighbour_weight > 0 or cfg.restarts > 1)):
            return
        x = getattr(data, "x", None)
        if x is None or not hasattr(data, "to_float") or getattr(data, "stream", None) is not None:
            raise ValueError("aae: model.neighbour_weight > 0 and model.restarts > 1 need the training images in memory "
                             "(a built-in or an image folder that fits); set them to 0 and 1 for streamed data")
        self._nb_x = data.to_float(x)
        self._nb_anchor, self._nb_index = nearest_images(self._nb_x, int(cfg.neighbours), int(cfg.neighbour_anchors))

    def neighbour_pairs(self, n: int) -> tuple[Tensor, Tensor]:
        """n (anchor, neighbour) image pairs drawn on the training RNG."""
        if self._nb_index is None:
            raise RuntimeError("aae: the neighbour term has no data; build the run with build_run (it calls bind_data)")
        a, k = self._nb_index.shape
        pick = self.rows(n, lambda m: torch.stack([torch.randint(a, (m,)), torch.randint(k, (m,))], 1))
        anchor = self._nb_anchor[pick[:, 0]]
        other = self._nb_index[pick[:, 0], pick[:, 1]]
        if self._nb_x.device != self.device:
            self._nb_x = self._nb_x.to(self.device)
        return self._nb_x[anchor.to(self._nb_x.device)], self._nb_x[other.to(self._nb_x.device)]

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

    # -- restarts: members trained side by side, one kept ------------------------------------------------
    def members(self) -> list[tuple[nn.Module, nn.Module]]:
        """The (autoencoder, code critics) pairs that train now: the one AAE, or, with restarts, every member until
        one is kept and then that one."""
        if not isinstance(self.G, AutoEncoderPopulation):
            return [(self.G, self.D)]
        if self.G.chosen:
            i = int(self.G.selected)
            return [(self.G.members[i], self.D[i])]
        return list(zip(self.G.members, self.D))

    @torch.no_grad()
    def agreement(self, net: nn.Module, anchors: int = 5000) -> float:
        """How often a training image and each of its nearest images (pixel space) fall in the same category under
        `net`'s encoder (eval mode): an unsupervised score of a clustering (no labels), as k-means' inertia is."""
        if self._nb_index is None:
            raise RuntimeError("aae: no neighbours to score the members with; build the run with build_run")
        a, idx = self._nb_anchor[:anchors], self._nb_index[:anchors]
        wanted = torch.cat([a, idx.flatten()]).unique()
        where = torch.full((len(self._nb_x),), -1, dtype=torch.long)
        where[wanted] = torch.arange(len(wanted))
        was, device = net.training, next(net.parameters()).device
        net.eval()
        k = int(self.cfg.latent_dim)
        cl = torch.cat([net.encode(self._nb_x[wanted[i:i + 1000].to(self._nb_x.device)].to(device))[:, k:].argmax(1).cpu()
                        for i in range(0, len(wanted), 1000)])
        net.train(was)
        return float((cl[where[a]][:, None] == cl[where[idx]]).float().mean())

    def choose(self) -> dict[str, Tensor]:
        """Keep the member whose clusters agree most with the pixel neighbours; returns the scores for the log."""
        scores = [self.agreement(m) for m in self.G.members]
        best = max(range(len(scores)), key=lambda i: scores[i])
        self.G.selected.fill_(best)
        self.G.chosen.fill_(True)
        self.G.scores.copy_(torch.tensor(scores))
        self.G._refresh()
        return {f"aae/agreement_{i}": torch.tensor(v) for i, v in enumerate(scores)}

    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        chosen_now: dict[str, Tensor] = {}
        if (phase == "d" and ctx is not None and isinstance(self.G, AutoEncoderPopulation) and not self.G.chosen
                and ctx.step >= int(self.cfg.select_at)):
            chosen_now = self.choose()
        if phase not in ("d", "g"):
            raise ValueError(f"aae has the phases d and g, not '{phase}'")
        if not isinstance(self.G, AutoEncoderPopulation):
            return self._member_loss(phase, batch, self.G, self.D)
        parts = [self._member_loss(phase, batch, g, d) for g, d in self.members()]
        loss = sum(p.loss for p in parts)
        if self.G.chosen and self.shard[1] > 1:
            # distributed data parallel wants a gradient for every parameter it wraps: + 0 x the dropped members'
            # (the same value and gradients for the kept one), as base's lazy R1 phase does for D
            kept = int(self.G.selected)
            nets = self.G.members if phase == "g" else self.D  # what this phase trains
            dropped = [p for i, net in enumerate(nets) if i != kept for p in net.parameters()]
            loss = loss + 0.0 * sum(p.reshape(-1)[0] for p in dropped)
        logs = {key: torch.stack([torch.as_tensor(p.logs[key]).float() for p in parts]).mean() for key in parts[0].logs}
        logs.update(chosen_now)
        if isinstance(self.G, AutoEncoderPopulation) and self.G.chosen:
            logs["aae/kept"] = self.G.selected.float()
            logs["aae/kept_agreement"] = self.G.scores[self.G.selected]
        return StepOutput(loss, logs)

    def _member_loss(self, phase: str, batch: Batch, G: nn.Module, D: nn.Module) -> StepOutput:
        obj = self.objective
        if phase == "d":
            with torch.no_grad():
                z_fake, y_fake = self.split(G.encode(batch.x))
            z_real, y_real = self.prior(batch.size)
            real_logits, fake_logits = D.z(z_real).float(), D.z(z_fake.float()).float()
            loss = obj.d(real_logits, fake_logits, 1.0)
            logs: dict[str, Any] = {"d/loss_z": loss.detach()}
            if self.y_dim:
                ry, fy = D.y(y_real).float(), D.y(y_fake).float()
                loss_y = obj.d(ry, fy, 1.0)
                loss = loss + loss_y
                logs["d/loss_y"] = loss_y.detach()
            with torch.no_grad():
                logs.update({"d/loss": loss.detach(), "d/real": torch.sigmoid(real_logits).mean(),
                             "d/fake": torch.sigmoid(fake_logits).mean(),
                             "d/acc_real": (real_logits > 0).float().mean(),
                             "d/acc_fake": (fake_logits < 0).float().mean()})
            return StepOutput(loss, logs)
        h = G.encode(batch.x)
        z, y = self.split(h)
        code = z if y is None else torch.cat([z, y.to(z.dtype)], 1)
        recon = F.mse_loss(G.decode(code).float(), batch.x.float())
        adv = obj.g(D.z(z.float()).float())
        if y is not None:
            adv = adv + obj.g(D.y(y).float())
        loss = recon + self.cfg.adv_weight * adv
        logs = {"ae/recon": recon.detach(), "g/loss": adv.detach()}
        if y is not None and self.cfg.balance_weight > 0:
            # the per-sample D on y cannot see that whole clusters go unused; this batch term can: it is 0 when
            # the batch's average y is uniform over the categories and grows as clusters empty
            mean_y = y.mean(0)
            imbalance = math.log(self.y_dim) + (mean_y * mean_y.clamp(min=1e-8).log()).sum()
            loss = loss + self.cfg.balance_weight * imbalance
        if y is not None and self.cfg.neighbour_weight > 0:
            # SCAN's consistency (Van Gansbeke et al. 2020): an image and one of its nearest training images
            # should fall in the same category, -log <y(a), y(b)>
            xa, xb = self.neighbour_pairs(batch.size)
            _, yab = self.split(G.encode(torch.cat([xa, xb]).to(batch.x.dtype)))
            ya, yb = yab.chunk(2)
            agree = -(ya * yb).sum(1).clamp(min=1e-7).log().mean()
            loss = loss + self.cfg.neighbour_weight * agree
            logs["aae/neighbour_loss"] = agree.detach()
        if y is not None:
            with torch.no_grad():
                used = torch.bincount(y.argmax(1), minlength=self.y_dim).float() / len(y)
                logs["aae/confidence"] = y.max(1).values.mean()
                logs["aae/clusters_used"] = (used > 0.5 / self.y_dim).float().sum()
        return StepOutput(loss, logs)


@torch.no_grad()
def nearest_images(x: Tensor, k: int, anchors: int, chunk: int = 2000) -> tuple[Tensor, Tensor]:
    """The k nearest other images (Euclidean, on images average-pooled to at most 14x14) of `anchors` training
    images (a fixed random draw, in random order; 0 or more than there are: all of them). Returns (anchor indices
    (A,), neighbours (A, k))."""
    n = len(x)
    if k < 1 or n <= k:
        raise ValueError(f"aae: model.neighbours must be between 1 and {n - 1} (the training set has {n} images), got {k}")
    h, w = x.shape[-2:]
    f = F.adaptive_avg_pool2d(x.float(), (min(h, 14), min(w, 14))).flatten(1) if x.dim() == 4 else x.float().flatten(1)
    f = f - f.mean(0)
    sq = (f * f).sum(1)
    # a fixed random draw, in random order, so that any leading slice of it (agreement's) is a random sample too
    anchor = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:anchors if 0 < anchors < n else n]
    out = []
    for i in range(0, len(anchor), chunk):
        a = anchor[i:i + chunk]
        d = sq[a, None] - 2 * f[a] @ f.T + sq[None]
        d[torch.arange(len(a)), a] = float("inf")  # not itself
        out.append(d.topk(k, largest=False).indices)
    return anchor, torch.cat(out)


class AutoEncoderPopulation(nn.Module):
    """`restarts` autoencoders trained side by side until `chosen`; everything outside training (sampling, export,
    projection, cluster()) sees the kept one, `members[selected]` (members[0] until the choice)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("selected", torch.zeros((), dtype=torch.long))
        self.register_buffer("chosen", torch.zeros((), dtype=torch.bool))
        self.register_buffer("scores", torch.zeros(len(members)))  # each member's agreement when the choice was made
        # `selected` as a Python int: torch.export (ONNX) cannot branch on a buffer's value, so graphs read this,
        # refreshed from the buffer on every eager call and on loading a state dict
        self._index = 0
        self.register_load_state_dict_post_hook(lambda module, keys: module._refresh())

    def _refresh(self) -> None:
        self._index = int(self.selected)

    @property
    def kept(self) -> nn.Module:
        if not _tracing():
            self._refresh()
        return self.members[self._index]

    @property
    def encoder(self) -> nn.Module:
        return self.kept.encoder

    @property
    def decoder(self) -> nn.Module:
        return self.kept.decoder

    @property
    def code_mean(self) -> Tensor:
        return self.kept.code_mean

    @property
    def code_tril(self) -> Tensor:
        return self.kept.code_tril

    @property
    def code_dim(self) -> int:
        return self.kept.code_dim

    @property
    def mixture(self) -> tuple[int, float, float] | None:
        return self.kept.mixture

    def encode(self, x: Tensor) -> Tensor:
        return self.kept.encode(x)

    def decode(self, code: Tensor) -> Tensor:
        return self.kept.decode(code)

    def prior_to_code(self, z: Tensor) -> Tensor:
        return self.kept.prior_to_code(z)

    def code_to_prior(self, code: Tensor) -> Tensor:
        return self.kept.code_to_prior(code)

    def forward(self, z: Tensor) -> Tensor:
        return self.kept(z)
