"""Recipes: named, versioned settings for a (dataset, family, loss), kept as data in this folder's *.yaml.

A recipe is the set of settings that makes one family work on one dataset within a stated budget, with the
figure it reaches there and the bench that measured it. `ganforge train` picks the matching recipe when the
user names none (`--recipe NAME` chooses one, `--recipe none` turns them off) and the settings are layered
as: family defaults < recipe < --config < flags < --set (docs/architecture.md, "Recipes").

A recipe file holds:

    name: ring8-gan               # unique; the file is NAME.yaml
    version: 1                    # bumped whenever `settings` change (recorded in RUN/config.json)
    data: builtin:ring8           # builtin:NAME (builtin:fmnist-pair matches every pair), or `folder`
    images: [0, 2000]             # folders only: the image-count range [lo, hi) the recipe is for (hi null: no limit)
    family: gan
    losses: [ns, minimax]         # the --loss values it is made for (`any`: every loss)
    priority: 0                   # lower wins among matches; sets the family when the user names none
    summary: one line
    settings: {model: ..., train: ..., log: ...}     # a partial run config; data.source is implied
    command: ganforge train ...   # the README's command for it (typed as is, it selects this recipe)
    budget: 3 CPU minutes         # what the figure needs (wall clock on a 2-core CPU)
    figure: 8/8 modes, >= 80% high-quality samples   # the claim, checked by `bench`
    measured: ...                 # the last measurement, with its date (filled in from the bench's JSON)
    bench: bench/recipes.py
    check: {...}                  # what bench/recipes.py measures and the bar it must reach
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
_KEYS = {"name", "version", "data", "images", "family", "losses", "priority", "summary", "settings", "command",
         "budget", "figure", "measured", "bench", "check"}


@dataclass(frozen=True)
class Recipe:
    name: str
    version: int
    data: str                          # builtin:NAME or "folder"
    family: str
    losses: tuple[str, ...]            # ("any",) for every loss
    settings: dict[str, Any]
    summary: str = ""
    images: tuple[int, int | None] | None = None
    priority: int = 0
    command: str = ""
    budget: str = ""
    figure: str = ""
    measured: str = ""
    bench: str = ""
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """NAME@vVERSION, as RUN/config.json records it."""
        return f"{self.name}@v{self.version}"

    def matches(self, data_key: str, family: str | None, loss: str | None, n_images: int | None) -> bool:
        if data_key != self.data:
            return False
        if self.images is not None and n_images is not None:
            lo, hi = self.images
            if n_images < lo or (hi is not None and n_images >= hi):
                return False
        if family is not None and family != self.family:
            return False
        return loss is None or "any" in self.losses or loss in self.losses

    def run_settings(self, source: str | None = None) -> dict[str, Any]:
        """The run-config layer this recipe contributes: its settings, its family, and (builtins) the data."""
        out = copy.deepcopy(self.settings)
        out["family"] = self.family
        if self.data.startswith("builtin:"):
            default = self.settings.get("data", {}).get("source", self.data)
            out.setdefault("data", {})["source"] = source or default
        return out


def _parse(path: Path) -> Recipe:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"recipe {path}: not valid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ValueError(f"recipe {path.name}: expected a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"recipe {path.name}: unknown keys {sorted(unknown)}; valid: {sorted(_KEYS)}")
    for key in ("name", "version", "data", "family", "settings"):
        if key not in raw:
            raise ValueError(f"recipe {path.name}: '{key}' is missing")
    if raw["name"] != path.stem:
        raise ValueError(f"recipe {path.name}: name '{raw['name']}' must match the file name")
    losses = raw.get("losses", ["any"])
    images = raw.get("images")
    return Recipe(
        name=raw["name"], version=int(raw["version"]), data=raw["data"], family=raw["family"],
        losses=tuple([losses] if isinstance(losses, str) else losses), settings=raw["settings"] or {},
        summary=raw.get("summary", ""), images=tuple(images) if images is not None else None,
        priority=int(raw.get("priority", 0)), command=" ".join(str(raw.get("command", "")).split()),
        budget=str(raw.get("budget", "")), figure=str(raw.get("figure", "")),
        measured=str(raw.get("measured", "")), bench=str(raw.get("bench", "")), check=raw.get("check") or {},
    )


@lru_cache(maxsize=1)
def _all() -> tuple[Recipe, ...]:
    return tuple(sorted((_parse(p) for p in HERE.glob("*.yaml")), key=lambda r: (r.data, r.priority, r.name)))


def recipes() -> list[Recipe]:
    """Every recipe, grouped by dataset, best first."""
    return list(_all())


def get(name: str) -> Recipe:
    for r in _all():
        if r.name == name:
            return r
    raise ValueError(f"unknown recipe '{name}'; `ganforge recipes` lists them (or --recipe none for no recipe)")


def data_key(source: str, table: bool = False) -> str:
    """The key recipes match a --data value on: builtin:NAME without its argument, `table` for a table (the
    caller says so: `table=True`; a built-in table with a recipe of its own, builtin:eprime, keeps its name),
    else `folder`."""
    if table:
        key = source if source.startswith("builtin:") else ""
        return key if key and any(r.data == key for r in _all()) else "table"
    if source.startswith("builtin:"):
        return "builtin:" + source[len("builtin:"):].split(":", 1)[0]
    return "folder"


def select(source: str, family: str | None, loss: str | None, n_images: int | None = None,
           table: bool = False) -> Recipe | None:
    """The recipe for this data, family (None: the recipe's own) and loss (None: the recipe's own), or None.
    table: the source is a table (a .csv/.parquet file or a built-in table)."""
    key = data_key(source, table)
    found = [r for r in _all() if r.matches(key, family, loss, n_images)]
    return min(found, key=lambda r: (r.priority, r.name)) if found else None
