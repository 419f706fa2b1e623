"""Differentiable torch versions of the continuous column transforms, for families that reason in physical units.

`TorchCodec(transformer, columns)` reads a fitted `TableTransformer`'s continuous columns (their fitted
statistics: the standardisation's mean and std, minmax/logit bounds, log offsets, log_distance bounds) and gives

    decode(rows)            encoded rows (N, D) -> (N, C) values of its C columns in the columns' own units
                            (what `TableTransformer.inverse` computes for them, clamped to the declared
                            bounds as the table layer does, without its rounding of integer columns), differentiable;
    encode(values)          (N, C) physical values -> (N, C) encoded values of those columns (their forward);
    encode(values, clamp=True) the same, with every value first clamped into the set the inverse can return
                            (a minmax/logit column's [lo, hi], a log column's lower bound, a log_distance
                            column's side of its bound, and the column's declared bounds), and logarithms
                            kept finite, so a generator's physical output always encodes to finite rows
                            that decode to the clamped values;
    encode_rows(values)     (N, C) -> full encoded rows (N, D), for a codec over every column of a table made
                            only of continuous blocks.

Supported transforms: identity, standard, minmax, logit, log, log_distance (the same formulas as
table_transforms.py, in the tensor's dtype). A `formula` column raises: its user expression is evaluated by
numpy's interpreter and has no torch form here. `vgm` (a scalar plus a mode one-hot) and `onehot` columns raise
too: this codec (and fatgan, which uses it) handles continuous columns only; ctgan is the family for mixed
tables.

Float32: exp() arguments are clipped at +-80 (exp(80) ~ 5.5e34 stays finite in float32) instead of the numpy
transforms' +-700; float64 tensors use +-700 and agree with the numpy transforms to rounding.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from .table_transforms import EXP_MAX

SUPPORTED = ("identity", "standard", "minmax", "logit", "log", "log_distance")
EXP_MAX_FLOAT32 = 80.0


def _exp_max(t: Tensor) -> float:
    return EXP_MAX if t.dtype == torch.float64 else EXP_MAX_FLOAT32


def _tiny(t: Tensor) -> float:
    return float(torch.finfo(t.dtype).tiny)


class _Column:
    """One continuous column: g and its inverse, the standardisation, and the inverse's range (lo, hi)."""

    def __init__(self, name: str, transform: Any, bounds: tuple[float | None, float | None] | None) -> None:
        self.name, self.kind = name, transform.name
        self.mean = float(getattr(transform, "mean", 0.0))
        self.std = float(getattr(transform, "std", 1.0))
        lo, hi = -math.inf, math.inf
        t = transform
        if self.kind in ("minmax", "logit"):
            self.lo, self.hi = float(t.lo), float(t.hi)
            lo, hi = self.lo, self.hi
            if self.kind == "logit":
                self.eps = float(t.eps)
        elif self.kind == "log":
            self.lo, self.offset = float(t.lo), float(t.offset)
            lo = self.lo
        elif self.kind == "log_distance":
            self.side, self.bound = str(t.side), float(t.bound)
            if self.side == "upper":
                hi = self.bound
            else:
                lo = self.bound
        # the table layer clamps a decoded column to its declared bounds (Table.from_numbers); so does decode
        self.declared = (None if bounds is None or bounds[0] is None else float(bounds[0]),
                         None if bounds is None or bounds[1] is None else float(bounds[1]))
        if self.declared[0] is not None:
            lo = max(lo, self.declared[0])
        if self.declared[1] is not None:
            hi = min(hi, self.declared[1])
        self.domain = (lo, hi)

    # g: physical -> unstandardised; g_inv: its inverse (as table_transforms.py)
    def _g(self, x: Tensor, clamp: bool) -> Tensor:
        k = self.kind
        if k in ("identity", "standard"):
            return x
        if k == "minmax":
            return 2.0 * (x - self.lo) / (self.hi - self.lo) - 1.0
        if k == "logit":
            u = self.eps + (1 - 2 * self.eps) * (x - self.lo) / (self.hi - self.lo)
            return torch.log(u) - torch.log1p(-u)
        if k == "log":
            arg = x - self.lo + self.offset
            return torch.log(arg.clamp_min(_tiny(x)) if clamp else arg)
        dist = self.bound - x if self.side == "upper" else x - self.bound  # log_distance
        return torch.log(dist.clamp_min(_tiny(x)) if clamp else dist)

    def _g_inv(self, z: Tensor) -> Tensor:
        k = self.kind
        if k in ("identity", "standard"):
            return z
        if k == "minmax":
            u = (z.clamp(-1.0, 1.0) + 1.0) * 0.5
            return (self.lo + u * (self.hi - self.lo)).clamp(self.lo, self.hi)
        if k == "logit":
            u = 0.5 * (1.0 + torch.tanh(0.5 * z))
            u = ((u - self.eps) / (1 - 2 * self.eps)).clamp(0.0, 1.0)
            return (self.lo + u * (self.hi - self.lo)).clamp(self.lo, self.hi)
        m = _exp_max(z)
        if k == "log":
            return torch.clamp_min(torch.exp(z.clamp(-m, m)) + (self.lo - self.offset), self.lo)
        d = torch.exp(z.clamp(-m, m))  # log_distance
        return self.bound - d if self.side == "upper" else self.bound + d

    def forward(self, x: Tensor, clamp: bool = False) -> Tensor:
        if clamp:
            lo, hi = self.domain
            if math.isfinite(lo) or math.isfinite(hi):
                x = x.clamp(lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None)
        if self.kind == "identity":
            return x
        if self.kind == "minmax":
            return self._g(x, clamp)
        return (self._g(x, clamp) - self.mean) / self.std

    def inverse(self, y: Tensor) -> Tensor:
        x = self._g_inv(y) if self.kind in ("identity", "minmax") else self._g_inv(y * self.std + self.mean)
        lo, hi = self.declared
        return x if lo is None and hi is None else x.clamp(lo, hi)


