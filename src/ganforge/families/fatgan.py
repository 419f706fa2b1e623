"""FAT-GAN: the feature-augmented and transformed GAN (Alanazi et al. 2020, arXiv:2001.11103; IJCAI 2021).

What the paper does: a fast event generator for inclusive electron-proton scattering learns the scattered
electron's momentum (p_x, p_y, p_z). Plain GANs produce unphysical events and miss the sharp edge of p_z at the
beam energy, so FAT-GAN
- trains with WGAN-GP (Gulrajani et al. 2017: n_critic 5, lambda 10, Adam 1e-4 with betas (0.5, 0.9)) and adds an
  MMD term with a Gaussian kernel to the generator's loss, L_G = -E[D(G(z))] + eta * MMD;
- *transforms* the features the generator produces: it generates (p_x, p_y, log(E_b - p_z)), standardised,
  so p_z < E_b holds for every output and the edge becomes a smooth tail;
- *augments* the discriminator's input with quantities derived from the generated features inside the
  network (its reference code: p_T, E = |p|, p_z, p_z / p_T, each standardised with the training data's
  statistics), so D sees the correlations that make an event physical;
- compares Cartesian and spherical representations of the momentum.
Its reference code uses MLPs of 5 x 512 LeakyReLU(0.2) units (D with dropout 0.1), latent z ~ N(0, I_100),
batches of 16,000.

This implementation (model.* options in FATGANConfig):
- G and D are MLPs (`hidden` units x `depth` layers, LeakyReLU(0.2); sizes in and out from the table).
  D is trained with `loss` (default wgan-gp; n_critic 5, gp_weight 10 from AdversarialConfig). G is
  initialised so its outputs start with a spread of order 1 (He init; see _mlp): with torch's default init a
  spherical G starts with every event at one E' and theta and learned ~5x slower in a smoke run.
- `mmd_weight` eta: G's loss adds eta * MMD^2 between the fake and the real batch, the unbiased estimate with a
  multi-bandwidth Gaussian kernel sum_s exp(-|a - b|^2 / (2 s^2)) over `mmd_bandwidths`, on the encoded rows
  (at most `mmd_rows` rows of each). The paper's code squares a linear-time MMD estimate with one kernel
  exp(-|a - b|^2) on the augmented vector, weighted by 1000; the quadratic unbiased estimate is less noisy at
  our smaller batches, and several widths cover both the edges and the bulk. eta = 1 by default: on 20,000
  eprime events (hidden 64, depth 3, batch 256, 2,500 steps, 3 seeds) it gave p_z's W1 ~0.10 GeV against ~0.16
  with eta = 10 and ~0.2 with eta = 0 or 100 (a small tuning run, not a sweep).
- transforms are the table's (data.transforms; `builtin:eprime` uses FAT-GAN's log(E_b - p_z) for p_z).
- `feature_augmentation`: derived quantities appended to D's input, real and fake alike, computed in physical
  units from the decoded rows (data/table_torch.py, differentiable, so G gets their gradients), standardised
  with the real data's statistics (taken in bind_data and kept as buffers, so checkpoints carry them) and
  softly limited to +-10 standard deviations (10 tanh(f / 10)) so an unphysical fake cannot feed D huge
  numbers. Events (the `momentum_columns` present): pT, p, theta, phi, E_prime, Q2, x_B (Q2 = 2 E_b (|p| - p_z),
  x_B = Q2 / (2 M nu), nu = E_b - |p| floored at 1e-3 E_b, as in data/eprime.py's validity); "auto" takes all
  but E_prime (which equals p for a massless electron). Other tables: "products" (the pairwise products of the
  continuous columns); "auto" takes them when there are at least two such columns. Any table: user formulas
  over the continuous columns (an entry that is not one of these names, e.g. "alcohol / ash" or
  "sqrt(px**2 + py**2)"; data.table_transforms.Formula's safe syntax, evaluated in torch so G gets gradients). The gradient penalty is
  taken on D's augmented input (interpolating real and fake augmented vectors), as the paper's code does.
- `representation`: "spherical" (the default for event tables) makes G output (E', theta, phi) through bounded
  maps, E' = E_b (1 - 1e-5) sigmoid(a), theta = pi sigmoid(b), phi = atan2(d, c), converts them to
  (p_x, p_y, p_z) and encodes those with the table's transforms, so E' <= E_b holds by construction for any
  weights; a float64 check after encoding shrinks the few rows whose decoded |p| rounding would put above E_b
  (so `tr.inverse(rows)` obeys |p| <= E_b exactly). Other columns of the table come from G directly.
  The maps start on the data: G's two bounded outputs are logit(E' / E_max) and logit(theta / pi) standardised
  with the real events' mean and std (bind_data; buffers of G), as the cartesian rows are standardised.
  "cartesian": G outputs the encoded rows (tanh/softmax blocks through their activations); p_z < E_b still
  holds through the log_distance transform, but E' <= E_b does not.
- The paper's D dropout is the option `d_dropout` (default 0: no dropout, a deterministic critic).
  Defaults are smaller than the paper's (hidden 256, depth 4) for CPU budgets; hidden 512, depth 5 give the
  paper's sizes. Set train.lr_g = train.lr_d = 1e-4, train.beta2 = 0.9 for the paper's optimiser.

A plain WGAN-GP (the bench's baseline): mmd_weight 0, feature_augmentation [] and representation cartesian give
an MLP G whose output is the encoded row and an MLP critic on the rows alone, trained by WGAN-GP, nothing else
(G keeps the initialisation above; the critic has torch's default).

fatgan trains on tables only (`needs = "table"`). With feature augmentation or the spherical representation,
the columns it reads must be continuous with one of the transforms data/table_torch.py runs (identity,
standard, minmax, logit, log, log_distance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data.eprime import DEFAULT_BEAM_ENERGY, PROTON_MASS
from ..data.spec import Batch, DataSpec
from ..data.table import transformer_from_spec
from ..data.table_torch import SUPPORTED as CODEC_TRANSFORMS
from ..data.table_torch import TorchCodec
from ..data.table_transforms import Block, Formula, OutputLayout, apply_activations
from .base import AdversarialConfig, AdversarialFamily, StepOutput, critic_step
from .phases import StepContext, runs_later, take

EVENT_FEATURES = ("pT", "p", "theta", "phi", "E_prime", "Q2", "x_B")
AUTO_EVENT_FEATURES = ("pT", "p", "theta", "phi", "Q2", "x_B")
GENERIC_FEATURES = ("products",)
REPRESENTATIONS = ("auto", "cartesian", "spherical")
ENERGY_MARGIN = 1e-5       # spherical: E' <= E_b (1 - ENERGY_MARGIN) before encoding
FEATURE_LIMIT = 10.0       # standardised features pass through FEATURE_LIMIT * tanh(f / FEATURE_LIMIT)
NU_FLOOR = 1e-3            # x_B's energy transfer nu is floored at NU_FLOOR * E_b (fakes may have nu <= 0)
GUARD_TRIES = 8
DEFAULT_MOMENTUM = ("px", "py", "pz")


@dataclass
class FATGANConfig(AdversarialConfig):
    latent_dim: int = 100
    loss: str = "wgan-gp"
    n_critic: int = 5
    hidden: int = 256                   # units per hidden layer, G and D (the paper: 512)
    depth: int = 4                      # hidden layers, G and D (the paper: 5)
    d_dropout: float = 0.0              # dropout after D's hidden layers (the paper: 0.1)
    mmd_weight: float = 1.0             # eta of eta * MMD^2 in G's loss; 0 disables the term
    mmd_bandwidths: Any = (0.25, 0.5, 1.0, 2.0, 4.0)  # Gaussian kernel widths s on the encoded rows
    mmd_rows: int = 1024                # rows of each batch the MMD uses (its cost grows with their square)
    feature_augmentation: Any = "auto"  # "auto", or a list: pT, p, theta, phi, E_prime, Q2, x_B (events), products
    representation: str = "auto"        # auto (spherical for events, else cartesian) | cartesian | spherical
    momentum_columns: Any = DEFAULT_MOMENTUM    # the electron momentum's columns (GeV) in an event table
    beam_energy: float = DEFAULT_BEAM_ENERGY    # E_b in GeV


def _mlp(sizes: list[int], dropout: float = 0.0, spread_init: bool = False) -> nn.Sequential:
    """Linear layers with LeakyReLU(0.2) (and optional dropout) between them.

    spread_init (the generators): He initialisation for LeakyReLU in the hidden layers, N(0, 1 / fan_in) for the
    last, zero biases, so the outputs start with a spread of order 1 like the standardised rows; torch's default
    initialisation gives ~0.03 through a few layers, and a spherical generator then starts with every E' and
    theta at one value and spends its first thousand steps spreading out. The critic keeps torch's default.
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        last = i == len(sizes) - 2
        if spread_init:
            if last:
                nn.init.normal_(lin.weight, std=1.0 / math.sqrt(a))
            else:
                nn.init.kaiming_normal_(lin.weight, a=0.2, nonlinearity="leaky_relu")
            nn.init.zeros_(lin.bias)
        layers.append(lin)
        if not last:
            layers.append(nn.LeakyReLU(0.2))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _sub_layout(layout: OutputLayout, blocks: list[Block]) -> OutputLayout:
    out, at = [], 0
    for b in blocks:
        out.append(Block(b.column, at, at + b.width, b.activation, b.role))
        at += b.width
    return OutputLayout(tuple(out))


