"""CTGAN (Xu, Skoularidou, Cuesta-Infante and Veeramachaneni, NeurIPS 2019, "Modeling Tabular data using
Conditional GAN"): a conditional GAN for tables with continuous and categorical columns.

What the paper does
- Mode-specific normalisation: each continuous column is fitted with a variational Gaussian mixture and a value
  becomes a scalar alpha = (x - mu_k) / (4 sigma_k) plus the one-hot of its mode k. Here that is the data
  layer's `vgm` transform (data/table_transforms.py), which this family asks for by default
  (`table_continuous = "vgm"`; `data.continuous` or `data.transforms` override it per run or per column).
- A conditional vector: the one-hots of every categorical column side by side, with a single 1 that says
  "column j has category k". G reads [z, cond]; D reads [row, cond].
- Training-by-sampling: a step picks a categorical column uniformly, then a category of it with probability
  proportional to log(frequency + 1), and the real rows D sees are drawn among the rows that have that category,
  so rare categories are trained on as often as their log-frequency says. G's loss adds the cross-entropy between
  the cond vector's category and G's output (its logits) for the chosen column, so G honours the condition.
- G: residual blocks (Linear, BatchNorm, ReLU, output concatenated to the block's input), 256 and 256 wide,
  from [z (128), cond] to the encoded row; tanh for the alphas, Gumbel-softmax (tau 0.2) for the mode and
  category one-hots. D: PacGAN (Lin et al. 2018) packing of pac = 10 rows into one input, two blocks of
  Linear(256), LeakyReLU(0.2), Dropout(0.5), WGAN-GP (lambda 10, interpolation weight per pack). Adam 2e-4,
  betas (0.5, 0.9), weight decay 1e-6, batch 500, 300 epochs (an epoch = rows // batch steps).
- Sampling: the cond vector is drawn with the empirical category frequencies (a random row's category in a
  uniformly chosen column), and G's softmax blocks are Gumbel-softmax draws, decoded by argmax.

Where this implementation differs, and why
- The cond vector at sampling time is a deterministic function of the latent, so a seed gives the same rows in
  Python, in the servers and in an exported ONNX graph (which is G alone). The latent is all N(0, 1):
  [z (latent_dim) | u_col, u_cat | e (one per softmax output)], and Phi (the normal CDF) turns each extra entry
  into a uniform: column = floor(n_columns Phi(u_col)); category = the inverse CDF of that column's empirical
  frequencies at Phi(u_cat); each softmax block outputs the one-hot of argmax(logits + g) with Gumbel noise
  g = -log(-log Phi(e)), an exact draw from softmax(logits): the reference's Gumbel-softmax then argmax, without
  its temperature (which only softens the output, not the argmax). Without categorical columns the u entries are
  absent; `latent_dim` (the property) is the full width. The empirical frequencies are a buffer of G, set by
  `bind_data` and saved with G's weights (EMA included). Truncation is refused: psi z would move the Phi(u)
  draws towards 1/2 and skew which columns, categories and modes are drawn.
- Training-by-sampling is vectorised: `bind_data` sorts the row indices by (column, category) once; a step's
  real rows are one gather at first[g] + floor(u count[g]) (the reference calls numpy's random.choice once per
  row, in Python). With categorical columns the loader's batch gives only the number of rows; the rows
  themselves are drawn here. Without categorical columns the cond vector is empty and the loader's rows are used
  (plain WGAN-GP on packed rows, as the reference).
- One G forward per step: D's fakes (with their graph) are reused by G's phase, as the other families do; the
  reference draws new noise and conditions for G's step. Real rows are drawn for the fakes' conditions in a
  shuffled order (the reference's c2 = c1[perm]), so real and fake packs carry the same multiset of conditions.
- The cross-entropy is computed for every row at once (the logits of each row's chosen column gathered into a
  padded (N, max categories) matrix), not column by column.
- The trainer's Adam has no weight decay (the reference's is 1e-6: a negligible pull at lr 2e-4) and keeps an
  EMA of G for sampling (train.ema_decay; 0 turns it off, as the reference has none). Train settings the paper
  uses and ganforge's trainer defaults do not: `train_defaults` below (batch 500, beta2 0.9).
- `loss` may be any of ganforge's adversarial losses (packing applies to all; wgan-gp, the paper's, is the
  default); the gradient penalty then acts on packed inputs, one interpolation weight per pack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..data.spec import Batch, DataSpec
from ..data.table import transformer_from_spec
from ..data.table_transforms import OutputLayout, apply_activations
from ..losses import LOSSES, get_loss
from .base import Family, StepOutput, critic_step
from .phases import Phase, StepContext, runs_later, take

ONE_BELOW = 1.0 - 2.0**-24  # the float32 just below 1: uniforms are clamped below it, so an inverse CDF never
                            # runs past a column's last category
TINY = 2.0**-24             # uniforms for the Gumbel noise are clamped above it (Phi underflows to 0 below -5.3)


@dataclass
class CTGANConfig:
    latent_dim: int = 128                # z, the noise G reads beside the cond vector (the paper's embedding_dim)
    generator_dims: list[int] = field(default_factory=lambda: [256, 256])      # residual blocks of G
    discriminator_dims: list[int] = field(default_factory=lambda: [256, 256])  # hidden layers of D
    pac: int = 10                        # rows packed into one D input (PacGAN); train.batch_size must be a multiple
    dropout: float = 0.5                 # D's dropout after each hidden layer
    loss: str = "wgan-gp"                # the adversarial loss (the paper: wgan-gp)
    gp_weight: float = 10.0              # lambda of WGAN-GP (on packed inputs)
    clip_value: float = 0.01             # loss=wgan: D's weight clipping range
    n_critic: int = 1                    # D updates per G update (the reference's discriminator_steps)
    gumbel_tau: float = 0.2              # Gumbel-softmax temperature of G's one-hot blocks while training
    log_frequency: bool = True           # training-by-sampling draws categories by log(frequency + 1); False: frequency
    cond_weight: float = 1.0             # weight of the cond vector's cross-entropy in G's loss (the paper: 1)


def _fail(name: str, need: str, got: Any) -> ValueError:
    return ValueError(f"ctgan option model.{name} must be {need}; got {got!r} (set it with --set model.{name}=...)")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_config(cfg: CTGANConfig) -> None:
    """Every option in range, or a ValueError that names the option and a valid value."""
    if not _is_int(cfg.latent_dim) or cfg.latent_dim < 1:
        raise _fail("latent_dim", "an integer >= 1 such as 128", cfg.latent_dim)
    for name in ("generator_dims", "discriminator_dims"):
        dims = getattr(cfg, name)
        if not isinstance(dims, (list, tuple)) or not all(_is_int(d) and d >= 1 for d in dims):
            raise _fail(name, "a list of layer widths >= 1 such as [256, 256]", dims)
    if not _is_int(cfg.pac) or cfg.pac < 1:
        raise _fail("pac", "an integer >= 1 (the paper: 10; 1 turns packing off)", cfg.pac)
    if not _is_number(cfg.dropout) or not 0.0 <= cfg.dropout < 1.0:
        raise _fail("dropout", "in [0, 1) such as 0.5", cfg.dropout)
    if cfg.loss not in LOSSES:
        raise _fail("loss", f"one of {', '.join(LOSSES)} (the paper: wgan-gp)", cfg.loss)
    if not _is_number(cfg.gp_weight) or cfg.gp_weight < 0:
        raise _fail("gp_weight", "a number >= 0 such as 10", cfg.gp_weight)
    if not _is_number(cfg.clip_value) or cfg.clip_value <= 0:
        raise _fail("clip_value", "a number > 0 such as 0.01", cfg.clip_value)
    if not _is_int(cfg.n_critic) or cfg.n_critic < 1:
        raise _fail("n_critic", "an integer >= 1 such as 1", cfg.n_critic)
    if not _is_number(cfg.gumbel_tau) or cfg.gumbel_tau <= 0:
        raise _fail("gumbel_tau", "a temperature > 0 such as 0.2", cfg.gumbel_tau)
    if not isinstance(cfg.log_frequency, bool):
        raise _fail("log_frequency", "true or false", cfg.log_frequency)
    if not _is_number(cfg.cond_weight) or cfg.cond_weight < 0:
        raise _fail("cond_weight", "a number >= 0 such as 1", cfg.cond_weight)


def normal_cdf(x: Tensor) -> Tensor:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2 (erf, not erfc: ONNX has Erf)."""
    return 0.5 * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))


