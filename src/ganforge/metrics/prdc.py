"""Precision / recall (Kynkäänniemi et al., 2019) and density / coverage (Naeem et al., 2020).

Both estimate a set's manifold as the union of balls around its points, each ball reaching that
point's k-th nearest neighbour in its own set (the point itself excluded).

- precision: fraction of fake points inside the real manifold; recall: real points inside the fake one.
- density: (1 / kM) sum over fake points of the number of real balls containing them (about 1 when
  the sets match, can exceed 1); coverage: fraction of real balls that contain at least one fake point.

Distances are Euclidean, float64, from `torch.cdist` in row batches (never an N x M matrix at once).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import PairedSetMetric, as_float64

BATCH = 1024   # rows per cdist block: BATCH x N float64 distances in memory at a time


def _pair(real: Any, fake: Any, k: int) -> tuple[Tensor, Tensor]:
    x = as_float64(real, "real")
    y = as_float64(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and fake differ in dimension ({x.shape[1]} vs {y.shape[1]}); "
                         f"extract both with the same network")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return x, y


def knn_radii(x: Tensor, k: int, batch: int = BATCH) -> Tensor:
    """(N,) distance from each row of x (N, D) to its k-th nearest other row."""
    n = x.shape[0]
    if k >= n:
        raise ValueError(f"k={k} nearest neighbours need more than {k} points in a set, got {n}; "
                         f"lower k or pass more samples")
    radii = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, batch):
        d = torch.cdist(x[start:start + batch], x)                   # (B, N)
        rows = torch.arange(d.shape[0])
        d[rows, rows + start] = float("inf")                         # exclude the point itself
        radii[start:start + batch] = d.topk(k, dim=1, largest=False).values[:, -1]
    return radii


def _balls_containing(query: Tensor, centres: Tensor, radii: Tensor, batch: int = BATCH) -> Tensor:
    """(Q,) number of balls (centres[i], radii[i]) that contain each query point."""
    counts = torch.empty(query.shape[0], dtype=torch.int64)
    for start in range(0, query.shape[0], batch):
        d = torch.cdist(query[start:start + batch], centres)          # (B, N)
        counts[start:start + batch] = (d <= radii[None, :]).sum(1)
    return counts


def _nearest_distance(query: Tensor, points: Tensor, batch: int = BATCH) -> Tensor:
    """(Q,) distance from each query row to its nearest row of points."""
    out = torch.empty(query.shape[0], dtype=torch.float64)
    for start in range(0, query.shape[0], batch):
        out[start:start + batch] = torch.cdist(query[start:start + batch], points).min(1).values
    return out


def precision_recall(real: Any, fake: Any, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) with k-NN radius manifolds."""
    x, y = _pair(real, fake, k)
    in_real = _balls_containing(y, x, knn_radii(x, k)) > 0           # fake inside the real manifold
    in_fake = _balls_containing(x, y, knn_radii(y, k)) > 0           # real inside the fake manifold
    return {"precision": float(in_real.double().mean()), "recall": float(in_fake.double().mean())}


def density_coverage(real: Any, fake: Any, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al., 2020) from k-NN balls around the real points only."""
    x, y = _pair(real, fake, k)
    radii = knn_radii(x, k)
    density = _balls_containing(y, x, radii).sum().double() / (k * y.shape[0])
    coverage = (_nearest_distance(x, y) <= radii).double().mean()
    return {"density": float(density), "coverage": float(coverage)}


class PrecisionRecall(PairedSetMetric):
    """precision_recall over all features fed with update(real=..., fake=...). Higher is better."""

    name = "precision_recall"
    higher_is_better = True
    function = precision_recall


class DensityCoverage(PairedSetMetric):
    """density_coverage over all features fed with update(real=..., fake=...). Higher is better."""

    name = "density_coverage"
    higher_is_better = True
    function = density_coverage
