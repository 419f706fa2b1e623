"""Per-column invertible transforms for tables, described as data, and the layout of their outputs.

Every transform maps one column (float64 numbers: continuous, integer, datetime as seconds since the epoch;
or integer category codes) to one or more output values per row, and back. Each is fitted on the training
column, and its whole state is a JSON-able dict (`state()` / `from_state`), so a run's config says exactly
how its rows were encoded and a sample is decoded with nothing but that dict.

Transforms (`TRANSFORMS`):

identity      y = x.
standard      y = (x - mean) / std (std 0, a constant column, is taken as 1).
minmax        y = 2 (x - lo) / (hi - lo) - 1 in [-1, 1] (a tanh output); lo, hi from the column's bounds, else
              the training minimum and maximum. The inverse clips y to [-1, 1], so x stays in [lo, hi].
logit         y = logit(eps + (1 - 2 eps) (x - lo) / (hi - lo)), eps = 1e-6, then standardised; the inverse
              is a sigmoid, so x stays in [lo, hi] for any output, however large.
log           y = log(x - lo + offset), standardised; lo is the lower bound (0 when none is declared and the
              column is positive), offset 0 by default (1 gives log1p-like handling of zeros). x >= lo holds.
log_distance  FAT-GAN's transform (Alanazi et al. 2020): y = log(hi - x) for an upper bound hi (or log(x - lo)
              with `side: lower`), standardised. The inverse x = hi - exp(y) is below hi for every finite y:
              FAT-GAN uses it as T(p_z) = log(E_b - p_z), which keeps p_z < E_b and turns the sharp edge at
              the beam energy into a smooth tail. (Rounding: when exp(y) underflows, x equals hi exactly.)
formula       a user's forward expression in x and its inverse in y, e.g. forward "log(10.6 - x)", inverse
              "10.6 - exp(y)", with optional named `params`; evaluated by a small interpreter over numpy
              functions (FUNCTIONS), never by Python's eval. Fitting checks that the inverse undoes the
              forward on the training column. The output is standardised (standardise: false keeps it raw).
vgm           CTGAN's mode-specific normalisation (Xu et al. 2019): a variational Gaussian mixture
              (sklearn's BayesianGaussianMixture, Dirichlet-process prior with weight_concentration_prior
              1e-3, up to 10 modes; modes with weight < 0.005 dropped); a value becomes a scalar
              alpha = (x - mu_k) / (4 sigma_k) (a tanh output) and the one-hot of its mode k (a softmax block).
              Differences from CTGAN: the mode is the most probable one (`mode_choice: argmax`) unless
              `mode_choice: sample` asks for CTGAN's draw from the posterior; alpha is not clipped to
              [-0.99, 0.99] (CTGAN clips), so the inverse is exact for every training value; the mixture is
              fitted on at most `fit_rows` rows (100,000 by default; CTGAN uses all) for speed on big tables,
              and on the standardised column (safer for large offsets such as epoch seconds; CTGAN fits raw values).
              The variational fit runs up to 300 iterations (CTGAN: sklearn's default 100, which often stops
              before redundant modes die out: a clean bimodal column then keeps 3 modes).
onehot        categories (and booleans): the one-hot of the category code (a softmax block); argmax back.

Whatever the transform, the table layer clamps a decoded column to its declared bounds afterwards, so a
bounded column can never leave its bounds; minmax, logit and log_distance hold them by construction.

`OutputLayout` lists the output blocks (column, start, stop, activation "linear" | "tanh" | "softmax", role
"value" | "mode" | "category"): a generator applies `apply_activations` (tanh / softmax / Gumbel-softmax per
block, as CTGAN's generator does) and CTGAN's conditional vector uses the "category" blocks.

This module knows nothing of tables (table.py builds on it, not the other way round).
"""

from __future__ import annotations

import ast
import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

ACTIVATIONS = ("linear", "tanh", "softmax")
NUMERIC_TRANSFORMS = ("identity", "standard", "minmax", "logit", "log", "log_distance", "formula", "vgm")
CATEGORICAL_TRANSFORMS = ("onehot",)
TRANSFORMS = NUMERIC_TRANSFORMS + CATEGORICAL_TRANSFORMS
EXP_MAX = 700.0  # exp() arguments are clipped to +-EXP_MAX: a huge generator output gives a huge value, not inf

# ------------------------------------------------------------------------------------------------
# A safe evaluator for user formulas
# ------------------------------------------------------------------------------------------------

FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(np, name)
    for name in ("log", "log1p", "log2", "log10", "exp", "expm1", "exp2", "sqrt", "cbrt", "square", "abs",
                 "sign", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh",
                 "arcsinh", "arccosh", "arctanh", "minimum", "maximum", "clip", "power", "hypot", "floor",
                 "ceil")
}
CONSTANTS = {"pi": math.pi, "e": math.e}
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide, ast.Pow: np.power,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: np.negative, ast.UAdd: np.positive}
MAX_FORMULA = 500  # characters


def _torch_ops(ref: Any) -> tuple:
    """Formula's backend on tensors like `ref`: torch's counterparts of FUNCTIONS and the operators."""
    import torch

    fns = {name: getattr(torch, name) for name in FUNCTIONS if hasattr(torch, name)}
    fns.update({"arcsin": torch.asin, "arccos": torch.acos, "arctan": torch.atan, "arctan2": torch.atan2,
                "arcsinh": torch.asinh, "arccosh": torch.acosh, "arctanh": torch.atanh, "power": torch.pow,
                "cbrt": lambda v: torch.sign(v) * torch.abs(v).pow(1.0 / 3.0),
                "clip": lambda v, lo, hi: torch.clamp(v, lo, hi)})
    missing = set(FUNCTIONS) - set(fns)
    assert not missing, f"no torch form for {missing}"
    binops = {ast.Add: torch.add, ast.Sub: torch.sub, ast.Mult: torch.mul, ast.Div: torch.true_divide,
              ast.Pow: torch.pow}
    unary = {ast.USub: torch.neg, ast.UAdd: lambda v: v}
    number = lambda v: torch.tensor(float(v), dtype=ref.dtype, device=ref.device)  # noqa: E731
    return number, fns, binops, unary


