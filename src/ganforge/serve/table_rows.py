"""Generated table rows -> the training table's values, with numpy and the standard library alone.

A table model's generator (and its ONNX export) outputs ENCODED rows (N, D): tanh/linear values and one-hot
blocks. Decoding them (argmax of each one-hot block, the VGM mode's mean and scale, un-standardising, the
inverse of log / logit / log-distance / formula transforms, rounding integers, clamping to bounds, restoring
categories, booleans and datetimes) runs outside the graph, here, from the fitted transformer's state (the
JSON of `TableTransformer.state_dict()`, which model_info carries as info["table"]["state"]).

`decode_rows(state, rows)` gives {column: list of values} equal to `TableTransformer.inverse(rows)`'s Table
(data/table.py: `_from_numbers`), as JSON-ready Python values: continuous -> float (None for a non-finite
value, which JSON cannot hold), integer -> int, boolean -> bool, categorical -> the category (None for the
"missing" category), datetime -> an ISO 8601 string in the column's time zone (pandas' Timestamp.isoformat:
seconds, then .ffffff or .fffffffff when there is a fraction, then the UTC offset for a zoned column).

`encode_rows(...)` writes the API's two formats: JSON {"seed", "n", "columns", "kinds", "rows": [[...], ...]}
(one list per row, in the columns' order) and CSV (a header line, then one line per row; empty for None).

The Lambda package ships this file as ganforge_table_rows.py beside data/table_transforms.py as
ganforge_table_transforms.py (which imports numpy and the standard library only).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import re
from typing import Any, Mapping

import numpy as np

try:  # inside the Lambda package
    import ganforge_table_transforms as transforms
except ImportError:  # inside the ganforge package
    from ..data import table_transforms as transforms

STATE_FORMAT = 1  # data/table.py's STATE_FORMAT
INT64_SAFE = 9.2e18  # data/table.py's INT64_SAFE: datetimes and unbounded integers are clipped to it
FORMATS = ("json", "csv")
_FIXED = re.compile(r"UTC([+-])(\d\d):(\d\d)(?::(\d\d))?")


class RowDecoder:
    """The decoder of one fitted transformer state (a dict, or its JSON text)."""

    def __init__(self, state: Mapping[str, Any] | str) -> None:
        if isinstance(state, str):
            state = json.loads(state)
        if int(state.get("format", 0)) != STATE_FORMAT:
            raise ValueError(f"table transformer state format {state.get('format')} is not {STATE_FORMAT}")
        self.infos = [dict(c["info"]) for c in state["columns"]]
        self.columns = [info["name"] for info in self.infos]
        self.kinds = [info["kind"] for info in self.infos]
        self.transforms = [transforms.transform_from_state(info["name"], c["transform"])
                           for info, c in zip(self.infos, state["columns"])]
        layout = transforms.OutputLayout.from_json(state["layout"])
        self.slices, at = [], 0
        for name, t in zip(self.columns, self.transforms):
            sl = layout.column_slice(name)
            if sl.start != at or sl.stop - sl.start != t.width:
                raise ValueError("table transformer state is inconsistent: its layout does not match its transforms")
            self.slices.append(sl)
            at = sl.stop
        self.dim = layout.dim
        if at != self.dim:
            raise ValueError("table transformer state is inconsistent: its layout does not match its transforms")

    def numbers(self, rows: Any) -> list[np.ndarray]:
        """Encoded rows (N, D) -> each column's float64 numbers (TableTransformer.inverse before typing)."""
        a = np.asarray(rows, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != self.dim:
            raise ValueError(f"rows to decode must be (N, {self.dim}), got {tuple(a.shape)}")
        if np.isnan(a).any():
            bad = [n for n, sl in zip(self.columns, self.slices) if np.isnan(a[:, sl]).any()]
            raise ValueError(f"{int(np.isnan(a).any(1).sum()):,} rows to decode hold NaN (columns {', '.join(bad)}): "
                             f"the generator diverged")
        return [t.inverse(a[:, sl]) for t, sl in zip(self.transforms, self.slices)]

    def values(self, rows: Any) -> dict[str, list[Any]]:
        """Encoded rows (N, D) -> {column: N JSON-ready values} (see the module docstring)."""
        return {info["name"]: _values(info, x) for info, x in zip(self.infos, self.numbers(rows))}


def decode_rows(state: Mapping[str, Any] | str, rows: Any) -> dict[str, list[Any]]:
    """{column: values} of encoded rows (N, D), equal to TableTransformer.from_state(state).inverse(rows)."""
    return RowDecoder(state).values(rows)


def _values(info: Mapping[str, Any], x: np.ndarray) -> list[Any]:
    """One column's numbers -> its values, as data/table.py's _from_numbers types them."""
    kind = info["kind"]
    if kind in ("categorical", "boolean"):
        cats = list(info.get("categories") or [])
        codes = np.clip(np.rint(np.nan_to_num(x, nan=0.0)), 0, len(cats) - 1).astype(np.int64)
        if kind == "boolean" and None not in cats:
            return [bool(cats[c]) for c in codes.tolist()]
        return [cats[c] for c in codes.tolist()]
    if kind == "datetime":
        unit = int(info.get("unit_ns", 1))
        with np.errstate(over="ignore", invalid="ignore"):
            ns = np.clip(x * 1e9 / unit, -INT64_SAFE / unit, INT64_SAFE / unit)
        return iso_datetimes(np.rint(ns).astype(np.int64) * unit, info.get("tz") or "")
    bounds = info.get("bounds")
    lo, hi = (bounds[0], bounds[1]) if bounds is not None else (None, None)
    if kind == "integer":
        lo = -INT64_SAFE if lo is None else math.ceil(lo)
        hi = INT64_SAFE if hi is None else math.floor(hi)
        return np.clip(np.rint(x), lo, hi).astype(np.int64).tolist()
    if lo is not None or hi is not None:
        x = np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return [v if math.isfinite(v) else None for v in x.astype(np.float64).tolist()]


def _zone(tz: str):
    """A tzinfo for a column's time zone name: "UTC", "UTC+01:00" (a fixed offset) or an IANA name."""
    if tz in ("UTC", "utc", "Z", "GMT"):
        return _dt.timezone.utc
    fixed = _FIXED.fullmatch(tz)
    if fixed:
        sign, h, m, s = fixed.groups()
        delta = _dt.timedelta(hours=int(h), minutes=int(m), seconds=int(s or 0))
        return _dt.timezone(-delta if sign == "-" else delta)
    from zoneinfo import ZoneInfo  # the standard library; the IANA database of the system (or tzdata)

    return ZoneInfo(tz)


def _offset(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(int(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def iso_datetimes(ns: np.ndarray, tz: str = "") -> list[str]:
    """int64 nanoseconds since the epoch (UTC) -> ISO 8601 strings as pandas' Timestamp.isoformat writes them,
    in the time zone `tz` ("" for naive datetimes: no offset)."""
    ns = np.asarray(ns, dtype=np.int64)
    offsets = np.zeros(len(ns), dtype=np.int64)
    if tz:
        zone = _zone(tz)
        seconds = np.floor_divide(ns, 10**9).tolist()
        offsets = np.array([int(_dt.datetime.fromtimestamp(s, zone).utcoffset().total_seconds()) for s in seconds],
                           dtype=np.int64)
    local = ns + offsets * 10**9
    whole = np.floor_divide(local, 10**9)
    frac = (local - whole * 10**9).tolist()
    base = np.datetime_as_string(whole.astype("datetime64[s]"), unit="s").tolist()
    out = []
    for b, f, off in zip(base, frac, offsets.tolist()):
        if f:
            b += f".{f // 1000:06d}" if f % 1000 == 0 else f".{f:09d}"
        out.append(b + (_offset(off) if tz else ""))
    return out


def encode_rows(values: Mapping[str, list[Any]], kinds: list[str], fmt: str, *, seed: int) -> bytes:
    """The response body of decoded rows: "json" {"seed", "n", "columns", "kinds", "rows": [[...], ...]} or
    "csv" (a header, then one line per row; None as an empty field; booleans True/False as pandas writes them)."""
    columns = list(values)
    rows = [list(r) for r in zip(*values.values())] if columns else []
    if fmt == "json":
        return json.dumps({"seed": seed, "n": len(rows), "columns": columns, "kinds": list(kinds),
                           "rows": rows}, allow_nan=False).encode()
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in r] for r in rows])
        return buf.getvalue().encode()
    raise ValueError(f"table rows are written as {' or '.join(FORMATS)}, not {fmt!r}")