def category_cdf(weights: Tensor, count: Tensor, start: Tensor, width: int) -> Tensor:
    """(n_columns, width) float32: row j the cumulative distribution of column j's categories with the given
    (C,) non-negative weights, normalised per column; from the column's last category of positive weight on,
    and in the padding, exactly 1, so a uniform below 1 never selects a category of weight 0."""
    out = torch.ones(len(count), width, dtype=torch.float64)
    for j, (n, s) in enumerate(zip(count.tolist(), start.tolist())):
        w = weights[s : s + n].to(torch.float64)
        if not bool((w > 0).any()):
            raise ValueError(f"categorical column {j} of the conditional vector has no category of positive weight")
        c = torch.cumsum(w, 0) / w.sum()
        last = int(torch.nonzero(w > 0).max())
        c[last:] = 1.0
        out[j, :n] = c
    return out.float()


def choose(u_col: Tensor, u_cat: Tensor, cdf: Tensor, count: Tensor, start: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(column, category in the column, index in the cond vector), each (N,) int64, from two (N,) uniforms in
    [0, 1): the column uniformly, floor(n_columns u_col); the category by inverse CDF, the number of the
    column's cumulative probabilities <= u_cat. Elementwise ops, gathers and comparisons only (ONNX-exportable)."""
    n_cols = count.shape[0]
    u_col = u_col.clamp(0.0, ONE_BELOW)
    u_cat = u_cat.clamp(0.0, ONE_BELOW)
    col = torch.minimum((u_col * n_cols).long(), torch.full_like(u_col, n_cols - 1, dtype=torch.long))
    cat = (u_cat.unsqueeze(1) >= cdf.index_select(0, col)).long().sum(1)
    return col, cat, start.index_select(0, col) + cat


def one_hot(index: Tensor, width: int, dtype: torch.dtype) -> Tensor:
    """(N, width) one-hot of (N,) int64 indices by comparison (exports to ONNX, unlike F.one_hot)."""
    return (torch.arange(width, device=index.device).unsqueeze(0) == index.unsqueeze(1)).to(dtype)


class Residual(nn.Module):
    """[ReLU(BN(Linear(x))), x]: CTGAN's residual block (its output concatenated to its input)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)


class CTGANGenerator(nn.Module):
    """G: raw(z, cond) -> (N, D) logits and pre-tanh values (training); forward(latent) -> encoded rows (sampling).

    forward reads the whole latent [z | u_col, u_cat | e] (see the module docstring), picks the condition from
    the empirical category frequencies (buffer `cond_cdf`) and draws every softmax block by Gumbel-max, so the
    rows are a deterministic function of the latent and G alone is the exported graph.
    """

    def __init__(self, noise_dim: int, layout: OutputLayout, dims: list[int]) -> None:
        super().__init__()
        cats = layout.category_blocks()
        self.noise_dim, self.layout = int(noise_dim), layout
        self.cond_dim = sum(b.width for b in cats)
        self.n_cond_columns = len(cats)
        self.n_select = 2 if cats else 0
        self.softmax_width = sum(b.width for b in layout.softmax_blocks())
        self.latent_width = self.noise_dim + self.n_select + self.softmax_width
        layers: list[nn.Module] = []
        width = self.noise_dim + self.cond_dim
        for d in dims:
            layers.append(Residual(width, int(d)))
            width += int(d)
        layers.append(nn.Linear(width, layout.dim))
        self.body = nn.Sequential(*layers)
        count = torch.tensor([b.width for b in cats], dtype=torch.long)
        start = torch.cumsum(count, 0) - count
        max_cat = int(count.max()) if cats else 1
        self.register_buffer("cond_count", count, persistent=False)
        self.register_buffer("cond_start", start, persistent=False)
        # the empirical category frequencies, cumulative per column: uniform until bind_data sets them; saved
        self.register_buffer("cond_cdf", category_cdf(torch.ones(self.cond_dim), count, start, max_cat))

    def raw(self, z: Tensor, cond: Tensor) -> Tensor:
        """G's output before activations for noise z (N, noise_dim) and cond vectors (N, cond_dim)."""
        return self.body(torch.cat([z, cond], dim=1) if self.cond_dim else z)

    def condition(self, u_col: Tensor, u_cat: Tensor) -> Tensor:
        """Cond vectors (N, cond_dim) with the empirical frequencies, from two (N,) uniforms."""
        _, _, g = choose(u_col, u_cat, self.cond_cdf, self.cond_count, self.cond_start)
        return one_hot(g, self.cond_dim, self.cond_cdf.dtype)

    def forward(self, latent: Tensor) -> Tensor:
        if latent.dim() != 2 or latent.shape[1] != self.latent_width:
            raise ValueError(f"ctgan's generator reads latents of width {self.latent_width} (noise {self.noise_dim}, "
                             f"{self.n_select} for the condition, {self.softmax_width} for the categories' draws), "
                             f"got {tuple(latent.shape)}")
        z = latent[:, : self.noise_dim]
        at = self.noise_dim
        if self.cond_dim:
            u = normal_cdf(latent[:, at : at + 2])
            cond = self.condition(u[:, 0], u[:, 1]).to(latent.dtype)
            at += 2
        else:
            cond = latent[:, :0]
        raw = self.raw(z, cond)
        uniforms = normal_cdf(latent[:, at:]).clamp(TINY, ONE_BELOW)
        gumbel = -torch.log(-torch.log(uniforms))
        parts, g_at = [], 0
        for b in self.layout.blocks:
            x = raw[:, b.start : b.stop]
            if b.activation == "tanh":
                x = torch.tanh(x)
            elif b.activation == "softmax":
                pick = (x + gumbel[:, g_at : g_at + b.width]).argmax(1)
                x = one_hot(pick, b.width, raw.dtype)
                g_at += b.width
            parts.append(x)
        return torch.cat(parts, dim=1)


class MaskDropout(nn.Module):
    """Inverted dropout, as nn.Dropout, drawn as torch.rand_like(x) >= p: on the CPU that is ~2.5x faster than
    torch's dropout kernel (bernoulli_) on D's small (N / pac, 256) activations (150 vs 57 us a call, 2 threads),
    and D runs it eight times a step. Same expectation and variance; eval mode passes x through.

    When p is a multiple of 1/256 (CTGAN's 0.5 is), each keep/drop decision needs 8 random bits, not a float: the
    mask is the bytes of numel / 4 random 32-bit integers compared with 256 p, a quarter of the generator's work
    (the random draws are most of this layer's time on the CPU)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        level = self.p * 256
        self._byte_level = int(level) if level.is_integer() else None

    def mask(self, x: Tensor) -> Tensor:
        """A boolean keep-mask shaped as x, each entry True with probability 1 - p."""
        n = x.numel()
        if self._byte_level is None or n % 4:
            return torch.rand_like(x) >= self.p
        words = torch.randint(-2 ** 31, 2 ** 31, (n // 4,), dtype=torch.int32, device=x.device)
        return words.view(torch.uint8).view(x.shape) >= self._byte_level

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * self.mask(x) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PacDiscriminator(nn.Module):
    """D on packed inputs (N / pac, pac * (D + cond_dim)): [Linear, LeakyReLU(0.2), Dropout] per hidden layer,
    then one score per pack, (N / pac,)."""

    def __init__(self, in_dim: int, dims: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for d in dims:
            layers += [nn.Linear(width, int(d)), nn.LeakyReLU(0.2), MaskDropout(dropout)]
            width = int(d)
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, packed: Tensor) -> Tensor:
        return self.net(packed).squeeze(1)


@dataclass
class Fakes:
    """One draw of fakes: the activated rows (with G's graph when drawn for training), G's raw outputs, and the
    condition: column (N,), category in it (N,), cond-vector index (N,), cond vectors (N, cond_dim)."""

    rows: Tensor
    raw: Tensor
    column: Tensor | None
    category: Tensor | None
    index: Tensor | None
    cond: Tensor


class CTGAN(Family):
    """Conditional tabular GAN: cond vector, training-by-sampling, PacGAN, WGAN-GP (see the module docstring)."""

    Config = CTGANConfig
    name = "ctgan"
    description = "CTGAN (Xu 2019): conditional vector, training-by-sampling, PacGAN, WGAN-GP; tables"
    needs = "table"
    table_continuous = "vgm"
    truncation = None
    truncation_reason = ("its latent also draws the condition and the categories (Phi of the entries after the "
                         "noise), and psi would skew which columns, categories and modes are drawn")
    # the train.* settings of the paper's code that differ from ganforge's trainer defaults (a suggestion for
    # the layer below recipes; the trainer does not read this): batch 500, Adam betas (0.5, 0.9), lr 2e-4
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 500, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5,
                                                "beta2": 0.9}

    def __init__(self, cfg: CTGANConfig, spec: DataSpec, generator_only: bool = False) -> None:
        super().__init__(cfg, spec, generator_only)
        if spec.kind != "table":
            raise ValueError(f"ctgan trains on tables (.csv, .parquet, builtin:eprime); dataset '{spec.name}' holds "
                             f"{spec.kind}: give --data a table, or choose another --family")
        check_config(cfg)
        self.objective = get_loss(cfg.loss)
        self.layout: OutputLayout = transformer_from_spec(spec).layout
        if self.layout.dim != int(spec.shape[0]):
            raise ValueError(f"the table's layout has {self.layout.dim} outputs but its spec says {spec.shape[0]}")
        self.G = CTGANGenerator(cfg.latent_dim, self.layout, list(cfg.generator_dims))
        self.cond_dim = self.G.cond_dim
        self.D = None if generator_only else PacDiscriminator(
            cfg.pac * (self.layout.dim + self.cond_dim), list(cfg.discriminator_dims), cfg.dropout)
        # the raw output of category k of cond column j (padding: the block's first), for the cross-entropy
        cats = self.layout.category_blocks()
        width = int(self.G.cond_cdf.shape[1])
        index = torch.zeros(len(cats), width, dtype=torch.long)
        valid = torch.zeros(len(cats), width, dtype=torch.bool)
        for j, b in enumerate(cats):
            index[j] = b.start
            index[j, : b.width] = torch.arange(b.start, b.stop)
            valid[j, : b.width] = True
        self.register_buffer("ce_index", index, persistent=False)
        self.register_buffer("ce_valid", valid, persistent=False)
        self._tbs: dict[str, Tensor] | None = None  # training-by-sampling tables, from bind_data (not saved)

    # -- capabilities -------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        """Width of G's whole latent: noise, then 2 entries for the condition (with categorical columns), then one
        per softmax output (the categories' and modes' Gumbel draws); all N(0, 1)."""
        return self.G.latent_width

    def phase_specs(self) -> tuple[Phase, ...]:
        return (Phase("d", ("D",), lr="lr_d", double_backward=self.objective.gp),
                Phase("g", ("G",), lr="lr_g", every=self.cfg.n_critic, updates_ema=True))

    def check_batch_size(self, batch_size: int) -> None:
        """ValueError naming the fix when `batch_size` rows (per process) cannot be packed by model.pac."""
        pac = self.cfg.pac
        if batch_size % pac:
            up = (batch_size + pac - 1) // pac * pac
            raise ValueError(f"ctgan's discriminator reads packs of model.pac={pac} rows, so a batch must be a "
                             f"multiple of {pac}; this one has {batch_size} rows (train.batch_size, per process, or the table's "
                             f"row count when the table is smaller): use train.batch_size={up}, or a model.pac that "
                             f"divides {batch_size}")

    def check_ready(self) -> None:
        if self.cond_dim and self._tbs is None:
            raise ValueError("ctgan draws its real rows by training-by-sampling: call family.bind_data(data) with the "
                             "training table before training (build_run does)")

    # -- training-by-sampling -----------------------------------------------------------------------
    def bind_data(self, data: Any) -> None:
        """Index the training rows by (categorical column, category) for training-by-sampling, and set G's
        empirical category frequencies (used when sampling). Vectorised: one argsort over all columns."""
        x = data.x
        if x.dim() != 2 or x.shape[1] != self.layout.dim:
            raise ValueError(f"ctgan's table has {self.layout.dim} encoded outputs per row; the data given holds "
                             f"{tuple(x.shape)}")
        if not self.cond_dim:
            self._tbs = {}
            return
        x = x.float()
        n = x.shape[0]
        cats = self.layout.category_blocks()
        start = self.G.cond_start.cpu()
        codes = torch.stack([x[:, b.start : b.stop].argmax(1) for b in cats])  # (n_columns, N)
        index = (codes + start.unsqueeze(1)).flatten()                           # cond-vector index per (column, row)
        counts = torch.bincount(index, minlength=self.cond_dim)
        order = torch.argsort(index, stable=True) % n                           # row ids grouped by (column, category)
        first = torch.cumsum(counts, 0) - counts
        weights = torch.log1p(counts.double()) if self.cfg.log_frequency else counts.double()
        count = self.G.cond_count.cpu()
        width = int(self.G.cond_cdf.shape[1])
        with torch.no_grad():
            self.G.cond_cdf.copy_(category_cdf(counts.double(), count, start, width))
        self._tbs = {"x": x, "order": order, "first": first, "counts": counts,
                     "cdf": category_cdf(weights, count, start, width), "count": count, "start": start}

    def _tables(self) -> dict[str, Tensor]:
        if self._tbs is None:
            self.check_ready()
        dev = self.device
        if self._tbs and self._tbs["x"].device != dev:  # moved once, not every step
            self._tbs = {k: v.to(dev) for k, v in self._tbs.items()}
        return self._tbs

    def training_condition(self, u_col: Tensor, u_cat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(column, category, cond index), each (N,), drawn as training-by-sampling does: the column uniformly,
        the category with probability proportional to log(frequency + 1) (model.log_frequency) in it."""
        t = self._tables()
        return choose(u_col, u_cat, t["cdf"], t["count"], t["start"])

    def rows_with(self, index: Tensor, u_row: Tensor) -> Tensor:
        """Real encoded rows (N, D): for each cond index g (column j has category k), a row of the training table
        that has it, uniformly among them (u_row (N,) uniforms in [0, 1)). One gather, no Python loop per row."""
        t = self._tables()
        count = t["counts"].index_select(0, index)
        pick = torch.minimum((u_row.clamp(0.0, ONE_BELOW) * count).long(), count - 1)
        return t["x"].index_select(0, t["order"].index_select(0, t["first"].index_select(0, index) + pick))

    def cond_loss(self, raw: Tensor, column: Tensor, category: Tensor) -> Tensor:
        """Mean over rows of the cross-entropy between G's logits for each row's chosen column and the category
        its cond vector asks for (the paper's conditional loss; all rows at once)."""
        logits = raw.float().gather(1, self.ce_index.index_select(0, column))
        logits = logits.masked_fill(~self.ce_valid.index_select(0, column), -math.inf)
        picked = logits.gather(1, category.unsqueeze(1)).squeeze(1)
        return (torch.logsumexp(logits, 1) - picked).mean()

    # -- drawing fakes and packing ------------------------------------------------------------------
    def _uniforms(self, n: int, k: int) -> Tensor:
        return self.rows(n, lambda m: torch.rand(m, k)).to(self.device)

    def generate(self, n: int) -> Fakes:
        """n fakes as training draws them: z ~ N(0, I), the condition by training-by-sampling, Gumbel-softmax."""
        dev = self.device
        z = self.rows(n, lambda m: torch.randn(m, self.cfg.latent_dim)).to(dev)
        column = category = index = None
        cond = z[:, :0]
        if self.cond_dim:
            u = self._uniforms(n, 2)
            column, category, index = self.training_condition(u[:, 0], u[:, 1])
            cond = one_hot(index, self.cond_dim, z.dtype)
        raw = self.G.raw(z, cond)
        rows = apply_activations(raw, self.layout, gumbel_tau=self.cfg.gumbel_tau)
        return Fakes(rows, raw, column, category, index, cond)

    def pack(self, rows: Tensor, cond: Tensor) -> Tensor:
        """[rows, cond] (N, D + C) -> (N / pac, pac * (D + C)): consecutive rows form a pack."""
        x = torch.cat([rows, cond], dim=1) if cond.shape[1] else rows
        self.check_batch_size(x.shape[0])
        return x.reshape(x.shape[0] // self.cfg.pac, -1)

    def _real(self, batch: Batch, fakes: Fakes) -> tuple[Tensor, Tensor]:
        """The real rows and their cond vectors: the loader's rows without categorical columns, else rows drawn
        by training-by-sampling for the fakes' conditions in a shuffled order (the reference's c2 = c1[perm])."""
        if not self.cond_dim:
            return batch.x.float(), batch.x[:, :0].float()
        n = batch.size
        u_row = self._uniforms(n, 1)[:, 0]
        perm = torch.randperm(n).to(self.device)
        index = fakes.index.index_select(0, perm)
        return self.rows_with(index, u_row), fakes.cond.index_select(0, perm)

    # -- losses -------------------------------------------------------------------------------------
    def loss(self, phase: str, batch: Batch, ctx: StepContext | None = None) -> StepOutput:
        obj, cfg = self.objective, self.cfg
        n = batch.size - batch.size % cfg.pac
        if n < batch.size:  # a table smaller than train.batch_size: the loader gives every row; pack what divides
            if n == 0:
                self.check_batch_size(batch.size)
            batch = Batch(batch.x[:n])
        if phase == "d":
            if runs_later(ctx, "g"):  # G's phase of this step reuses these fakes (one G forward per step)
                fakes = self.generate(n)
                ctx.handoff["fakes"] = fakes
                fake = fakes.rows.detach()
            else:
                with torch.no_grad():
                    fakes = self.generate(n)
                fake = fakes.rows
            real, real_cond = self._real(batch, fakes)
            real_in, fake_in = self.pack(real, real_cond), self.pack(fake, fakes.cond)
            # WGAN-GP on the packed inputs: one interpolation weight per pack
            return critic_step(obj, self.D, real_in, fake_in, cfg.gp_weight, 1.0, real, fake, joint=True)
        if phase == "g":
            fakes = take(ctx, "fakes")
            if fakes is None or fakes.rows.shape[0] != n:
                fakes = self.generate(n)
            adv = obj.g(self.D(self.pack(fakes.rows, fakes.cond)).float())
            logs = {"g/adv": adv.detach()}
            loss = adv
            if self.cond_dim:
                ce = self.cond_loss(fakes.raw, fakes.column, fakes.category)
                loss = loss + cfg.cond_weight * ce
                logs["g/cond_ce"] = ce.detach()
            logs["g/loss"] = loss.detach()
            return StepOutput(loss, logs)
        raise ValueError(f"ctgan has phases d, g, not '{phase}'")

    @torch.no_grad()
    def after_step(self, phase: str) -> None:
        if phase == "d" and self.objective.clip:
            for p in self.D.parameters():
                p.clamp_(-self.cfg.clip_value, self.cfg.clip_value)

    # -- sampling -----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, **cond: Any) -> Tensor:
        """n encoded rows (N, D): tanh values and hard one-hots, a deterministic function of the latent z (all
        N(0, 1), width `latent_dim`; see the module docstring). `tr.inverse(rows)` decodes them."""
        if cond:
            raise ValueError(f"ctgan samples from latents alone; it takes no {', '.join(sorted(cond))}")
        G = net if net is not None else self.G
        if z is None:
            z = self.noise(n, generator=generator)
        return G(z)