class RowGenerator(nn.Module):
    """Cartesian: z -> encoded rows (N, D), each block through its activation (tanh, softmax, or none)."""

    def __init__(self, latent_dim: int, hidden: int, depth: int, layout: OutputLayout) -> None:
        super().__init__()
        self.layout = layout
        self.net = _mlp([latent_dim] + [hidden] * depth + [layout.dim], spread_init=True)

    def forward(self, z: Tensor) -> Tensor:
        return apply_activations(self.net(z), self.layout)


def _finite_grad(v: Tensor) -> Tensor:
    """v, whose gradient is made finite (NaN, +-inf -> 0) on its way back: a user formula can divide by a column
    that sits at 0 or take sqrt(0), where the non-finite value is cleaned (raw_features' nan_to_num) but its
    backward still computes 0 x inf = NaN into G."""
    if not v.requires_grad:
        return v
    v = v.view_as(v)
    v.register_hook(lambda g: torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0))
    return v


def _safe_angle(y: Tensor, x: Tensor) -> Tensor:
    """atan2(y, x) with finite gradients at (0, 0) (taken there as angle 0)."""
    small = x * x + y * y < 1e-30
    return torch.atan2(torch.where(small, torch.zeros_like(y), y), torch.where(small, torch.ones_like(x), x))


