"""Pictures of a synthetic table beside the real one: per-column histograms with the synthetic / real ratio
under each, and the two correlation matrices side by side (one PNG; matplotlib, drawn off-screen).

Numeric columns (continuous, integer, datetime as seconds) share bins fitted on the real values (1st to 99th
percentile widened by 5%, synthetic values outside land in the edge bins); categorical and boolean columns show
each category's share. The ratio panel is synthetic share / real share per bin (1 is perfect; bins with no
real value are left out). Correlations are Pearson's over the numeric columns and the categories' codes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

MAX_COLUMNS = 24  # histograms drawn at most (a table of 30 features shows its first 24 and says so)


def _numbers(table: Any, name: str, categories: list | None = None) -> np.ndarray:
    return table.numbers(name, categories)


def _histograms(real: Any, fake: Any, name: str, bins: int) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    info = real.info[name]
    if info.kind in ("categorical", "boolean"):
        cats = list(info.categories)
        r = _numbers(real, name).astype(int)
        f = _numbers(fake, name, cats).astype(int)
        k = len(cats)
        hr = np.bincount(r, minlength=k)[:k].astype(float)
        hf = np.bincount(f[(f >= 0) & (f < k)], minlength=k)[:k].astype(float)
        return hr / max(hr.sum(), 1), hf / max(hf.sum(), 1), [str(c) for c in cats]
    r, f = _numbers(real, name), _numbers(fake, name)
    lo, hi = np.percentile(r, [1, 99]) if len(r) else (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    edges = np.linspace(lo - pad, hi + pad, bins + 1)
    hr = np.histogram(np.clip(r, edges[0], edges[-1]), edges)[0].astype(float)
    hf = np.histogram(np.clip(f[np.isfinite(f)], edges[0], edges[-1]), edges)[0].astype(float)
    return hr / max(hr.sum(), 1), hf / max(hf.sum(), 1), None


def _corr(table: Any, names: list[str], categories: dict[str, list]) -> np.ndarray:
    cols = []
    for n in names:
        x = _numbers(table, n, categories.get(n))
        cols.append(np.where(np.isfinite(x), x, 0.0))
    m = np.stack(cols, 1) if cols else np.zeros((len(table), 0))
    with np.errstate(all="ignore"):
        c = np.corrcoef(m, rowvar=False) if m.shape[1] > 1 else np.ones((m.shape[1], m.shape[1]))
    return np.nan_to_num(np.atleast_2d(c), nan=0.0)


def save_table_figure(real: Any, fake: Any, path: str | Path, *, bins: int = 30, title: str = "") -> Path:
    """One PNG: histograms (real outline, synthetic filled) with the ratio below, then the real and synthetic
    correlation matrices. `real` and `fake` are Tables with the same columns (fake decoded by the run's
    transformer)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    missing = [n for n in real.names if n not in fake]
    if missing:
        raise ValueError(f"the synthetic table lacks columns {', '.join(missing)}")
    names = real.names[:MAX_COLUMNS]
    ncol = min(4, max(1, len(names)))
    nrow = math.ceil(len(names) / ncol)
    fig = plt.figure(figsize=(3.2 * ncol, 2.9 * nrow + 3.4))
    outer = fig.add_gridspec(nrow + 1, 1, height_ratios=[2.9] * nrow + [3.4], hspace=0.45)
    for i, name in enumerate(names):
        sub = outer[i // ncol].subgridspec(1, ncol, wspace=0.3)[i % ncol].subgridspec(2, 1, height_ratios=[3, 1],
                                                                                      hspace=0.05)
        ax, axr = fig.add_subplot(sub[0]), fig.add_subplot(sub[1])
        hr, hf, labels = _histograms(real, fake, name, bins)
        x = np.arange(len(hr))
        ax.bar(x, hf, width=1.0, color="#4c72b0", alpha=0.55, label="synthetic")
        ax.step(x, hr, where="mid", color="black", linewidth=1.0, label="real")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=6)
        with np.errstate(all="ignore"):
            ratio = np.where(hr > 0, hf / np.where(hr > 0, hr, 1), np.nan)
        axr.axhline(1.0, color="grey", linewidth=0.6)
        axr.plot(x, ratio, ".", color="#c44e52", markersize=3)
        axr.set_ylim(0, 2)
        axr.tick_params(labelsize=6)
        if labels is not None and len(labels) <= 12:
            axr.set_xticks(x, labels, fontsize=5, rotation=45)
        else:
            axr.set_xticks([])
        if i == 0:
            ax.legend(fontsize=6)
            axr.set_ylabel("syn / real", fontsize=6)
    cats = {n: list(real.info[n].categories) for n in real.names if real.info[n].kind in ("categorical", "boolean")}
    corr_names = real.names[:40]
    bottom = outer[nrow].subgridspec(1, 2, wspace=0.3)
    for j, (tab, what) in enumerate(((real, "real"), (fake, "synthetic"))):
        ax = fig.add_subplot(bottom[j])
        im = ax.imshow(_corr(tab, corr_names, cats), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(f"correlations, {what}", fontsize=8)
        ticks = range(len(corr_names))
        ax.set_xticks(ticks, corr_names, fontsize=5, rotation=90)
        ax.set_yticks(ticks, corr_names, fontsize=5)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    note = f" (first {MAX_COLUMNS} of {len(real.names)} columns)" if len(real.names) > MAX_COLUMNS else ""
    fig.suptitle((title or "synthetic vs real") + note, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