class Formula:
    """An arithmetic expression over one variable (or several: `variable` a list of names), numbers, named
    parameters and FUNCTIONS.

    Parsed with `ast` and checked node by node: only numbers, + - * / ** and unary minus, the variables, the
    parameters, pi and e, and calls of the whitelisted numpy functions (positional arguments) are allowed.
    Evaluation walks the tree itself; numbers are float64, so `9**9**9` overflows to inf instead of
    building a huge integer. `names` lists the variables the expression reads; `torch(values)` evaluates it on
    tensors (differentiably; values maps each variable to a tensor).
    """

    def __init__(self, text: str, variable: str | Sequence[str], params: dict[str, float] | None = None) -> None:
        self.variables = (variable,) if isinstance(variable, str) else tuple(variable)
        shown = variable if isinstance(variable, str) else "the columns"
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"a formula must be a non-empty expression in {shown}, got {text!r}")
        if len(text) > MAX_FORMULA:
            raise ValueError(f"formula {text[:40]!r}... is longer than {MAX_FORMULA} characters")
        self.text, self.variable = text, shown
        self.params = {str(k): float(v) for k, v in (params or {}).items()}
        for name in self.params:
            if name in self.variables or name in FUNCTIONS or not name.isidentifier():
                raise ValueError(f"formula parameter name {name!r} is not allowed (it must be an identifier other "
                                 f"than {variable} and the function names)")
        try:
            self.tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError) as e:
            raise ValueError(f"formula {text!r} is not a valid expression: {getattr(e, 'msg', e)}") from None
        self._check(self.tree.body)

    def _fail(self, what: str) -> ValueError:
        allowed = ", ".join(sorted(FUNCTIONS))
        return ValueError(f"formula {self.text!r}: {what} is not allowed; use numbers, + - * / **, the variable "
                          f"{self.variable}, pi, e{', ' + ', '.join(self.params) if self.params else ''} "
                          f"and the functions {allowed}")

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise self._fail(f"the constant {node.value!r}")
            try:
                float(node.value)
            except OverflowError:
                raise self._fail("a number this large") from None
        elif isinstance(node, ast.Name):
            if node.id not in self.variables and node.id not in self.params and node.id not in CONSTANTS:
                raise self._fail(f"the name '{node.id}'")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise self._fail(f"the operator {type(node.op).__name__}")
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise self._fail(f"the operator {type(node.op).__name__}")
            self._check(node.operand)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise self._fail(f"calling {ast.unparse(node.func)}")
            if node.keywords:
                raise self._fail("a keyword argument")
            for arg in node.args:
                if isinstance(arg, ast.Starred):
                    raise self._fail("a starred argument")
                self._check(arg)
        else:
            raise self._fail(f"'{ast.unparse(node)}' ({type(node).__name__})")

    @property
    def names(self) -> list[str]:
        """The variables the expression reads (each once)."""
        seen = [n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name) and n.id in self.variables]
        return list(dict.fromkeys(seen))

    def _eval(self, node: ast.AST, values: dict[str, Any], ops: Any = None) -> Any:
        """The value of `node`; `ops` None: numpy; else (number, functions, binary ops, unary ops) of a backend."""
        number, functions, binops, unary = ops or (np.float64, FUNCTIONS, _BINOPS, _UNARY)
        if isinstance(node, ast.Constant):
            return number(node.value)
        if isinstance(node, ast.Name):
            if node.id in values:
                return values[node.id]
            return number(self.params[node.id] if node.id in self.params else CONSTANTS[node.id])
        if isinstance(node, ast.BinOp):
            return binops[type(node.op)](self._eval(node.left, values, ops), self._eval(node.right, values, ops))
        if isinstance(node, ast.UnaryOp):
            return unary[type(node.op)](self._eval(node.operand, values, ops))
        assert isinstance(node, ast.Call)
        return functions[node.func.id](*(self._eval(a, values, ops) for a in node.args))

    def __call__(self, value: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        if isinstance(value, dict):
            values = {k: np.asarray(v, dtype=np.float64) for k, v in value.items()}
            shape = np.broadcast_shapes(*(v.shape for v in values.values())) if values else ()
        else:
            x = np.asarray(value, dtype=np.float64)
            values, shape = {self.variables[0]: x}, x.shape
        with np.errstate(all="ignore"):
            out = self._eval(self.tree.body, values)
        return np.broadcast_to(np.asarray(out, dtype=np.float64), shape).copy()

    def torch(self, values: dict[str, Any]) -> Any:
        """The expression on tensors (each variable a tensor of one shape and dtype), with torch's functions, so
        gradients flow through it. Constants take the tensors' dtype."""
        import torch

        ref = next(iter(values.values()))
        return torch.broadcast_to(self._eval(self.tree.body, values, _torch_ops(ref)), ref.shape)


# ------------------------------------------------------------------------------------------------
# Output layout
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """Outputs [start, stop) of the encoded row: `column`'s, with the activation a generator applies.

    role: "value" (a number), "mode" (a VGM mode's one-hot) or "category" (a categorical column's one-hot).
    """

    column: str
    start: int
    stop: int
    activation: str
    role: str = "value"

    @property
    def width(self) -> int:
        return self.stop - self.start

    def to_json(self) -> list[Any]:
        return [self.column, self.start, self.stop, self.activation, self.role]

    @classmethod
    def from_json(cls, d: Iterable[Any]) -> "Block":
        column, start, stop, activation, role = list(d)
        return cls(str(column), int(start), int(stop), str(activation), str(role))


@dataclass(frozen=True)
class OutputLayout:
    """The blocks of an encoded row, in order, covering [0, dim) without gaps."""

    blocks: tuple[Block, ...]

    @property
    def dim(self) -> int:
        return self.blocks[-1].stop if self.blocks else 0

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for b in self.blocks:
            seen.setdefault(b.column, None)
        return list(seen)

    def column_slice(self, column: str) -> slice:
        """All outputs of `column` (for vgm: its scalar and its mode one-hot)."""
        mine = [b for b in self.blocks if b.column == column]
        if not mine:
            raise KeyError(f"no column '{column}' in the layout; columns: {', '.join(self.columns)}")
        return slice(mine[0].start, mine[-1].stop)

    def softmax_blocks(self) -> list[Block]:
        return [b for b in self.blocks if b.activation == "softmax"]

    def category_blocks(self) -> list[Block]:
        """The categorical columns' one-hot blocks (what CTGAN's conditional vector chooses among)."""
        return [b for b in self.blocks if b.role == "category"]

    def to_json(self) -> list[list[Any]]:
        return [b.to_json() for b in self.blocks]

    @classmethod
    def from_json(cls, d: Iterable[Iterable[Any]]) -> "OutputLayout":
        return cls(tuple(Block.from_json(b) for b in d))


@functools.lru_cache(maxsize=64)
def _activation_plan(layout: OutputLayout) -> tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, tuple[int, ...]], ...],
                                                    tuple[int, ...]]:
    """apply_activations' plan, as plain index tuples (tensors are made per call, on the input's device and in its
    autograd mode): (linear outputs, tanh outputs, ((width, the outputs of every softmax block of that width, block
    after block), ...), the permutation that puts [linear, tanh, softmax groups...] back in layout order)."""
    linear: list[int] = []
    tanh: list[int] = []
    widths: dict[int, list[int]] = {}
    for b in layout.blocks:
        into = tanh if b.activation == "tanh" else widths.setdefault(b.width, []) if b.activation == "softmax" else linear
        into.extend(range(b.start, b.stop))
    order = linear + tanh + [i for idx in widths.values() for i in idx]
    back = [0] * len(order)
    for position, i in enumerate(order):
        back[i] = position
    return tuple(linear), tuple(tanh), tuple((w, tuple(idx)) for w, idx in widths.items()), tuple(back)