class SphericalGenerator(nn.Module):
    """Spherical: z -> (E', theta, phi) through bounded maps -> (p_x, p_y, p_z) -> the table's encoding.

    The momentum columns of the row come from the codec; the table's other blocks from the MLP directly.
    E' <= E_b (1 - ENERGY_MARGIN) for any weights (non-finite MLP outputs are replaced first), and `guard`
    makes the float64 decoding of the float32 rows obey |p| <= E_b exactly.
    """

    def __init__(self, latent_dim: int, hidden: int, depth: int, layout: OutputLayout, codec: TorchCodec,
                 beam_energy: float) -> None:
        super().__init__()
        self.layout, self.codec, self.beam_energy = layout, codec, float(beam_energy)
        momentum = set(codec.index)
        others = [b for b in layout.blocks if b.start not in momentum]
        self.other_layout = _sub_layout(layout, others)
        self.net = _mlp([latent_dim] + [hidden] * depth + [4 + self.other_layout.dim], spread_init=True)
        # the row's positions, in the order [momentum columns (codec order), other blocks]
        order = list(codec.index) + [i for b in others for i in range(b.start, b.stop)]
        inverse = sorted(range(len(order)), key=order.__getitem__)
        self.register_buffer("to_row", torch.as_tensor(inverse, dtype=torch.long), persistent=False)
        mask = torch.zeros(layout.dim, dtype=torch.bool)
        mask[list(codec.index)] = True
        self.register_buffer("momentum_mask", mask, persistent=False)
        # logit(E' / E_max) and logit(theta / pi) of the real data: mean and std (set by FATGAN.bind_data), so
        # the MLP's outputs are standardised like the encoded rows of the cartesian representation
        self.register_buffer("angles_loc", torch.zeros(2))
        self.register_buffer("angles_scale", torch.ones(2))

    @property
    def e_max(self) -> float:
        return self.beam_energy * (1.0 - ENERGY_MARGIN)

    def momentum(self, h: Tensor) -> Tensor:
        """The MLP's first four outputs (N, 4) -> momenta (N, 3) in GeV, |p| <= E_b (1 - ENERGY_MARGIN)."""
        a = self.angles_loc + self.angles_scale * h[:, :2]
        e = self.e_max * torch.sigmoid(a[:, 0])
        theta = math.pi * torch.sigmoid(a[:, 1])
        phi = _safe_angle(h[:, 3], h[:, 2])
        s = torch.sin(theta)
        return torch.stack([e * s * torch.cos(phi), e * s * torch.sin(phi), e * torch.cos(theta)], dim=1)

    def forward(self, z: Tensor) -> Tensor:
        h = torch.nan_to_num(self.net(z))
        parts = [self.codec.encode(self.momentum(h), clamp=True)]
        if self.other_layout.dim:
            parts.append(apply_activations(h[:, 4:], self.other_layout))
        rows = torch.cat(parts, dim=1)[:, self.to_row]
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
            return rows  # an exported or compiled graph has no data-dependent loop: the margin alone bounds E'
        return rows + (self.guard(rows) - rows).detach()

    @torch.no_grad()
    def guard(self, rows: Tensor) -> Tensor:
        """`rows` with the momentum of every row whose float64 decoding has |p| > E_b shrunk until it has not."""
        e_b = self.beam_energy
        limit = e_b * (1.0 - 1e-9)  # a few ulps below E_b: numpy's float64 decoding may differ by ulps
        out = rows
        for k in range(GUARD_TRIES + 1):
            p = torch.nan_to_num(self.codec.decode(out.double()), nan=0.0, posinf=e_b, neginf=-e_b)
            size = p.pow(2).sum(1).sqrt()
            bad = ~(size <= limit)
            if not bool(bad.any()):
                return out
            if k == GUARD_TRIES:  # the last resort: the momentum of those rows at zero
                p = torch.zeros_like(p)
            else:
                scale = (e_b * (1.0 - 1e-6 * 4.0**k) / size.clamp_min(1e-300)).clamp(max=1.0)
                p = p * torch.where(bad, scale, torch.ones_like(scale))[:, None]
            enc = self.codec.encode(p, clamp=True).to(out.dtype)
            fixed = out.clone()
            fixed[:, self.codec.index] = enc
            out = torch.where(bad[:, None] & self.momentum_mask, fixed, out)
        return out


