"""Tables for tabular GANs: CSV / Parquet -> typed columns -> encoded rows (and back), and `TableData`.

`read_table("events.csv", columns="spec.yaml")` reads a table (pandas for CSV, pyarrow for Parquet; both are
imported only here, inside the functions that need them) and types every column:

continuous   float columns
integer      integer columns, and float columns that hold whole numbers and have missing values (that is how
             an integer column with gaps reads); decoded values are rounded and restored as integers
boolean      bool columns, and text columns of true/false only
datetime     datetime columns and text columns in ISO 8601 (2024-03-01, 2024-03-01T12:00:00+01:00); encoded
             as seconds since the epoch (UTC), decoded to the column's resolution (days, hours, minutes,
             seconds, ms, us or ns: the coarsest that holds every training value) and time zone
categorical  any other text column (and whatever --columns declares categorical); at most `max_categories`
             (1000) categories

`--columns spec.yaml` overrides per column (`load_column_spec`): a mapping of column name to a type (a bare
string, `pz: continuous`) or to settings: type (the kinds above, or `ignore` to leave a column out), bounds
[lo, hi] (either may be null; decoded values are clamped into them, so a bounded column can never leave its
bounds), transform (see table_transforms.py), missing (drop | mean | median | mode | value | category),
fill (the value for `missing: value`), categories (their order) and label (true for the column that
machine-learning-efficacy metrics predict).

Missing values (empty cells, NaN, NaT, +-inf; text that does not parse as the declared type) are counted per
column and handled by its `missing` policy: `drop` (the default, except categorical columns) drops the row;
mean / median / mode / value fill it in; `category` (the default for categorical columns, also allowed for
boolean ones) keeps "missing" as a category of its own, decoded as a missing value. `Table.report()` says
what was found and done.

Bad tables (documented handling; every case raises ValueError naming what was found and the fix, and all
column problems of a table are reported together):
- a file that is empty, or has a header and no rows, or 1 row (MIN_ROWS is 2; a GAN wants thousands);
- a column whose every value is missing (fix: drop it or declare it `ignore`);
- a column mixing numbers and text (fix: declare it categorical, or continuous so that text becomes missing);
- a categorical column of more than max_categories distinct values (an identifier or free text; fix: ignore
  it, or raise max_categories);
- declared bounds the data breaks, an integer column with fractions, unparsable booleans;
- no usable column left (all ignored), or every row dropped for missing values.

`TableTransformer` encodes a table into float32 rows with per-column transforms (table_transforms.py:
standard, minmax, logit, log, log_distance (FAT-GAN), formula, vgm (CTGAN), onehot) and decodes rows back
into a `Table` in the original units and dtypes; its state is a JSON-able dict. `TableData` is the
trainer's dataset (a TensorData of kind "table" holding the encoded rows), whose DataSpec carries the
transformer's state, so a checkpoint's config alone decodes samples.

Where this differs from CTGAN's DataTransformer (Xu et al. 2019) and FAT-GAN (Alanazi et al. 2020): CTGAN
encodes every continuous column with the VGM and every discrete one with one-hot, and leaves type detection to
the caller; FAT-GAN hand-codes its physics transforms. Here the default for numbers is standardisation
(`TableTransformer(continuous="vgm")` gives CTGAN's), any column can choose any numeric transform, and types,
missing values and bounds are handled before encoding.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..files import replace_atomically
from .spec import DataSpec
from .store import TensorData
from .table_transforms import (
    CATEGORICAL_TRANSFORMS,
    NUMERIC_TRANSFORMS,
    Block,
    ColumnTransform,
    OutputLayout,
    make_transform,
    normalise_transform_spec,
    transform_from_state,
)

KINDS = ("continuous", "integer", "categorical", "boolean", "datetime")
SPEC_TYPES = KINDS + ("ignore",)
MISSING_POLICIES = ("drop", "mean", "median", "mode", "value", "category")
SPEC_KEYS = ("type", "bounds", "transform", "missing", "fill", "categories", "label")
KIND_GROUPS = {"continuous": "number", "integer": "number", "datetime": "datetime", "categorical": "category",
               "boolean": "category"}  # kinds a fitted transformer accepts for one another
MAX_CATEGORIES = 1000
MIN_ROWS = 2
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}
DATETIME_UNITS_NS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)
INT64_SAFE = 9.2e18


def is_table_path(source: str | Path) -> bool:
    """Whether `source` names a table file (by its suffix): CSV/TSV (optionally compressed) or Parquet."""
    name = str(source).lower()
    return name.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES)


# ------------------------------------------------------------------------------------------------
# --columns: per-column settings
# ------------------------------------------------------------------------------------------------


@dataclass
class ColumnSpec:
    """One column's settings from --columns; None everywhere means "infer / default"."""

    type: str | None = None
    bounds: tuple[float | None, float | None] | None = None
    transform: dict[str, Any] | None = None
    missing: str | None = None
    fill: Any = None
    categories: list[Any] | None = None
    label: bool = False

    @classmethod
    def parse(cls, name: str, value: Any) -> "ColumnSpec":
        where = f"--columns: column '{name}'"
        if value is None:
            return cls()
        if isinstance(value, str):
            value = {"type": value}
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: give a type ({', '.join(SPEC_TYPES)}) or a mapping of settings, got {value!r}")
        unknown = sorted(set(value) - set(SPEC_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown setting {', '.join(unknown)}; the settings are {', '.join(SPEC_KEYS)}")
        kind = value.get("type")
        if kind is not None and kind not in SPEC_TYPES:
            raise ValueError(f"{where}: unknown type '{kind}'; choose one of: {', '.join(SPEC_TYPES)}")
        bounds = value.get("bounds")
        if bounds is not None:
            if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
                raise ValueError(f"{where}: bounds are [low, high] (either may be null), got {bounds!r}")
            try:
                lo, hi = (None if b is None else float(b) for b in bounds)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: bounds must be numbers or null, got {bounds!r}") from None
            if lo is not None and hi is not None and not lo < hi:
                raise ValueError(f"{where}: bounds [{lo:g}, {hi:g}] are empty: the low bound must be below the high one")
            if (lo is not None and math.isnan(lo)) or (hi is not None and math.isnan(hi)):
                raise ValueError(f"{where}: bounds must not be NaN")
            bounds = (lo, hi)
        transform = value.get("transform")
        if transform is not None:
            try:
                transform = normalise_transform_spec(transform, "standard")
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        missing = value.get("missing")
        if missing is not None and missing not in MISSING_POLICIES:
            raise ValueError(f"{where}: unknown missing-value policy '{missing}'; choose one of: "
                             + ", ".join(MISSING_POLICIES))
        if missing == "value" and value.get("fill") is None:
            raise ValueError(f"{where}: missing: value needs the value to fill in, e.g. fill: 0")
        categories = value.get("categories")
        if categories is not None and (not isinstance(categories, list) or len(set(map(repr, categories))) != len(categories)):
            raise ValueError(f"{where}: categories must be a list of distinct values, got {categories!r}")
        label = value.get("label", False)
        if not isinstance(label, bool):
            raise ValueError(f"{where}: label is true or false, got {label!r}")
        return cls(kind, bounds, transform, missing, value.get("fill"), categories, label)


def parse_column_spec(mapping: Mapping[str, Any] | None) -> dict[str, ColumnSpec]:
    """{name: type or settings} (optionally under a top-level `columns:` key) -> {name: ColumnSpec}."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ValueError(f"--columns must map column names to types or settings, got {type(mapping).__name__}")
    if set(mapping) == {"columns"} and isinstance(mapping["columns"], Mapping):
        mapping = mapping["columns"]
    specs = {str(name): ColumnSpec.parse(str(name), value) for name, value in mapping.items()}
    labels = [n for n, s in specs.items() if s.label]
    if len(labels) > 1:
        raise ValueError(f"--columns marks {len(labels)} label columns ({', '.join(labels)}); mark one")
    return specs


def load_column_spec(path: str | Path) -> dict[str, ColumnSpec]:
    """Read a --columns file (YAML or JSON): column name -> type, or {type, bounds, transform, missing, fill,
    categories, label}. Example:

        pz: {type: continuous, bounds: [null, 10.6], transform: log_distance}
        E:  {bounds: [0, 10.6], transform: {name: formula, forward: "log(10.6 - x)", inverse: "10.6 - exp(y)"}}
        id: ignore
        colour: {type: categorical, missing: mode}
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--columns file '{p}' does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"--columns file '{p}' is not valid YAML: {e}") from None
    return parse_column_spec(data or {})


def _as_specs(columns: Any) -> dict[str, ColumnSpec]:
    if columns is None:
        return {}
    if isinstance(columns, (str, Path)):
        return load_column_spec(columns)
    if isinstance(columns, Mapping) and all(isinstance(v, ColumnSpec) for v in columns.values()):
        return dict(columns)
    return parse_column_spec(columns)


# ------------------------------------------------------------------------------------------------
# Column information and the Table
# ------------------------------------------------------------------------------------------------


@dataclass
class ColumnInfo:
    """What is known about one column: its kind, the dtype to restore, categories, bounds, what was missing.

    categories: categorical/boolean columns, in one-hot order (None, last, is the "missing" category);
    tz / unit_ns: datetime columns' time zone ("" for naive) and resolution in nanoseconds.
    """

    name: str
    kind: str
    dtype: str = ""
    categories: list[Any] = field(default_factory=list)
    bounds: tuple[float | None, float | None] | None = None
    transform: dict[str, Any] | None = None
    tz: str = ""
    unit_ns: int = 1
    label: bool = False
    missing: int = 0        # values missing in the file (including unparsable and infinite ones)
    not_parsed: int = 0     # of which: text that did not parse as the column's type
    infinite: int = 0       # of which: +-inf
    handling: str = ""      # the missing-value policy applied ("" when nothing was missing)
    filled: Any = None      # the value filled in (mean / median / mode / value)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "dtype": self.dtype, "categories": _json_values(self.categories),
                "bounds": None if self.bounds is None else list(self.bounds), "transform": self.transform,
                "tz": self.tz, "unit_ns": self.unit_ns, "label": self.label, "missing": self.missing,
                "not_parsed": self.not_parsed, "infinite": self.infinite, "handling": self.handling,
                "filled": _json_value(self.filled)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ColumnInfo":
        b = d.get("bounds")
        return cls(name=d["name"], kind=d["kind"], dtype=d.get("dtype", ""), categories=list(d.get("categories", [])),
                   bounds=None if b is None else (b[0], b[1]), transform=d.get("transform"), tz=d.get("tz", ""),
                   unit_ns=int(d.get("unit_ns", 1)), label=bool(d.get("label", False)), missing=int(d.get("missing", 0)),
                   not_parsed=int(d.get("not_parsed", 0)), infinite=int(d.get("infinite", 0)),
                   handling=d.get("handling", ""), filled=d.get("filled"))

    def clean(self) -> "ColumnInfo":
        """The same column with nothing missing (a decoded table's)."""
        return replace(self, missing=0, not_parsed=0, infinite=0, handling="", filled=None)


def _json_value(v: Any) -> Any:
    if isinstance(v, np.datetime64):
        return str(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _json_values(values: list[Any]) -> list[Any]:
    return [_json_value(v) for v in values]


def _codes(values: np.ndarray, categories: list[Any], column: str) -> np.ndarray:
    """Category values -> int64 codes into `categories` (None, if listed, is the missing category)."""
    import pandas as pd

    present = [c for c in categories if c is not None]
    codes = pd.Index(present, dtype=object).get_indexer(pd.Index(values, dtype=object)).astype(np.int64)
    missing = codes < 0
    if missing.any():
        isnull = pd.isna(values) if values.dtype == object else np.zeros(len(values), bool)
        if None in categories:
            codes[missing & isnull] = categories.index(None)
        unknown = (codes < 0)
        if unknown.any():
            example = values[np.flatnonzero(unknown)[0]]
            raise ValueError(f"column '{column}' holds {int(unknown.sum())} values outside its {len(present)} known "
                             f"categories (e.g. {example!r}); the table was fitted with: "
                             + ", ".join(map(repr, present[:10])) + (" ..." if len(present) > 10 else ""))
    return codes


class Table:
    """Named columns in order, with no missing values left, and what is known about each (`info`).

    Values: continuous float64; integer int64; boolean bool (object with None when missing is a category);
    categorical object (the labels; None for the missing category); datetime datetime64[ns] in UTC (the time
    zone is info.tz). `report()` says what was read and done; `to_pandas()` / `write()` restore the dtypes.
    """

    def __init__(self, columns: Mapping[str, np.ndarray], info: Mapping[str, ColumnInfo], *, source: str = "",
                 rows_read: int | None = None, ignored: tuple[str, ...] = ()) -> None:
        self.columns = dict(columns)
        self.info = {name: info[name] for name in self.columns}
        lengths = {len(v) for v in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"the columns of a table must have one length, got {sorted(lengths)}")
        self.source = source
        self.n_rows = lengths.pop() if lengths else 0
        self.rows_read = self.n_rows if rows_read is None else rows_read
        self.ignored = tuple(ignored)

    # -- access ----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise KeyError(f"no column '{name}'; the table has: {', '.join(self.columns)}")
        return self.columns[name]

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    @property
    def label(self) -> str | None:
        """The column marked `label: true` (what ML-efficacy metrics predict), or None."""
        return next((n for n, i in self.info.items() if i.label), None)

    def take(self, index: np.ndarray) -> "Table":
        index = np.asarray(index)
        return Table({n: v[index] for n, v in self.columns.items()}, self.info, source=self.source,
                     ignored=self.ignored)

    def numbers(self, name: str, categories: list[Any] | None = None) -> np.ndarray:
        """float64 numbers of a column: continuous/integer as they are, datetime as seconds since the epoch
        (UTC), categorical/boolean as codes into `categories` (default: the column's own)."""
        info, v = self.info[name], self[name]
        if info.kind in ("categorical", "boolean"):
            cats = info.categories if categories is None else categories
            return _codes(np.asarray(v, dtype=object), list(cats), name).astype(np.float64)
        if info.kind == "datetime":
            return v.astype("datetime64[ns]").view(np.int64) / 1e9
        return np.asarray(v, dtype=np.float64)

    @classmethod
    def from_numbers(cls, numbers: Mapping[str, np.ndarray], info: Mapping[str, ColumnInfo], *,
                     source: str = "") -> "Table":
        """The inverse of `numbers`: rounds integers, datetimes to their resolution, clamps to bounds."""
        columns = {}
        for name, x in numbers.items():
            columns[name] = _from_numbers(info[name], np.asarray(x, dtype=np.float64))
        return cls(columns, {n: info[n].clean() for n in columns}, source=source)

    # -- pandas ----------------------------------------------------------------------------------
    @classmethod
    def from_pandas(cls, df, columns: Any = None, *, source: str = "", max_categories: int = MAX_CATEGORIES) -> "Table":
        """Type, check and clean a DataFrame (see the module docstring); `columns`: a --columns path, mapping or
        {name: ColumnSpec}."""
        return _from_frame(df, _as_specs(columns), source or "a DataFrame", max_categories)

    def to_pandas(self):
        """A DataFrame in the original dtypes (ints, floats of the source width, bool, category, tz-aware
        datetimes; a missing category comes back as a missing value)."""
        import pandas as pd

        return pd.DataFrame({n: _restore(self.info[n], v) for n, v in self.columns.items()})

    def write(self, path: str | Path) -> Path:
        """Write to CSV (any CSV_SUFFIXES) or Parquet (.parquet / .pq), atomically."""
        return write_table(self, path)

    # -- report ----------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """JSON-able: source, rows_read, rows (kept), rows_dropped, ignored columns, label, and per column its
        kind, dtype, missing (with not_parsed / infinite), handling, filled, bounds, transform and statistics:
        min / max / mean / std / unique for numbers, min / max for datetimes, categories and the most frequent
        values (top, with counts) for categorical and boolean columns."""
        cols = {}
        for name, v in self.columns.items():
            info = self.info[name]
            entry: dict[str, Any] = {"kind": info.kind, "dtype": info.dtype, "missing": info.missing,
                                     "not_parsed": info.not_parsed, "infinite": info.infinite,
                                     "handling": info.handling, "filled": _json_value(info.filled),
                                     "bounds": None if info.bounds is None else list(info.bounds),
                                     "transform": info.transform}
            if len(v) == 0:
                pass
            elif info.kind in ("continuous", "integer"):
                x = np.asarray(v, dtype=np.float64)
                entry.update(min=float(x.min()), max=float(x.max()), mean=float(x.mean()), std=float(x.std()),
                             unique=int(len(np.unique(x))))
                if info.kind == "integer":
                    vals, counts = np.unique(x, return_counts=True)
                    entry["mode"] = _json_value(int(vals[counts.argmax()]))
            elif info.kind == "datetime":
                entry.update(min=str(v.min()), max=str(v.max()), tz=info.tz, resolution_s=info.unit_ns / 1e9)
            else:
                counts = Counter(v.tolist())
                entry.update(categories=len(info.categories),
                             top=[[_json_value(k), c] for k, c in counts.most_common(5)])
            cols[name] = entry
        return {"source": self.source, "rows_read": self.rows_read, "rows": self.n_rows,
                "rows_dropped": self.rows_read - self.n_rows, "ignored": list(self.ignored), "label": self.label,
                "columns": cols}

    def __repr__(self) -> str:
        kinds = ", ".join(f"{n}:{i.kind}" for n, i in self.info.items())
        return f"Table({self.n_rows} rows; {kinds})"


def format_report(report: Mapping[str, Any]) -> str:
    """A report as text, one line per column (for `ganforge data inspect table.csv`)."""
    lines = [f"{report['source']}: {report['rows']:,} rows kept of {report['rows_read']:,} read"
             + (f" ({report['rows_dropped']:,} dropped for missing values)" if report["rows_dropped"] else "")]
    if report.get("ignored"):
        lines.append("ignored: " + ", ".join(report["ignored"]))
    for name, c in report["columns"].items():
        if c["kind"] in ("continuous", "integer") and "min" in c:
            what = f"[{c['min']:.6g}, {c['max']:.6g}] mean {c['mean']:.4g} std {c['std']:.4g}, {c['unique']:,} distinct"
        elif c["kind"] == "datetime" and "min" in c:
            what = f"{c['min']} .. {c['max']}" + (f" {c['tz']}" if c["tz"] else "")
        elif "top" in c:
            what = f"{c['categories']} categories, top " + ", ".join(f"{k!r} ({n})" for k, n in c["top"][:3])
        else:
            what = ""
        miss = f"; {c['missing']:,} missing -> {c['handling']}" if c["missing"] else ""
        label = " [label]" if name == report.get("label") else ""
        if c["kind"] in ("continuous", "integer") and c.get("mode") is not None:
            what += f", mode {c['mode']}"
        bounds = f"; bounds [{', '.join('-' if b is None else f'{b:g}' for b in c['bounds'])}]" if c.get("bounds") else ""
        t = c.get("transform")
        enc = f"; encoded {t if isinstance(t, str) else t['name']}" if t else ""
        lines.append(f"  {name:20s} {c['kind']:11s} {what}{miss}{bounds}{enc}{label}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Reading and typing
# ------------------------------------------------------------------------------------------------


class _Problem(Exception):
    """One column's problem; a table collects them all into one ValueError."""


def _vtype(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(v, str):
        return "str"
    return "other"


def _examples(values: list[Any], n: int = 3) -> str:
    return ", ".join(repr(v) for v in values[:n])


def _parse_dates(s, pd):
    """Text -> datetimes (ISO 8601; unparsable -> NaT). Mixed UTC offsets are normalised to UTC."""
    try:
        return pd.to_datetime(s, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):
        return pd.to_datetime(s, errors="coerce", format="ISO8601", utc=True)


def _infer(name: str, s, pd) -> str:
    from pandas.api import types as pt

    dtype = s.dtype
    nonnull = s[s.notna()]
    if len(nonnull) == 0:
        raise _Problem(f"'{name}': all {len(s):,} values are missing; drop the column or declare `{name}: ignore` "
                       f"in --columns")
    if pt.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pt.is_datetime64_any_dtype(dtype):
        return "datetime"
    if getattr(dtype, "kind", "") == "m":  # timedelta
        raise _Problem(f"'{name}': durations (timedelta) are not supported; convert them to seconds first")
    if pt.is_integer_dtype(dtype):
        return "integer"
    if pt.is_float_dtype(dtype):
        v = nonnull.to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) < len(s) and len(v) and np.all(v == np.round(v)):
            return "integer"  # whole numbers with gaps: how an integer column with missing values reads
        return "continuous"
    values = nonnull.tolist()
    types = Counter(_vtype(v) for v in values)
    if set(types) == {"bool"}:
        return "boolean"
    if set(types) == {"number"}:
        v = pd.to_numeric(nonnull).to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        return "integer" if len(v) and np.all(v == np.round(v)) else "continuous"
    if set(types) == {"str"}:
        words = {v.strip().lower() for v in values}
        if words <= {"true", "false"}:
            return "boolean"
        parsed = pd.to_numeric(nonnull, errors="coerce")
        n_num = int(parsed.notna().sum())
        if 0 < n_num < len(values):
            nums = [v for v, ok in zip(values, parsed.notna()) if ok]
            text = [v for v, ok in zip(values, parsed.notna()) if not ok]
            raise _Problem(f"'{name}': mixes numbers ({n_num:,}, e.g. {_examples(nums)}) and text ({len(text):,}, e.g. "
                           f"{_examples(text)}); declare `{name}: categorical` in --columns to keep every value as a "
                           f"category, or `{name}: continuous` to read the text as missing values")
        if n_num == 0 and any(ch.isdigit() for ch in values[0]) and any(ch in values[0] for ch in "-:/"):
            if _parse_dates(nonnull, pd).notna().all():
                return "datetime"
        return "categorical"
    if "other" in types:
        odd = [v for v in values if _vtype(v) == "other"]
        raise _Problem(f"'{name}': holds values that are not numbers, text or booleans (e.g. {type(odd[0]).__name__} "
                       f"{odd[0]!r}); convert them, or declare `{name}: ignore`")
    detail = ", ".join(f"{n:,} {t}" for t, n in types.items())
    raise _Problem(f"'{name}': mixes value types ({detail}); declare `{name}: categorical` in --columns (every value "
                   f"a category) or `{name}: continuous` (anything not a number becomes missing)")


def _bool_value(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        w = v.strip().lower()
        if w in TRUE_WORDS:
            return True
        if w in FALSE_WORDS:
            return False
    return "?"


def _sorted_categories(values: list[Any]) -> list[Any]:
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=lambda v: (type(v).__name__, str(v)))


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _convert(name: str, s, kind: str, spec: ColumnSpec, pd, max_categories: int):
    """A Series -> (values, missing mask, ColumnInfo) for `kind`; values at missing places are placeholders."""
    from pandas.api import types as pt

    info = ColumnInfo(name=name, kind=kind, dtype=str(s.dtype), label=spec.label,
                      bounds=spec.bounds, transform=spec.transform)
    notna = s.notna().to_numpy()
    if kind in ("continuous", "integer"):
        if pt.is_datetime64_any_dtype(s.dtype):
            raise _Problem(f"'{name}': holds datetimes; declare it `{name}: datetime` instead of {kind}")
        if pt.is_bool_dtype(s.dtype):
            num = s.astype(np.float64)
        else:
            num = pd.to_numeric(s, errors="coerce")
        v = num.to_numpy(dtype=np.float64, na_value=np.nan)
        info.not_parsed = int((notna & np.isnan(v)).sum())
        inf = np.isinf(v)
        info.infinite = int(inf.sum())
        missing = ~np.isfinite(v)
        present = v[~missing]
        if kind == "integer" and len(present) and not np.all(present == np.round(present)):
            frac = present[present != np.round(present)]
            raise _Problem(f"'{name}': is typed integer but holds fractions (e.g. {frac[0]:g}); declare "
                           f"`{name}: continuous`")
        if spec.bounds is not None and len(present):
            lo, hi = spec.bounds
            for bad, side, b, ext in ((present < lo if lo is not None else None, "below the low", lo, present.min()),
                                      (present > hi if hi is not None else None, "above the high", hi, present.max())):
                if bad is not None and bad.any():
                    raise _Problem(f"'{name}': {int(bad.sum()):,} values are {side} bound {b:g} (extreme {ext:g}); "
                                   f"the bounds in --columns must hold for the data: widen them or clean the data")
    elif kind == "datetime":
        if spec.bounds is not None:
            raise _Problem(f"'{name}': bounds apply to continuous and integer columns, not datetimes")
        if pt.is_datetime64_any_dtype(s.dtype):
            d = s
        elif pt.is_numeric_dtype(s.dtype) and not pt.is_bool_dtype(s.dtype):
            d = pd.to_datetime(s, unit="s", errors="coerce")  # numbers declared datetime: seconds since the epoch
        else:
            d = _parse_dates(s.astype(object).where(s.notna(), None), pd)
        if getattr(d.dt, "tz", None) is not None:
            info.tz = str(d.dt.tz)
            d = d.dt.tz_convert("UTC").dt.tz_localize(None)
        v = d.to_numpy(dtype="datetime64[ns]")
        missing = np.isnat(v)
        info.not_parsed = int((notna & missing).sum())
        ns = v[~missing].view(np.int64)
        info.unit_ns = next((u for u in DATETIME_UNITS_NS if len(ns) and np.all(ns % u == 0)), 1)
    elif kind == "boolean":
        if spec.bounds is not None:
            raise _Problem(f"'{name}': bounds apply to continuous and integer columns, not booleans")
        raw = s.to_numpy(dtype=object)
        v = np.array([_bool_value(x) if ok else None for x, ok in zip(raw, notna)], dtype=object)
        bad = np.array([x == "?" if isinstance(x, str) else False for x in v], dtype=bool)
        if bad.any():
            raise _Problem(f"'{name}': is typed boolean but holds {int(bad.sum()):,} other values (e.g. "
                           f"{raw[np.flatnonzero(bad)[0]]!r}); booleans are true/false, yes/no, 1/0 — declare "
                           f"`{name}: categorical` otherwise")
        missing = ~notna
        info.categories = [False, True]
    else:  # categorical
        if spec.bounds is not None:
            raise _Problem(f"'{name}': bounds apply to continuous and integer columns, not categories")
        v = np.array([_plain(x) for x in s.to_numpy(dtype=object)], dtype=object)
        missing = ~notna
        present = v[~missing].tolist()
        if spec.categories is not None:
            cats = list(spec.categories)
            unknown = sorted({repr(x) for x in present} - {repr(c) for c in cats})
            if unknown:
                raise _Problem(f"'{name}': holds values not in its declared categories: {', '.join(unknown[:5])}")
        elif isinstance(s.dtype, pd.CategoricalDtype):
            cats = [_plain(c) for c in s.cat.categories]
        else:
            cats = _sorted_categories(present)
        if len(cats) > max_categories:
            raise _Problem(f"'{name}': has {len(cats):,} distinct values in {len(s):,} rows, over the limit of "
                           f"{max_categories:,} categories: an identifier or free text? declare `{name}: ignore` in "
                           f"--columns, or raise max_categories if it really is categorical")
        info.categories = cats
    return v, missing, info


def _fill(name: str, v: np.ndarray, missing: np.ndarray, info: ColumnInfo, policy: str, fill: Any, pd) -> np.ndarray:
    """Apply a fill policy (mean / median / mode / value / category) in place of missing values."""
    kind = info.kind
    present = v[~missing]
    if policy in ("mean", "median"):
        if kind not in ("continuous", "integer", "datetime"):
            raise _Problem(f"'{name}': missing: {policy} needs numbers or datetimes; a {kind} column can use mode, "
                           f"value" + (" or category" if kind in ("categorical", "boolean") else "") + " or drop")
        x = present.view(np.int64).astype(np.float64) if kind == "datetime" else present.astype(np.float64)
        value = float(np.mean(x) if policy == "mean" else np.median(x))
        if kind == "integer":
            value = float(np.round(value))
        if kind == "datetime":
            value = np.datetime64(int(round(value / info.unit_ns)) * info.unit_ns, "ns")
    elif policy == "mode":
        counts = Counter(present.tolist() if kind != "datetime" else present.view(np.int64).tolist())
        value = counts.most_common(1)[0][0]
        if kind == "datetime":
            value = np.datetime64(value, "ns")
    elif policy == "value":
        value = fill
        try:
            if kind in ("continuous", "integer"):
                value = float(fill)
                if kind == "integer" and value != round(value):
                    raise ValueError
            elif kind == "datetime":
                ts = pd.Timestamp(fill)
                if ts.tzinfo is not None:
                    ts = ts.tz_convert("UTC").tz_localize(None)
                value = ts.to_datetime64().astype("datetime64[ns]")
            elif kind == "boolean":
                value = _bool_value(fill)
                if value == "?":
                    raise ValueError
        except (ValueError, TypeError):
            raise _Problem(f"'{name}': fill value {fill!r} is not a valid {kind} value") from None
        if kind == "categorical" and all(repr(c) != repr(value) for c in info.categories):
            info.categories = info.categories + [value]
    elif policy == "category":
        if kind not in ("categorical", "boolean"):
            raise _Problem(f"'{name}': missing: category applies to categorical and boolean columns; a {kind} column "
                           f"can use drop, mean, median, mode or value")
        value = None
        info.categories = info.categories + [None]
    else:
        raise AssertionError(policy)
    v = v.copy()
    if v.dtype == object:
        v[missing] = [value] * int(missing.sum())
    else:
        v[missing] = value
    if policy == "value" and kind in ("continuous", "integer") and info.bounds is not None:
        lo, hi = info.bounds
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise _Problem(f"'{name}': fill value {value:g} is outside the bounds {list(info.bounds)}")
    info.filled = None if policy == "category" else _json_value(value)
    return v


def _final(v: np.ndarray, info: ColumnInfo) -> np.ndarray:
    if info.kind == "continuous":
        return v.astype(np.float64)
    if info.kind == "integer":
        return v.astype(np.float64).astype(np.int64)
    if info.kind == "datetime":
        return v.astype("datetime64[ns]")
    if info.kind == "boolean" and None not in info.categories:
        return v.astype(bool)
    return v.astype(object)


def _from_frame(df, specs: dict[str, ColumnSpec], source: str, max_categories: int) -> Table:
    import pandas as pd

    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    names = list(df.columns)
    unknown = [n for n in specs if n not in names]
    if unknown:
        raise ValueError(f"--columns names {', '.join(unknown)}, which {source} does not have; its columns: "
                         + ", ".join(names[:30]) + (" ..." if len(names) > 30 else ""))
    if not names:
        raise ValueError(f"{source} is empty: no columns and no rows")
    if len(df) == 0:
        raise ValueError(f"{source} has no rows (only the header: {', '.join(names[:10])}"
                         f"{' ...' if len(names) > 10 else ''}); give it data rows")
    if len(df) < MIN_ROWS:
        raise ValueError(f"{source} has {len(df)} row; a GAN needs at least {MIN_ROWS} rows to fit its transforms "
                         f"(in practice thousands): give it more data")
    problems, ignored = [], []
    converted: dict[str, tuple[np.ndarray, np.ndarray, ColumnInfo]] = {}
    for name in names:
        spec = specs.get(name, ColumnSpec())
        if spec.type == "ignore":
            ignored.append(name)
            continue
        s = df[name]
        try:
            if s.notna().sum() == 0:
                raise _Problem(f"'{name}': all {len(s):,} values are missing; drop the column or declare "
                               f"`{name}: ignore` in --columns")
            kind = spec.type or _infer(name, s, pd)
            if spec.transform is not None:
                allowed = CATEGORICAL_TRANSFORMS if kind in ("categorical", "boolean") else NUMERIC_TRANSFORMS
                if spec.transform["name"] not in allowed:
                    raise _Problem(f"'{name}': the {spec.transform['name']} transform does not apply to a {kind} "
                                   f"column; use one of: {', '.join(allowed)}")
            v, missing, info = _convert(name, s, kind, spec, pd, max_categories)
            info.missing = int(missing.sum())
            policy = spec.missing or ("category" if kind == "categorical" else "drop")
            if info.missing:
                if missing.all():
                    raise _Problem(f"'{name}': none of its {len(s):,} values is a valid {kind} value; declare "
                                   f"another type, or `{name}: ignore`")
                info.handling = policy
                if policy != "drop":
                    v = _fill(name, v, missing, info, policy, spec.fill, pd)
                    missing = np.zeros(len(v), dtype=bool)
            converted[name] = (v, missing, info)
        except _Problem as e:
            problems.append(str(e))
    if problems:
        raise ValueError(f"{source}: {len(problems)} column{'s' if len(problems) > 1 else ''} cannot be used:\n  - "
                         + "\n  - ".join(problems))
    if not converted:
        raise ValueError(f"{source} has no usable column: found {', '.join(names)}, all declared ignore in --columns; "
                         f"keep at least one")
    drop = np.zeros(len(df), dtype=bool)
    for v, missing, info in converted.values():
        drop |= missing
    keep = ~drop
    if keep.sum() < MIN_ROWS:
        worst = sorted(((int(m.sum()), n) for n, (_, m, _) in converted.items() if m.any()), reverse=True)
        raise ValueError(f"{source}: dropping the rows with missing values leaves {int(keep.sum())} of {len(df):,} rows; "
                         "the columns with the most missing values: "
                         + ", ".join(f"{n} ({c:,})" for c, n in worst[:5])
                         + "; fill them instead (missing: median, mode or value in --columns) or declare them ignore")
    columns = {n: _final(v[keep], info) for n, (v, _, info) in converted.items()}
    return Table(columns, {n: c[2] for n, c in converted.items()}, source=source, rows_read=len(df),
                 ignored=tuple(ignored))


def _from_numbers(info: ColumnInfo, x: np.ndarray) -> np.ndarray:
    """Numbers (see Table.numbers) -> the column's values: rounded, clamped to bounds, categories by code."""
    kind = info.kind
    if kind in ("categorical", "boolean"):
        codes = np.clip(np.rint(np.nan_to_num(x, nan=0.0)), 0, len(info.categories) - 1).astype(np.int64)
        cats = np.empty(len(info.categories), dtype=object)
        cats[:] = info.categories
        v = cats[codes]
        return v.astype(bool) if kind == "boolean" and None not in info.categories else v
    if kind == "datetime":
        with np.errstate(over="ignore", invalid="ignore"):
            ns = np.clip(x * 1e9 / info.unit_ns, -INT64_SAFE / info.unit_ns, INT64_SAFE / info.unit_ns)
        return (np.rint(ns).astype(np.int64) * info.unit_ns).astype("datetime64[ns]")
    lo, hi = info.bounds if info.bounds is not None else (None, None)
    if kind == "integer":
        lo = -INT64_SAFE if lo is None else math.ceil(lo)
        hi = INT64_SAFE if hi is None else math.floor(hi)
        return np.clip(np.rint(x), lo, hi).astype(np.int64)
    if lo is not None or hi is not None:
        x = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return x.astype(np.float64)


def _restore(info: ColumnInfo, v: np.ndarray):
    """Values -> a pandas Series/array in the column's original dtype."""
    import pandas as pd

    dtype, kind = info.dtype, info.kind
    if kind == "continuous":
        return pd.Series(v.astype(dtype if dtype in ("float16", "float32", "float64") else np.float64))
    if kind == "integer":
        try:
            target = np.dtype(dtype) if dtype and np.dtype(dtype).kind in "iu" else np.dtype(np.int64)
        except TypeError:  # pandas' own dtypes (Int64, ...)
            return pd.Series(v).astype(dtype if dtype[:1] in "IU" else "int64")
        lim = np.iinfo(target)
        return pd.Series(np.clip(v, lim.min, lim.max).astype(target))
    if kind == "datetime":
        s = pd.Series(v.astype("datetime64[ns]"))
        if info.tz:
            s = s.dt.tz_localize("UTC").dt.tz_convert(info.tz)
        if dtype.startswith("datetime64") and dtype != str(s.dtype):  # e.g. a Parquet file's datetime64[us]
            try:
                s = s.astype(dtype)
            except (TypeError, ValueError):
                pass
        return s
    if kind == "boolean":
        if None in info.categories:
            return pd.Series(pd.array(list(v), dtype="boolean"))
        return pd.Series(v.astype(bool))
    present = [c for c in info.categories if c is not None]
    if dtype == "category":
        return pd.Series(pd.Categorical(list(v), categories=present))
    s = pd.Series(list(v), dtype=object)
    if None not in info.categories:
        try:
            if dtype in ("string", "str") or dtype.startswith("string"):
                return s.astype(dtype)
            if dtype and np.dtype(dtype).kind in "iufb":
                return s.astype(dtype)
        except (TypeError, ValueError):
            pass
    return s


def read_table(path: str | Path, columns: Any = None, *, max_categories: int = MAX_CATEGORIES,
               na_values: list[str] | None = None) -> Table:
    """Read a CSV (pandas) or Parquet (pyarrow) file into a typed, cleaned Table.

    columns: a --columns file path, a mapping {name: type or settings}, or {name: ColumnSpec}. na_values:
    extra strings read as missing in CSV files (pandas' defaults: "", NA, NaN, null, ...).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"table file '{p}' does not exist")
    specs = _as_specs(columns)
    return Table.from_pandas(_read_frame(p, na_values), specs, source=str(p), max_categories=max_categories)


def _read_frame(p: Path, na_values: list[str] | None = None):
    name = p.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(p).to_pandas()
        except (pa.ArrowException, OSError) as e:
            raise ValueError(f"'{p}' cannot be read as Parquet: {e}") from None
    if name.endswith(CSV_SUFFIXES):
        import pandas as pd

        try:
            return pd.read_csv(p, sep="\t" if ".tsv" in name else ",", na_values=na_values, low_memory=False)
        except pd.errors.EmptyDataError:
            raise ValueError(f"{p} is empty: no header and no rows") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise ValueError(f"'{p}' cannot be read as CSV: {e}") from None
    raise ValueError(f"'{p}': unknown table format; name it .csv, .tsv (optionally .gz) or .parquet")


def write_table(table: Table, path: str | Path) -> Path:
    """Write a Table to CSV or Parquet (by suffix) in its original dtypes, atomically (a failed write leaves
    any earlier file as it was)."""
    p = Path(path)
    name = p.name.lower()
    df = table.to_pandas()
    if name.endswith(PARQUET_SUFFIXES):
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(df, preserve_index=False)
        replace_atomically(p, lambda tmp: pq.write_table(arrow, tmp))
    elif name.endswith(CSV_SUFFIXES):
        sep = "\t" if ".tsv" in name else ","  # compression from the suffix (the temporary file keeps it)
        replace_atomically(p, lambda tmp: df.to_csv(tmp, sep=sep, index=False))
    else:
        raise ValueError(f"'{p}': unknown table format; name it .csv, .tsv (optionally .gz) or .parquet")
    return p


def write_table_chunks(chunks: Any, path: str | Path) -> int:
    """Write Tables of one schema, one after another, to one CSV or Parquet file without holding them all:
    memory stays at one chunk's size whatever the total (a Parquet row group per chunk; CSV rows appended).
    Atomic like write_table. Returns the number of rows written."""
    p = Path(path)
    name = p.name.lower()
    if not name.endswith(PARQUET_SUFFIXES + CSV_SUFFIXES) or name.endswith(".csv.zip"):
        raise ValueError(f"'{p}': unknown table format for streaming; name it .csv, .tsv (optionally .gz, .bz2, "
                         f".xz) or .parquet")
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        if name.endswith(PARQUET_SUFFIXES):
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = schema = None
            try:
                for table in chunks:
                    df = table.to_pandas()
                    arrow = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
                    if writer is None:
                        schema = arrow.schema
                        writer = pq.ParquetWriter(tmp, schema)
                    writer.write_table(arrow)
                    rows += len(df)
            finally:
                if writer is not None:
                    writer.close()
            return
        import bz2
        import gzip
        import lzma

        opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(Path(name).suffix, open)
        sep = "\t" if ".tsv" in name else ","
        with opener(tmp, "wt", newline="") as f:
            for i, table in enumerate(chunks):
                df = table.to_pandas()
                df.to_csv(f, sep=sep, index=False, header=i == 0)
                rows += len(df)

    replace_atomically(p, write)
    return rows


# ------------------------------------------------------------------------------------------------
# Encoding rows: TableTransformer
# ------------------------------------------------------------------------------------------------

STATE_FORMAT = 1


class TableTransformer:
    """Per-column invertible transforms fitted on a training table (see table_transforms.py).

    transforms: {column: name or {name, ...settings}} overriding the columns' own (from --columns) and the
    defaults: onehot for categorical and boolean columns, `continuous` ("standard"; "vgm" for CTGAN's
    mode-specific normalisation) for continuous, integer and datetime ones. seed: the VGM's fit and its
    sampled modes (mode_choice: sample).

    fit(table) -> state dict; transform(table) -> float32 (N, D) whose blocks `layout` describes;
    inverse(rows) -> Table in the original units and dtypes (clamped to the columns' bounds);
    state_dict() / from_state(state) round-trip through JSON.
    """

    def __init__(self, transforms: Mapping[str, Any] | None = None, *, continuous: str = "standard",
                 seed: int = 0) -> None:
        if continuous not in NUMERIC_TRANSFORMS:
            raise ValueError(f"continuous transform '{continuous}' is unknown; choose one of: "
                             + ", ".join(NUMERIC_TRANSFORMS))
        self.overrides = {str(k): normalise_transform_spec(v, continuous) for k, v in (transforms or {}).items()}
        self.continuous = continuous
        self.seed = int(seed)
        self.columns: list[tuple[str, ColumnInfo, ColumnTransform]] = []
        self.layout = OutputLayout(())

    @property
    def fitted(self) -> bool:
        return bool(self.columns)

    @property
    def dim(self) -> int:
        return self.layout.dim

    def _spec_for(self, info: ColumnInfo) -> dict[str, Any]:
        categorical = info.kind in ("categorical", "boolean")
        spec = self.overrides.get(info.name) or info.transform
        spec = normalise_transform_spec(spec, "onehot" if categorical else self.continuous)
        allowed = CATEGORICAL_TRANSFORMS if categorical else NUMERIC_TRANSFORMS
        if spec["name"] not in allowed:
            raise ValueError(f"column '{info.name}' is {info.kind}: the {spec['name']} transform does not apply; use one "
                             f"of: {', '.join(allowed)}")
        if spec["name"] == "onehot":
            spec = {**spec, "n_categories": len(info.categories)}
        if spec["name"] == "vgm" and "seed" not in spec:
            spec = {**spec, "seed": self.seed}
        return spec

    def fit(self, table: Table) -> dict[str, Any]:
        unknown = sorted(set(self.overrides) - set(table.names))
        if unknown:
            raise ValueError(f"transforms are given for {', '.join(unknown)}, which the table does not have; its "
                             f"columns: {', '.join(table.names)}")
        if len(table) < MIN_ROWS:
            raise ValueError(f"cannot fit transforms on {len(table)} rows; at least {MIN_ROWS} are needed")
        columns = []
        for name in table.names:
            info = table.info[name].clean()
            t = make_transform(name, self._spec_for(info))
            bounds = info.bounds if info.bounds is not None else (None, None)
            t.fit(table.numbers(name), bounds)
            columns.append((name, info, t))
        self.columns = columns
        self.layout = _layout(columns)
        return self.state_dict()

    def transform(self, table: Table, *, dtype: Any = np.float32, seed: int | None = None) -> np.ndarray:
        """Encoded rows (N, D), `dtype` float32 by default (float64 for exactness checks). seed: the draw of
        VGM modes under mode_choice: sample (default: the transformer's seed)."""
        self._need_fit()
        missing = [n for n, _, _ in self.columns if n not in table]
        if missing:
            raise ValueError(f"the table lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which "
                             f"the transformer was fitted with")
        rng = np.random.default_rng(self.seed if seed is None else seed)
        parts = []
        for name, info, t in self.columns:
            have = table.info[name].kind
            if KIND_GROUPS[have] != KIND_GROUPS[info.kind]:
                raise ValueError(f"column '{name}' is {have} in this table but {info.kind} when the transformer was fitted")
            x = table.numbers(name, info.categories if info.kind in ("categorical", "boolean") else None)
            parts.append(t.forward(x, rng))
        out = np.concatenate(parts, axis=1) if parts else np.zeros((len(table), 0))
        return out.astype(dtype)

    def fit_transform(self, table: Table, **kwargs: Any) -> np.ndarray:
        self.fit(table)
        return self.transform(table, **kwargs)

    def inverse(self, rows: Any, *, source: str = "synthetic") -> Table:
        """Encoded rows (N, D) (numpy or torch) -> a Table in the original units, clamped to bounds, with
        categories by argmax. NaN anywhere is an error (a diverged generator); +-inf is clamped like any
        large value."""
        self._need_fit()
        if isinstance(rows, torch.Tensor):
            rows = rows.detach().to("cpu", torch.float64).numpy()
        a = np.asarray(rows, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != self.dim:
            raise ValueError(f"rows to decode must be (N, {self.dim}), got {tuple(a.shape)}")
        if np.isnan(a).any():
            bad = sorted({b.column for b in self.layout.blocks if np.isnan(a[:, b.start : b.stop]).any()})
            raise ValueError(f"{int(np.isnan(a).any(1).sum()):,} rows to decode hold NaN (columns {', '.join(bad)}): "
                             f"the generator diverged")
        numbers = {}
        for name, info, t in self.columns:
            numbers[name] = t.inverse(a[:, self.layout.column_slice(name)])
        return Table.from_numbers(numbers, {n: i for n, i, _ in self.columns}, source=source)

    def state_dict(self) -> dict[str, Any]:
        """JSON-able: everything needed to encode and decode (column infos, fitted transforms, layout)."""
        self._need_fit()
        return {"format": STATE_FORMAT, "continuous": self.continuous, "seed": self.seed,
                "columns": [{"info": info.to_json(), "transform": t.state()} for _, info, t in self.columns],
                "layout": self.layout.to_json()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | str) -> "TableTransformer":
        if isinstance(state, str):
            state = json.loads(state)
        if int(state.get("format", 0)) != STATE_FORMAT:
            raise ValueError(f"table transformer state format {state.get('format')} is not {STATE_FORMAT}")
        tr = cls(continuous=state["continuous"], seed=state["seed"])
        tr.columns = []
        for c in state["columns"]:
            info = ColumnInfo.from_json(c["info"])
            tr.columns.append((info.name, info, transform_from_state(info.name, c["transform"])))
        tr.layout = _layout(tr.columns)
        if tr.layout.to_json() != [list(b) for b in state["layout"]]:
            raise ValueError("table transformer state is inconsistent: its layout does not match its transforms")
        return tr

    def _need_fit(self) -> None:
        if not self.columns:
            raise RuntimeError("the table transformer is not fitted yet: call fit(table) first")


def _layout(columns: list[tuple[str, ColumnInfo, ColumnTransform]]) -> OutputLayout:
    blocks, at = [], 0
    for name, _, t in columns:
        for width, activation, role in t.block_shapes():
            blocks.append(Block(name, at, at + width, activation, role))
            at += width
    return OutputLayout(tuple(blocks))


# ------------------------------------------------------------------------------------------------
# The trainer's dataset
# ------------------------------------------------------------------------------------------------


@dataclass
class TableData(TensorData):
    """A table for the trainer: x holds the encoded rows (float32 (N, D)), spec is DataSpec(kind="table",
    shape=(D,), table_state=the transformer's JSON). `Loader` batches it like points data; `decode(rows)` turns
    generated rows into a Table."""

    table: Table | None = None
    transformer: TableTransformer | None = None

    @classmethod
    def from_table(cls, table: Table, transformer: TableTransformer | None = None, *, continuous: str = "standard",
                   transforms: Mapping[str, Any] | None = None, seed: int = 0, name: str = "") -> "TableData":
        tr = transformer if transformer is not None else TableTransformer(transforms, continuous=continuous, seed=seed)
        if not tr.fitted:
            tr.fit(table)
        x = torch.from_numpy(tr.transform(table))
        label = name or (Path(table.source).name.split(".")[0] if table.source else "table")
        spec = DataSpec("table", (int(x.shape[1]),), name=label, table_state=json.dumps(tr.state_dict()))
        return cls(spec, x, None, source=table.source, table=table, transformer=tr)

    @property
    def layout(self) -> OutputLayout:
        return self.transformer.layout

    def decode(self, rows: Any) -> Table:
        return self.transformer.inverse(rows)

    def subset(self, n: int) -> "TableData":
        return TableData(self.spec, self.x[:n], None, self.skipped, self.source,
                         table=self.table.take(np.arange(min(n, len(self.table)))), transformer=self.transformer)


def transformer_from_spec(spec: DataSpec) -> TableTransformer:
    """The fitted transformer a table run's DataSpec carries (e.g. from a checkpoint's config)."""
    if spec.kind != "table" or not spec.table_state:
        raise ValueError(f"dataset '{spec.name}' holds {spec.kind}, not a table: it has no table transforms")
    return TableTransformer.from_state(spec.table_state)


def load_table_data(source: str | Path, columns: Any = None, *, continuous: str = "standard",
                    transforms: Mapping[str, Any] | None = None, seed: int = 0,
                    max_categories: int = MAX_CATEGORIES) -> TableData:
    """read_table + TableTransformer fitted on it -> TableData (what `--data table.csv` trains on)."""
    table = read_table(source, columns, max_categories=max_categories)
    return TableData.from_table(table, continuous=continuous, transforms=transforms, seed=seed)