def apply_activations(raw, layout: OutputLayout, *, gumbel_tau: float = 0.0, hard: bool = False,
                      generator=None):
    """A generator's raw (N, D) output -> encoded rows: tanh blocks through tanh, softmax blocks through softmax
    (or Gumbel-softmax at temperature gumbel_tau > 0, CTGAN uses 0.2; `hard` gives straight-through one-hots),
    linear blocks unchanged. A torch tensor in, a torch tensor out (differentiable).

    The blocks are batched: all tanh outputs in one call, and the softmax blocks of each width as one (N, blocks,
    width) softmax, with the Gumbel noise of all of them drawn at once (CTGAN's tables have one mode block of the same
    width per continuous column, so a step runs a handful of kernels instead of three per column); the pieces are
    concatenated and put back in layout order by one gather (index_select), which ONNX exports as Gather."""
    import torch

    if raw.shape[-1] != layout.dim:
        raise ValueError(f"the generator gives {raw.shape[-1]} values per row but the table's layout has {layout.dim}")
    linear, tanh, groups, back = _activation_plan(layout)
    if not tanh and not groups:
        return raw
    dev = raw.device

    def take(idx: tuple[int, ...]):
        return raw.index_select(-1, torch.tensor(idx, device=dev))

    parts = [take(linear)] if linear else []
    if tanh:
        parts.append(torch.tanh(take(tanh)))
    noise, at = None, 0
    if gumbel_tau > 0:  # Gumbel(0, 1) noise for every softmax output at once, -log(-log U): one draw of uniforms
        # (torch's exponential_ costs ~4x torch.rand a value on the CPU, and one call per width group adds up)
        n_noisy = sum(len(idx) for width, idx in groups if width > 1)
        if n_noisy:
            # drawn in (at least) float32: bf16 uniforms take 256 values, fp16's clamp at 1e-20 would be 0
            u = torch.rand(*raw.shape[:-1], n_noisy, generator=generator, device=dev,
                           dtype=torch.promote_types(raw.dtype, torch.float32))
            noise = (-torch.log(-torch.log(u.clamp_(min=1e-20)))).to(raw.dtype)
    for width, idx in groups:
        x = take(idx).unflatten(-1, (len(idx) // width, width))
        if width == 1:  # a one-category block (e.g. a one-mode column): its softmax is exactly 1, whatever x
            parts.append(torch.ones_like(x).flatten(-2))
            continue
        if gumbel_tau > 0:
            g = noise[..., at : at + len(idx)].unflatten(-1, x.shape[-2:])
            at += len(idx)
            y = torch.softmax((x + g) / gumbel_tau, dim=-1)
            if hard:
                one = torch.zeros_like(y).scatter_(-1, y.argmax(-1, keepdim=True), 1.0)
                y = one - y.detach() + y
        else:
            y = torch.softmax(x, dim=-1)
        parts.append(y.flatten(-2))
    return torch.cat(parts, dim=-1).index_select(-1, torch.tensor(back, device=dev))


# ------------------------------------------------------------------------------------------------
# Column transforms
# ------------------------------------------------------------------------------------------------


def _finite_bound(v: Any) -> float | None:
    return None if v is None else float(v)


class ColumnTransform:
    """One column's transform. Subclasses set `name`, implement fit/_forward/_inverse and their state.

    fit(x, bounds): x float64 (N,) (or int64 codes for onehot), bounds (lo, hi) with None for open sides.
    forward(x) -> float64 (N, width); inverse(y (N, width)) -> float64 (N,) (codes for onehot).
    """

    name = ""
    kind = "numeric"  # "numeric" or "categorical"

    def __init__(self, column: str = "", **params: Any) -> None:
        self.column = column
        self.params = params
        self.fitted = False

    # blocks: (width, activation, role)
    def block_shapes(self) -> list[tuple[int, str, str]]:
        return [(1, "linear", "value")]

    @property
    def width(self) -> int:
        return sum(w for w, _, _ in self.block_shapes())

    def fit(self, x: np.ndarray, bounds: tuple[float | None, float | None] = (None, None)) -> "ColumnTransform":
        self._fit(np.asarray(x, dtype=np.float64), (_finite_bound(bounds[0]), _finite_bound(bounds[1])))
        self.fitted = True
        return self

    def forward(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        self._need_fit()
        with np.errstate(all="ignore"):
            out = self._forward(np.asarray(x, dtype=np.float64))
        return out.reshape(len(x), self.width)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        self._need_fit()
        y = np.asarray(y, dtype=np.float64).reshape(-1, self.width)
        with np.errstate(all="ignore"):
            return self._inverse(y)

    def _need_fit(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"the {self.name} transform of column '{self.column}' is not fitted yet: call fit first")

    def state(self) -> dict[str, Any]:
        return {"name": self.name, "params": _jsonable(self.params), "fitted": self._state()}

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, fitted: dict[str, Any]) -> None:
        pass

    def _fit(self, x: np.ndarray, bounds: tuple[float | None, float | None]) -> None:
        raise NotImplementedError

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _inverse(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_params(self, allowed: Iterable[str]) -> None:
        extra = sorted(set(self.params) - set(allowed))
        if extra:
            raise ValueError(f"column '{self.column}': the {self.name} transform has no setting "
                             f"{', '.join(extra)}; its settings: {', '.join(sorted(allowed)) or 'none'}")


class Identity(ColumnTransform):
    name = "identity"

    def _fit(self, x, bounds):
        self._check_params(())

    def _forward(self, x):
        return x[:, None].copy()

    def _inverse(self, y):
        return y[:, 0].copy()


class _Standardised(ColumnTransform):
    """A transform g followed (when standardise is on) by (g(x) - mean) / std fitted on the training column."""

    default_standardise = True

    def _fit(self, x, bounds):
        self._fit_g(x, bounds)
        self.mean, self.std = 0.0, 1.0
        if self.params.get("standardise", self.default_standardise):
            with np.errstate(all="ignore"):
                z = self._g(x)
            self.mean = float(z.mean())
            std = float(z.std())
            self.std = std if std > 0 and math.isfinite(std) else 1.0

    def _forward(self, x):
        return ((self._g(x) - self.mean) / self.std)[:, None]

    def _inverse(self, y):
        return self._g_inv(y[:, 0] * self.std + self.mean)

    def _state(self):
        return {"mean": self.mean, "std": self.std, **self._g_state()}

    def _load(self, fitted):
        self.mean, self.std = float(fitted["mean"]), float(fitted["std"])
        self._g_load(fitted)

    def _fit_g(self, x, bounds):
        pass

    def _g(self, x):
        return x

    def _g_inv(self, z):
        return z

    def _g_state(self):
        return {}

    def _g_load(self, fitted):
        pass


class Standard(_Standardised):
    name = "standard"

    def _fit_g(self, x, bounds):
        self._check_params(())


def _bounds_or_range(column: str, name: str, x: np.ndarray, bounds) -> tuple[float, float]:
    lo = bounds[0] if bounds[0] is not None else float(x.min())
    hi = bounds[1] if bounds[1] is not None else float(x.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"column '{column}': the {name} transform needs finite bounds, got [{lo}, {hi}]")
    if hi <= lo:  # a constant column without declared bounds
        hi = lo + 1.0
    return lo, hi


class MinMax(ColumnTransform):
    name = "minmax"

    def block_shapes(self):
        return [(1, "tanh", "value")]

    def _fit(self, x, bounds):
        self._check_params(())
        self.lo, self.hi = _bounds_or_range(self.column, self.name, x, bounds)

    def _forward(self, x):
        return (2.0 * (x - self.lo) / (self.hi - self.lo) - 1.0)[:, None]

    def _inverse(self, y):
        u = (np.clip(y[:, 0], -1.0, 1.0) + 1.0) * 0.5
        return np.clip(self.lo + u * (self.hi - self.lo), self.lo, self.hi)

    def _state(self):
        return {"lo": self.lo, "hi": self.hi}

    def _load(self, fitted):
        self.lo, self.hi = float(fitted["lo"]), float(fitted["hi"])


class Logit(_Standardised):
    name = "logit"

    def _fit_g(self, x, bounds):
        self._check_params(("eps", "standardise"))
        self.lo, self.hi = _bounds_or_range(self.column, self.name, x, bounds)
        self.eps = float(self.params.get("eps", 1e-6))
        if not 0 < self.eps < 0.5:
            raise ValueError(f"column '{self.column}': logit eps must be in (0, 0.5), got {self.eps}")

    def _g(self, x):
        u = self.eps + (1 - 2 * self.eps) * (x - self.lo) / (self.hi - self.lo)
        return np.log(u) - np.log1p(-u)

    def _g_inv(self, z):
        u = 0.5 * (1.0 + np.tanh(0.5 * z))  # the sigmoid, without overflow
        u = np.clip((u - self.eps) / (1 - 2 * self.eps), 0.0, 1.0)
        return np.clip(self.lo + u * (self.hi - self.lo), self.lo, self.hi)

    def _g_state(self):
        return {"lo": self.lo, "hi": self.hi, "eps": self.eps}

    def _g_load(self, fitted):
        self.lo, self.hi, self.eps = float(fitted["lo"]), float(fitted["hi"]), float(fitted["eps"])


class Log(_Standardised):
    """y = log(x - lo + offset); lo: the lower bound, else 0 for a positive column."""

    name = "log"

    def _fit_g(self, x, bounds):
        self._check_params(("offset", "standardise"))
        self.offset = float(self.params.get("offset", 0.0))
        if self.offset < 0:
            raise ValueError(f"column '{self.column}': log offset must be >= 0, got {self.offset}")
        if bounds[0] is not None:
            self.lo = bounds[0]
        elif x.min() + self.offset > 0:
            self.lo = 0.0
        else:
            raise ValueError(f"column '{self.column}': log needs values above a lower bound, but the column goes down "
                             f"to {x.min():g}; declare bounds: [LOW, null] below the data, or set the log "
                             f"transform's offset (offset: 1 for counts starting at 0)")
        low = x - self.lo + self.offset
        if (low <= 0).any():
            raise ValueError(f"column '{self.column}': log(x - {self.lo:g} + {self.offset:g}) is undefined for "
                             f"{int((low <= 0).sum())} values (minimum {x.min():g}); set offset > 0, e.g. offset: 1")

    def _g(self, x):
        return np.log(x - self.lo + self.offset)

    def _g_inv(self, z):
        return np.maximum(np.exp(np.clip(z, -EXP_MAX, EXP_MAX)) + (self.lo - self.offset), self.lo)

    def _g_state(self):
        return {"lo": self.lo, "offset": self.offset}

    def _g_load(self, fitted):
        self.lo, self.offset = float(fitted["lo"]), float(fitted["offset"])


class LogDistance(_Standardised):
    """FAT-GAN's log of the distance to a bound: y = log(bound - x) (side upper) or log(x - bound) (lower)."""

    name = "log_distance"

    def _fit_g(self, x, bounds):
        self._check_params(("side", "bound", "standardise"))
        side = self.params.get("side")
        if side is None:
            side = "upper" if bounds[1] is not None or "bound" in self.params else "lower"
        if side not in ("upper", "lower"):
            raise ValueError(f"column '{self.column}': log_distance side must be upper or lower, got {side!r}")
        self.side = side
        bound = self.params.get("bound", bounds[1] if side == "upper" else bounds[0])
        if bound is None:
            raise ValueError(f"column '{self.column}': log_distance needs the {side} bound: declare bounds "
                             f"({'[null, HIGH]' if side == 'upper' else '[LOW, null]'}) or set the transform's "
                             f"bound, e.g. {{name: log_distance, bound: 10.6}}")
        self.bound = float(bound)
        dist = self.bound - x if side == "upper" else x - self.bound
        if (dist <= 0).any():
            bad = int((dist <= 0).sum())
            raise ValueError(f"column '{self.column}': {bad} values are not strictly {'below' if side == 'upper' else 'above'}"
                             f" the bound {self.bound:g} (extreme {x.max() if side == 'upper' else x.min():g}); "
                             f"log of the distance to the bound needs a gap: move the bound just past the data")

    def _g(self, x):
        return np.log(self.bound - x) if self.side == "upper" else np.log(x - self.bound)

    def _g_inv(self, z):
        d = np.exp(np.clip(z, -EXP_MAX, EXP_MAX))
        return self.bound - d if self.side == "upper" else self.bound + d

    def _g_state(self):
        return {"side": self.side, "bound": self.bound}

    def _g_load(self, fitted):
        self.side, self.bound = str(fitted["side"]), float(fitted["bound"])


class FormulaTransform(_Standardised):
    """A user's forward formula in x and inverse formula in y (see Formula)."""

    name = "formula"
    ROUND_TRIP_RTOL = 1e-6

    def __init__(self, column: str = "", **params: Any) -> None:
        super().__init__(column, **params)
        self._check_params(("forward", "inverse", "params", "standardise"))
        for key in ("forward", "inverse"):
            if key not in params:
                raise ValueError(f"column '{column}': a formula transform needs both forward (in x) and inverse (in y),"
                                 f" e.g. {{name: formula, forward: 'log(10.6 - x)', inverse: '10.6 - exp(y)'}}")
        consts = params.get("params") or {}
        if not isinstance(consts, dict):
            raise ValueError(f"column '{column}': formula params must be a mapping of names to numbers")
        self.f = Formula(params["forward"], "x", consts)
        self.f_inv = Formula(params["inverse"], "y", consts)

    def _fit_g(self, x, bounds):
        z = self.f(x)
        bad = ~np.isfinite(z)
        if bad.any():
            raise ValueError(f"column '{self.column}': forward formula {self.f.text!r} is not finite for "
                             f"{int(bad.sum())} values (e.g. x = {x[bad][0]:g}); change the formula or the column's bounds")
        back = self.f_inv(z)
        err = np.abs(back - x)
        tol = self.ROUND_TRIP_RTOL * np.maximum(1.0, np.abs(x))
        if not (err <= tol).all():
            i = int(np.argmax(err - tol))
            raise ValueError(f"column '{self.column}': inverse {self.f_inv.text!r} does not undo forward {self.f.text!r}:"
                             f" x = {x[i]:g} -> y = {z[i]:g} -> {back[i]:g}; fix the inverse formula")

    def _g(self, x):
        return self.f(x)

    def _g_inv(self, z):
        return self.f_inv(z)


class VGM(ColumnTransform):
    """CTGAN's mode-specific normalisation (see the module docstring for where this differs from CTGAN)."""

    name = "vgm"
    SETTINGS = ("max_modes", "weight_threshold", "weight_concentration_prior", "mode_choice", "fit_rows", "max_iter",
                "seed")

    def block_shapes(self):
        return [(1, "tanh", "value"), (len(self.means), "softmax", "mode")]

    def _fit(self, x, bounds):
        self._check_params(self.SETTINGS)
        max_modes = int(self.params.get("max_modes", 10))
        threshold = float(self.params.get("weight_threshold", 0.005))
        prior = float(self.params.get("weight_concentration_prior", 1e-3))
        self.mode_choice = str(self.params.get("mode_choice", "argmax"))
        if self.mode_choice not in ("argmax", "sample"):
            raise ValueError(f"column '{self.column}': vgm mode_choice must be argmax or sample, got {self.mode_choice!r}")
        fit_rows = int(self.params.get("fit_rows", 100_000))
        max_iter = int(self.params.get("max_iter", 300))
        seed = int(self.params.get("seed", 0))
        unique = np.unique(x)
        if len(unique) < 2:  # a constant column: one mode
            self.means, self.stds, self.weights = np.array([float(unique[0])]), np.ones(1), np.ones(1)
            return
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        centre, scale = float(x.mean()), float(x.std())  # fitted on the standardised column
        sample = x
        if len(x) > fit_rows:
            sample = np.random.default_rng(seed).choice(x, fit_rows, replace=False)
        bgm = BayesianGaussianMixture(
            n_components=min(max_modes, len(unique)), weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=prior, max_iter=max_iter, n_init=1, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            bgm.fit(((sample - centre) / scale).reshape(-1, 1))
        keep = bgm.weights_ > threshold
        if not keep.any():
            keep = bgm.weights_ == bgm.weights_.max()
        means = centre + scale * bgm.means_.reshape(-1)[keep]
        stds = scale * np.sqrt(bgm.covariances_.reshape(-1)[keep])
        weights = bgm.weights_[keep]
        order = np.argsort(means, kind="stable")
        self.means, self.stds, self.weights = means[order], stds[order], weights[order] / weights.sum()

    def log_posterior(self, x: np.ndarray) -> np.ndarray:
        """(N, K) log of the (unnormalised) posterior of each kept mode."""
        z = (x[:, None] - self.means[None]) / self.stds[None]
        return np.log(self.weights)[None] - np.log(self.stds)[None] - 0.5 * z * z

    def forward(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        self._need_fit()
        x = np.asarray(x, dtype=np.float64)
        lp = self.log_posterior(x)
        if self.mode_choice == "sample":
            rng = rng if rng is not None else np.random.default_rng(int(self.params.get("seed", 0)))
            p = np.exp(lp - lp.max(1, keepdims=True))
            cum = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
            k = (rng.random((len(x), 1)) > cum).sum(1).clip(0, len(self.means) - 1)
        else:
            k = lp.argmax(1)
        out = np.zeros((len(x), 1 + len(self.means)))
        out[:, 0] = (x - self.means[k]) / (4.0 * self.stds[k])
        out[np.arange(len(x)), 1 + k] = 1.0
        return out

    def _inverse(self, y):
        k = y[:, 1:].argmax(1)
        return y[:, 0] * (4.0 * self.stds[k]) + self.means[k]

    def _state(self):
        return {"means": self.means.tolist(), "stds": self.stds.tolist(), "weights": self.weights.tolist(),
                "mode_choice": self.mode_choice}

    def _load(self, fitted):
        self.means = np.asarray(fitted["means"], dtype=np.float64)
        self.stds = np.asarray(fitted["stds"], dtype=np.float64)
        self.weights = np.asarray(fitted["weights"], dtype=np.float64)
        self.mode_choice = str(fitted.get("mode_choice", "argmax"))


class OneHot(ColumnTransform):
    """Category codes 0..K-1 -> one-hot rows; back by argmax. K comes from the column's categories."""

    name = "onehot"
    kind = "categorical"

    def block_shapes(self):
        return [(self.n, "softmax", "category")]

    def _fit(self, x, bounds):
        self._check_params(("n_categories",))
        n = self.params.get("n_categories")
        self.n = int(n) if n is not None else int(x.max()) + 1
        if self.n < 1:
            raise ValueError(f"column '{self.column}': one-hot needs at least one category")

    def _forward(self, x):
        codes = x.astype(np.int64)
        if len(codes) and (codes.min() < 0 or codes.max() >= self.n):
            raise ValueError(f"column '{self.column}': category codes outside 0..{self.n - 1}")
        out = np.zeros((len(codes), self.n))
        out[np.arange(len(codes)), codes] = 1.0
        return out

    def _inverse(self, y):
        return y.argmax(1).astype(np.float64)

    def _state(self):
        return {"n": self.n}

    def _load(self, fitted):
        self.n = int(fitted["n"])


TRANSFORM_CLASSES: dict[str, type[ColumnTransform]] = {
    cls.name: cls for cls in (Identity, Standard, MinMax, Logit, Log, LogDistance, FormulaTransform, VGM, OneHot)
}
assert tuple(TRANSFORM_CLASSES) == ("identity", "standard", "minmax", "logit", "log", "log_distance", "formula",
                                     "vgm", "onehot")


def normalise_transform_spec(spec: str | dict[str, Any] | None, default: str) -> dict[str, Any]:
    """'log' or {name: log, offset: 1} (or None: `default`) -> {"name": ..., **params}, checked."""
    if spec is None:
        spec = default
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a transform is a name ({', '.join(TRANSFORMS)}) or a mapping with a name, got {spec!r}")
    name = str(spec["name"])
    if name not in TRANSFORM_CLASSES:
        raise ValueError(f"unknown transform '{name}'; choose one of: {', '.join(TRANSFORMS)}")
    return {"name": name, **{k: v for k, v in spec.items() if k != "name"}}


def make_transform(column: str, spec: str | dict[str, Any]) -> ColumnTransform:
    spec = normalise_transform_spec(spec, "standard")
    cls = TRANSFORM_CLASSES[spec["name"]]
    return cls(column, **{k: v for k, v in spec.items() if k != "name"})


def transform_from_state(column: str, state: dict[str, Any]) -> ColumnTransform:
    t = make_transform(column, {"name": state["name"], **state.get("params", {})})
    t._load(state["fitted"])
    t.fitted = True
    return t


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v