class AugmentedCritic(nn.Module):
    """The MLP critic on D's input: the encoded row and, after it, the standardised derived features."""

    def __init__(self, in_dim: int, hidden: int, depth: int, dropout: float) -> None:
        super().__init__()
        self.net = _mlp([in_dim] + [hidden] * depth + [1], dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


def _moments(fn: Any, x: Tensor, chunk: int = 65536) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation (float64 sums; a std of 0 or non-finite taken as 1) of fn(rows) (N, F)."""
    total, total2, n = 0.0, 0.0, x.shape[0]
    for start in range(0, n, chunk):
        f = fn(x[start:start + chunk]).double()
        total = total + f.sum(0)
        total2 = total2 + f.pow(2).sum(0)
    mean = total / n
    std = (total2 / n - mean * mean).clamp_min(0.0).sqrt()
    return mean, torch.where((std > 0) & torch.isfinite(std), std, torch.ones_like(std))


def mmd2(x: Tensor, y: Tensor, bandwidths: tuple[float, ...]) -> Tensor:
    """Unbiased MMD^2 between x (N, F) and y (M, F) with k(a, b) = sum_s exp(-|a - b|^2 / (2 s^2)); differentiable.

    E k(x, x') + E k(y, y') - 2 E k(x, y), the first two over distinct pairs (Gretton et al. 2012, eq. 3).
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"MMD needs at least 2 rows on each side, got {n} and {m}")
    coef = [-0.5 / (s * s) for s in bandwidths]

    def kernel_sum(a: Tensor, b: Tensor, same: bool) -> Tensor:
        d2 = ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T).clamp_min(0.0)
        k = torch.exp(d2 * coef[0])
        for c in coef[1:]:
            k = k + torch.exp(d2 * c)
        return k.sum() - k.diagonal().sum() if same else k.sum()

    kxx = kernel_sum(x, x, True) / (n * (n - 1))
    kxy = kernel_sum(x, y, False) / (n * m)
    if y.requires_grad:
        kyy = kernel_sum(y, y, True) / (m * (m - 1))
    else:  # a constant of the loss (the real rows): no graph
        with torch.no_grad():
            kyy = kernel_sum(y, y, True) / (m * (m - 1))
    return kxx + kyy - 2.0 * kxy