class TorchCodec:
    """The continuous columns `columns` (default: all of the table's) of a fitted TableTransformer, in torch.

    `columns[i]` sits at `index[i]` of an encoded row. Raises a ValueError naming the column for a column
    that is not continuous or whose transform has no torch form here.
    """

    def __init__(self, transformer: Any, columns: Sequence[str] | None = None) -> None:
        if not getattr(transformer, "fitted", False):
            raise ValueError("TorchCodec needs a fitted TableTransformer (fit it on the table first)")
        by_name = {name: (info, t) for name, info, t in transformer.columns}
        names = list(by_name) if columns is None else [str(c) for c in columns]
        missing = [c for c in names if c not in by_name]
        if missing:
            raise ValueError(f"the table has no column {', '.join(missing)}; its columns: {', '.join(by_name)}")
        if len(set(names)) != len(names):
            raise ValueError(f"columns are repeated in {names}")
        layout = transformer.layout
        self.layout = layout
        self.names: list[str] = names
        self.cols: list[_Column] = []
        index = []
        for name in names:
            info, t = by_name[name]
            if t.name not in SUPPORTED:
                if t.name == "formula":
                    why = "its user formula is evaluated by numpy (not differentiable here)"
                elif t.name == "vgm":
                    why = "it encodes a value as a scalar plus a mode one-hot"
                else:
                    why = "it is categorical (a one-hot)"
                raise ValueError(f"column '{name}' uses the {t.name} transform, which the torch codec cannot run: "
                                 f"{why}. fatgan handles continuous tables: give the column one of "
                                 f"{', '.join(SUPPORTED)} (data.transforms), or use ctgan for mixed tables")
            blocks = [b for b in layout.blocks if b.column == name]
            if len(blocks) != 1 or blocks[0].width != 1:
                raise ValueError(f"column '{name}' is not one value per row in the layout")
            self.cols.append(_Column(name, t, info.bounds))
            index.append(blocks[0].start)
        self.index: list[int] = index
        self.complete = sorted(index) == list(range(layout.dim))

    def __len__(self) -> int:
        return len(self.cols)

    @property
    def domains(self) -> list[tuple[float, float]]:
        """Per column, the (lo, hi) range its decoded values can take (inf where open)."""
        return [c.domain for c in self.cols]

    def decode(self, rows: Tensor) -> Tensor:
        """Encoded rows (N, D) -> (N, C) values of the codec's columns, in physical units."""
        if rows.dim() != 2 or rows.shape[1] != self.layout.dim:
            raise ValueError(f"rows to decode must be (N, {self.layout.dim}), got {tuple(rows.shape)}")
        return torch.stack([c.inverse(rows[:, i]) for c, i in zip(self.cols, self.index)], dim=1)

    def encode(self, values: Tensor, clamp: bool = False) -> Tensor:
        """(N, C) physical values -> (N, C) encoded values (the columns' forward transforms)."""
        if values.dim() != 2 or values.shape[1] != len(self.cols):
            raise ValueError(f"values to encode must be (N, {len(self.cols)}) for the columns "
                             f"{', '.join(self.names)}, got {tuple(values.shape)}")
        return torch.stack([c.forward(values[:, j], clamp) for j, c in enumerate(self.cols)], dim=1)

    def encode_rows(self, values: Tensor, clamp: bool = False) -> Tensor:
        """(N, C) physical values -> full encoded rows (N, D); the codec must cover every column of the table."""
        if not self.complete:
            others = [c for c in self.layout.columns if c not in self.names]
            raise ValueError(f"encode_rows needs a codec over every column, but {', '.join(others)} are not in it "
                             f"(a table of continuous columns only can be encoded from values alone)")
        enc = self.encode(values, clamp)
        slot_to_col = sorted(range(len(self.index)), key=self.index.__getitem__)
        return enc[:, slot_to_col]
