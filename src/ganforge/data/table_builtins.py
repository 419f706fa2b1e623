"""The built-in tables: `--data builtin:eprime` (physics events made here) and real tables that ship with
scikit-learn (no download).

Each loader returns (Table, transforms): the table, typed as `read_table` types a file (its label column
marked for machine-learning efficacy), and the per-column transforms it should be encoded with unless the
run says otherwise (`data.transforms` entries replace them column by column).

builtin:eprime         inclusive e p -> e' X events at a 10.6 GeV beam (data/eprime.py): the scattered
                       electron's momentum (px, py, pz) in GeV, as FAT-GAN learns it. pz is encoded by
                       FAT-GAN's T(pz) = log(E_b - pz) (log_distance to the beam energy), so a decoded pz
                       can never reach E_b; px and py are standardised. --rows sets the number of events
                       (default 100,000) and --data-seed their seed.
builtin:eprime-elastic the same with the elastic peak, e p -> e p (W = M), in its share of the cross section
                       (9.1% of the events): a ridge up to E' = 10.07 GeV, near the beam energy
builtin:wine           scikit-learn's wine recognition set: 178 rows, 13 continuous measurements, label
                       `target` (3 cultivars, categorical)
builtin:breast-cancer  scikit-learn's Wisconsin diagnostic set: 569 rows, 30 continuous features, label
                       `target` (malignant / benign)
builtin:diabetes       scikit-learn's diabetes set: 442 rows, 10 baseline variables (age, sex, bmi, ...;
                       as scikit-learn scales them), label `target` (disease progression after a year,
                       continuous)
builtin:vega-cars      the vega_datasets `cars` table (1970-82 car models, from the StatLib library): 406
                       rows, 392 once the 14 with a missing mileage or horsepower are dropped (reported);
                       continuous, integer and datetime (Year) columns, label `Origin` (USA, Europe, Japan);
                       the model `Name` is left out (an identifier, one value per row)
builtin:seattle-weather  the vega_datasets `seattle-weather` table: 1,461 days of 2012-15 (date, precipitation,
                       temp_max, temp_min, wind), label `weather` (sun, fog, rain, drizzle, snow; imbalanced)
The vega tables are read from the files the `vega_datasets` package ships (no download).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .eprime import DEFAULT_BEAM_ENERGY, eprime_events
from .table import Table

EPRIME_ROWS = 100_000
MOMENTA = ("px", "py", "pz")


def eprime_table(rows: int = 0, seed: int = 0, elastic: bool = False) -> tuple[Table, dict[str, Any]]:
    import pandas as pd

    n = rows or EPRIME_ROWS
    events = eprime_events(n, seed=seed, elastic=elastic)
    df = pd.DataFrame({k: events[k] for k in MOMENTA})
    e_b = DEFAULT_BEAM_ENERGY
    # physical bounds: |p_i| <= E' <= E_b; decoded values are clamped into them
    columns = {k: {"type": "continuous", "bounds": [-e_b, e_b]} for k in MOMENTA}
    name = "eprime-elastic" if elastic else "eprime"
    table = Table.from_pandas(df, columns, source=f"builtin:{name} ({n} events, seed {seed}, E_b {e_b:g} GeV)")
    transforms = {"pz": {"name": "log_distance", "bound": e_b}}
    return table, transforms


def _sklearn_table(loader_name: str, label_kind: str) -> Callable[..., tuple[Table, dict[str, Any]]]:
    def load(rows: int = 0, seed: int = 0) -> tuple[Table, dict[str, Any]]:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
        df = bunch.frame.copy()
        columns: dict[str, Any] = {"target": {"type": label_kind, "label": True}}
        if rows:
            if rows > len(df):
                raise ValueError(f"builtin:{loader_name[5:].replace('_', '-')} has {len(df)} rows; --rows {rows} asks "
                                 f"for more (drop --rows, or give at most {len(df)})")
            df = df.sample(n=rows, random_state=seed).reset_index(drop=True)
        table = Table.from_pandas(df, columns, source=f"builtin:{loader_name[5:].replace('_', '-')} (scikit-learn)")
        return table, {}

    return load


def _vega_table(name: str, file: str, columns: dict[str, Any]) -> Callable[..., tuple[Table, dict[str, Any]]]:
    def load(rows: int = 0, seed: int = 0) -> tuple[Table, dict[str, Any]]:
        import importlib.resources

        import pandas as pd

        try:
            path = importlib.resources.files("vega_datasets") / "_data" / file
        except ModuleNotFoundError:
            raise ValueError(f"builtin:{name} is read from the vega_datasets package, which is not installed: "
                             "pip install vega_datasets") from None
        with path.open("rb") as f:
            df = pd.read_json(f) if file.endswith(".json") else pd.read_csv(f)
        if rows:
            if rows > len(df):
                raise ValueError(f"builtin:{name} has {len(df)} rows; --rows {rows} asks for more (drop --rows, or "
                                 f"give at most {len(df)})")
            df = df.sample(n=rows, random_state=seed).reset_index(drop=True)
        return Table.from_pandas(df, columns, source=f"builtin:{name} (vega_datasets)"), {}

    return load


TABLE_BUILTINS: dict[str, Callable[..., tuple[Table, dict[str, Any]]]] = {
    "eprime": eprime_table,
    "eprime-elastic": lambda rows=0, seed=0: eprime_table(rows, seed, elastic=True),
    "wine": _sklearn_table("load_wine", "categorical"),
    "breast-cancer": _sklearn_table("load_breast_cancer", "categorical"),
    "diabetes": _sklearn_table("load_diabetes", "continuous"),
    "vega-cars": _vega_table("vega-cars", "cars.json", {"Name": {"type": "ignore"},
                                                        "Origin": {"type": "categorical", "label": True}}),
    "seattle-weather": _vega_table("seattle-weather", "seattle-weather.csv",
                                   {"weather": {"type": "categorical", "label": True}}),
}
LABELS = {"vega-cars": "Origin", "seattle-weather": "weather"}  # the others': target


def is_table_builtin(source: str) -> bool:
    return source.startswith("builtin:") and source.split(":", 1)[1] in TABLE_BUILTINS


def load_table_builtin(name: str, rows: int = 0, seed: int = 0) -> tuple[Table, dict[str, Any]]:
    """(Table, default transforms) of builtin NAME (without 'builtin:')."""
    if name not in TABLE_BUILTINS:
        raise ValueError(f"unknown built-in table '{name}'; choose one of: "
                         + ", ".join(f"builtin:{n}" for n in TABLE_BUILTINS))
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 0:
        raise ValueError(f"--rows must be a whole number >= 0 (0: the built-in's default), got {rows!r}")
    return TABLE_BUILTINS[name](rows=int(rows), seed=int(seed))