class FATGAN(AdversarialFamily):
    """FAT-GAN for tables: MLP G/D, WGAN-GP + eta MMD^2, augmented D input, spherical events (see module doc)."""

    Config = FATGANConfig
    name = "fatgan"
    description = "FAT-GAN (Alanazi 2020): WGAN-GP + MMD, feature-augmented D, bounded spherical events; tables"
    needs = "table"
    table_continuous = "standard"
    lecam_supported = False  # its D phase is its own (no LeCam term there)

    def __init__(self, cfg: FATGANConfig, spec: DataSpec, generator_only: bool = False) -> None:
        if spec.kind != "table":
            raise ValueError(f"fatgan trains on tables (.csv, .parquet, builtin:eprime), but '{spec.name}' holds "
                             f"{spec.kind}; give --data a table, or choose another --family")
        self._check_options(cfg)
        self.transformer = transformer_from_spec(spec)
        self.momentum_columns = tuple(str(c) for c in cfg.momentum_columns)
        names = [n for n, _, _ in self.transformer.columns]
        self.events = all(c in names for c in self.momentum_columns)
        if not self.events and self.momentum_columns != DEFAULT_MOMENTUM:
            raise ValueError(f"model.momentum_columns {', '.join(self.momentum_columns)} are not all columns of the "
                             f"table (its columns: {', '.join(names)}); name its p_x, p_y, p_z columns")
        self.representation = cfg.representation
        if self.representation == "auto":
            self.representation = "spherical" if self.events else "cartesian"
        if self.representation == "spherical" and not self.events:
            raise ValueError(f"representation spherical needs the momentum columns {', '.join(self.momentum_columns)}"
                             f" in the table (its columns: {', '.join(names)}); set model.momentum_columns to the "
                             f"table's momentum columns, or representation: cartesian")
        self.momentum_codec = TorchCodec(self.transformer, self.momentum_columns) if (
            self.representation == "spherical") else None
        if self.momentum_codec is not None:
            for col, (lo, hi) in zip(self.momentum_columns, self.momentum_codec.domains):
                if not lo <= 0.0 <= hi:
                    raise ValueError(f"column '{col}' decodes to [{lo:g}, {hi:g}], which excludes 0: the spherical "
                                     f"representation needs momentum ranges around 0 (clamping must not raise |p|); "
                                     f"fix the column's bounds or transform, or set representation: cartesian")
        self.features, self.feature_codec = self._resolve_features(cfg, names)
        super().__init__(cfg, spec, generator_only)
        n_feat = len(self.feature_names)
        self.register_buffer("feature_mean", torch.zeros(n_feat))
        self.register_buffer("feature_std", torch.ones(n_feat))

    # -- options ----------------------------------------------------------------------------------
    @staticmethod
    def _check_options(cfg: FATGANConfig) -> None:
        for key in ("latent_dim", "hidden", "depth", "mmd_rows"):
            v = getattr(cfg, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"model.{key} must be a positive integer, got {v!r}")
        if cfg.mmd_rows < 2:
            raise ValueError(f"model.mmd_rows must be >= 2 (the MMD needs pairs of rows), got {cfg.mmd_rows}")
        if not (isinstance(cfg.d_dropout, (int, float)) and 0.0 <= cfg.d_dropout < 1.0):
            raise ValueError(f"model.d_dropout must be in [0, 1) (the paper: 0.1), got {cfg.d_dropout!r}")
        if not (isinstance(cfg.mmd_weight, (int, float)) and math.isfinite(cfg.mmd_weight) and cfg.mmd_weight >= 0):
            raise ValueError(f"model.mmd_weight must be a number >= 0 (0 turns the MMD term off), got "
                             f"{cfg.mmd_weight!r}")
        widths = cfg.mmd_bandwidths
        if isinstance(widths, (int, float)) and not isinstance(widths, bool):
            widths = (widths,)
        if (not isinstance(widths, (list, tuple)) or not widths
                or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0
                           for s in widths)):
            raise ValueError(f"model.mmd_bandwidths must be a non-empty list of positive kernel widths, e.g. "
                             f"[0.5, 1, 2], got {cfg.mmd_bandwidths!r}")
        cfg.mmd_bandwidths = tuple(float(s) for s in widths)
        if cfg.representation not in REPRESENTATIONS:
            raise ValueError(f"model.representation must be one of {', '.join(REPRESENTATIONS)}, got "
                             f"{cfg.representation!r}")
        if not (isinstance(cfg.beam_energy, (int, float)) and math.isfinite(cfg.beam_energy) and cfg.beam_energy > 0):
            raise ValueError(f"model.beam_energy must be a positive number of GeV (e.g. 10.6), got {cfg.beam_energy!r}")
        cols = cfg.momentum_columns
        if (not isinstance(cols, (list, tuple)) or len(cols) != 3 or len({str(c) for c in cols}) != 3
                or not all(isinstance(c, str) and c for c in cols)):
            raise ValueError(f"model.momentum_columns must name three distinct columns (p_x, p_y, p_z), e.g. "
                             f"[px, py, pz], got {cols!r}")
        if cfg.r1_weight:
            raise ValueError("fatgan regularises D with WGAN-GP's gradient penalty; set model.r1_weight to 0")

    def _resolve_features(self, cfg: FATGANConfig, names: list[str]) -> tuple[tuple[str, ...], TorchCodec | None]:
        aug = cfg.feature_augmentation
        continuous = [n for n, _, t in self.transformer.columns if t.name in CODEC_TRANSFORMS]
        if aug == "auto":
            if self.events:
                aug = list(AUTO_EVENT_FEATURES)
            else:
                aug = ["products"] if len(continuous) >= 2 else []
        if aug is None:
            aug = []
        if isinstance(aug, str):
            aug = [aug]
        if not isinstance(aug, (list, tuple)) or not all(isinstance(a, str) for a in aug):
            raise ValueError(f"model.feature_augmentation must be \"auto\" or a list of names "
                             f"({', '.join(EVENT_FEATURES)}"
                             f" for events; products), got {cfg.feature_augmentation!r}")
        aug = tuple(aug)
        valid = EVENT_FEATURES + GENERIC_FEATURES
        self.formulas: dict[str, Formula] = {}
        for a in aug:
            if a in valid:
                continue
            try:  # a user formula over the continuous columns, e.g. "alcohol / ash"
                f = Formula(a, continuous)
            except ValueError as e:
                raise ValueError(f"unknown feature_augmentation {a!r}: neither a name ({', '.join(valid)}) nor a "
                                 f"formula over the continuous columns ({', '.join(continuous) or 'none'}): {e}"
                                 ) from None
            if not f.names:
                raise ValueError(f"feature_augmentation formula {a!r} reads no column; use the continuous columns "
                                 f"({', '.join(continuous)})")
            self.formulas[a] = f
        if len(set(aug)) != len(aug):
            raise ValueError(f"model.feature_augmentation lists a quantity twice: {list(aug)}")
        event_feats = [a for a in aug if a in EVENT_FEATURES]
        if event_feats and not self.events:
            raise ValueError(f"feature_augmentation {', '.join(event_feats)} are event quantities, computed from the "
                             f"momentum columns {', '.join(self.momentum_columns)}, which the table lacks (its "
                             f"columns: {', '.join(names)}); set model.momentum_columns, or use products or []")
        if "products" in aug and len(continuous) < 2:
            raise ValueError(f"feature_augmentation products needs two or more continuous columns with the transforms "
                             f"{', '.join(CODEC_TRANSFORMS)}; the table has {len(continuous)}: use [] instead")
        if not aug:
            return (), None
        needed: list[str] = list(self.momentum_columns) if event_feats else []
        if "products" in aug:
            needed += [c for c in continuous if c not in needed]
        for f in self.formulas.values():
            needed += [c for c in f.names if c not in needed]
        return aug, TorchCodec(self.transformer, needed)

    # -- networks ---------------------------------------------------------------------------------
    def build_generator(self) -> nn.Module:
        c = self.cfg
        layout = self.transformer.layout
        if self.representation == "spherical":
            return SphericalGenerator(c.latent_dim, c.hidden, c.depth, layout, self.momentum_codec, c.beam_energy)
        return RowGenerator(c.latent_dim, c.hidden, c.depth, layout)

    def build_discriminator(self) -> nn.Module:
        c = self.cfg
        return AugmentedCritic(self.transformer.layout.dim + len(self.feature_names), c.hidden, c.depth, c.d_dropout)

    # -- derived features -------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """The names of the quantities appended to D's input, in order ("px*py" for products)."""
        out: list[str] = []
        for a in self.features:
            if a == "products":
                cols = self._product_columns()
                out += [f"{u}*{v}" for i, u in enumerate(cols) for v in cols[i + 1:]]
            else:
                out.append(a)
        return out

    def _product_columns(self) -> list[str]:
        """The columns whose pairwise products "products" appends: every column the torch codec runs."""
        return [n for n, _, t in self.transformer.columns if t.name in CODEC_TRANSFORMS]

    def raw_features(self, rows: Tensor) -> Tensor:
        """(N, F) derived quantities in physical units (float64 where the device has it) from encoded rows."""
        dtype = torch.float32 if rows.device.type == "mps" else torch.float64
        values = self.feature_codec.decode(rows.to(dtype))
        col = {n: values[:, j] for j, n in enumerate(self.feature_codec.names)}
        out: list[Tensor] = []
        ev: dict[str, Tensor] = {}
        if any(a in EVENT_FEATURES for a in self.features):
            px, py, pz = (col[c] for c in self.momentum_columns)
            e_b = float(self.cfg.beam_energy)
            pt2 = px * px + py * py
            pt = torch.sqrt(pt2 + 1e-24)
            p = torch.sqrt(pt2 + pz * pz + 1e-24)
            q2 = 2.0 * e_b * (p - pz)
            nu = torch.clamp_min(e_b - p, NU_FLOOR * e_b)
            ev = {"pT": pt, "p": p, "E_prime": p, "theta": torch.atan2(pt, pz), "phi": _safe_angle(py, px),
                  "Q2": q2, "x_B": q2 / (2.0 * PROTON_MASS * nu)}
        for a in self.features:
            if a == "products":
                cols = self._product_columns()
                out += [col[u] * col[v] for i, u in enumerate(cols) for v in cols[i + 1:]]
            elif a in self.formulas:
                out.append(self.formulas[a].torch({c: _finite_grad(col[c]) for c in self.formulas[a].names}))
            else:
                out.append(ev[a])
        f = torch.stack(out, dim=1)
        return torch.nan_to_num(f, nan=0.0, posinf=1e30, neginf=-1e30)

    def d_input(self, rows: Tensor) -> Tensor:
        """What D sees: the encoded rows, then the standardised, softly limited derived features."""
        if self.augment is not None:
            raise ValueError("train.augment (diffaugment, ada) augments images; set train.augment none for tables")
        if not self.features:
            return rows
        raw = self.raw_features(rows)
        f = (raw - self.feature_mean.to(raw.dtype)) / self.feature_std.to(raw.dtype)
        f = FEATURE_LIMIT * torch.tanh(f / FEATURE_LIMIT)
        return torch.cat([rows, f.to(rows.dtype)], dim=1)

    @torch.no_grad()
    def bind_data(self, data: Any) -> None:
        """Statistics of the real rows into buffers (checkpointed with the weights): the derived features' means
        and standard deviations, and under the spherical representation those of logit(E' / E_max) and
        logit(theta / pi), which place G's bounded maps on the data from the first step."""
        x = data.x
        if x.shape[0] < 2:
            raise ValueError(f"fatgan needs at least 2 rows to standardise its inputs, got {x.shape[0]}")
        device = self.feature_mean.device
        if self.features:
            mean, std = _moments(lambda rows: self.raw_features(rows.to(device)), x)
            self.feature_mean.copy_(mean.to(self.feature_mean.dtype))
            self.feature_std.copy_(std.to(self.feature_std.dtype))
        if self.representation == "spherical":
            G = self.G
            mean, std = _moments(lambda rows: self._angles(rows.to(device), G.e_max), x)
            G.angles_loc.copy_(mean.to(G.angles_loc.dtype))
            G.angles_scale.copy_(std.to(G.angles_scale.dtype))

    def _angles(self, rows: Tensor, e_max: float) -> Tensor:
        """(N, 2): logit(E' / e_max) and logit(theta / pi) of encoded rows (clipped 1e-6 away from 0 and 1)."""
        p = self.momentum_codec.decode(rows.double())
        e = p.pow(2).sum(1).sqrt()
        theta = torch.atan2(p[:, :2].pow(2).sum(1).sqrt(), p[:, 2])
        u = torch.stack([e / e_max, theta / math.pi], 1).clamp(1e-6, 1 - 1e-6)
        return torch.log(u) - torch.log1p(-u)

    # -- losses -----------------------------------------------------------------------------------
    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        real = batch.x
        obj, cfg = self.objective, self.cfg
        if phase == "d":
            if runs_later(ctx, "g"):
                fake_g, _ = self.generate(batch.size)  # G's phase of this step reuses these fakes
                ctx.handoff["fakes"] = (fake_g, None)
                fake = fake_g.detach()
            else:
                with torch.no_grad():
                    fake, _ = self.generate(batch.size)
            real_in, fake_in = self.d_input(real), self.d_input(fake)
            return critic_step(obj, self.D, real_in, fake_in, cfg.gp_weight, 1.0 - cfg.label_smoothing, real, fake)
        if phase == "g":
            shared = take(ctx, "fakes")
            if shared is None or shared[0].shape[0] != batch.size:
                shared = self.generate(batch.size)
            fake = shared[0]
            adv = obj.g(self.D(self.d_input(fake)).float())
            logs = {"g/adv": adv.detach()}
            loss = adv
            if cfg.mmd_weight > 0:
                k = min(cfg.mmd_rows, fake.shape[0], real.shape[0])
                m = mmd2(fake[:k].float(), real[:k].float(), cfg.mmd_bandwidths)
                loss = loss + cfg.mmd_weight * m
                logs["g/mmd2"] = m.detach()
            logs["g/loss"] = loss.detach()
            return StepOutput(loss, logs)
        raise ValueError(f"{self.name} has phases {', '.join(p.name for p in self.phase_specs())}, not '{phase}'")

