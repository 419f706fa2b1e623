"""Gaussian-kernel maximum mean discrepancy (Gretton et al., 2012), multi-bandwidth.

MMD²(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y) with k(a, b) = sum over bandwidths s of
exp(-||a - b||² / (2 s²)), estimated with the unbiased U-statistic (its expectation is exactly 0 when
x and y come from one distribution, so single values can be slightly negative).

Default bandwidths: s = r * (median pairwise distance of the pooled sample) for r in 0.25, 0.5, 1, 2, 4
(the median heuristic, widened to several scales so a single poorly chosen width cannot hide a
difference). Works on any (N, D) numbers: features, or raw table rows (standardise columns first when
their units differ, since one distance mixes all of them).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from .base import PairedSetMetric, as_float64

RELATIVE_BANDWIDTHS = (0.25, 0.5, 1.0, 2.0, 4.0)
MEDIAN_POINTS = 2000   # pooled rows used for the median heuristic (a seeded random subset beyond this)
BATCH = 2048           # rows per kernel block


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    return ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T).clamp_min(0.0)


def median_pairwise_distance(x: Tensor, y: Tensor, max_points: int = MEDIAN_POINTS, seed: int = 0) -> float:
    """Median Euclidean distance between distinct rows of the pooled sample (x; y)."""
    pooled = torch.cat([x, y])
    if len(pooled) > max_points:
        gen = torch.Generator().manual_seed(seed)
        pooled = pooled[torch.randperm(len(pooled), generator=gen)[:max_points]]
    i, j = torch.triu_indices(len(pooled), len(pooled), offset=1)
    return float(torch.quantile(_sq_dists(pooled, pooled)[i, j].sqrt(), 0.5))   # mean of the middle two


def _kernel_sum(a: Tensor, b: Tensor, inv_two_s2: Tensor, same: bool) -> Tensor:
    """Sum of the multi-bandwidth Gaussian kernel over all pairs (a_i, b_j); i != j when same."""
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, len(a), BATCH):
        d2 = _sq_dists(a[start:start + BATCH], b)                          # (B, M)
        k = torch.exp(-d2[None] * inv_two_s2[:, None, None]).sum(0)        # (B, M)
        if same:
            rows = torch.arange(k.shape[0])
            k[rows, rows + start] = 0.0
        total += k.sum()
    return total


def mmd(x: Any, y: Any, bandwidths: Sequence[float] | None = None,
        relative: Sequence[float] = RELATIVE_BANDWIDTHS, seed: int = 0) -> float:
    """Unbiased multi-bandwidth Gaussian MMD² between x (N, D) and y (M, D), float64.

    bandwidths: absolute kernel widths s; None uses `relative` times the median pairwise distance.
    seed only picks the rows for the median when there are more than MEDIAN_POINTS.
    """
    x = as_float64(x, "x", min_rows=2)
    y = as_float64(y, "y", min_rows=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y differ in the number of columns ({x.shape[1]} vs {y.shape[1]})")
    if bandwidths is None:
        median = median_pairwise_distance(x, y, seed=seed)
        if median <= 0:
            raise ValueError("the median pairwise distance is 0 (mostly duplicate rows); pass "
                             "bandwidths=... explicitly")
        bandwidths = [r * median for r in relative]
    widths = torch.as_tensor(list(bandwidths), dtype=torch.float64)
    if widths.numel() == 0 or not bool((widths > 0).all()):
        raise ValueError(f"bandwidths must be positive numbers, got {list(bandwidths)}")
    inv = 1.0 / (2.0 * widths**2)
    n, m = len(x), len(y)
    k_xx = _kernel_sum(x, x, inv, same=True) / (n * (n - 1))
    k_yy = _kernel_sum(y, y, inv, same=True) / (m * (m - 1))
    k_xy = _kernel_sum(x, y, inv, same=False) / (n * m)
    return float(k_xx + k_yy - 2.0 * k_xy)


def _mmd_dict(real: Any, fake: Any, **options: Any) -> dict[str, float]:
    return {"mmd2": mmd(real, fake, **options)}


class MMD(PairedSetMetric):
    """mmd over all rows fed with update(real=..., fake=...) as {"mmd2": value}. Lower is better."""

    name = "mmd"
    higher_is_better = False
    function = _mmd_dict
