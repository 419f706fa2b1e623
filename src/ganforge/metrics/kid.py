"""Kernel Inception Distance (Bińkowski et al., 2018): unbiased MMD² with a polynomial kernel.

k(x, y) = (gamma x·y + coef0)^degree, by default (x·y / d + 1)^3. The unbiased estimator drops the
k(x_i, x_i) terms, so its expectation is exactly 0 when real and fake come from one distribution (it can
be negative for a single subset). The paper averages it over random subsets and reports mean and std.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import PairedSetMetric, as_float64


def polynomial_kernel(x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> Tensor:
    """(gamma x·y + coef0)^degree for (N, D) and (M, D) -> (N, M); gamma defaults to 1 / D."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    # one GEMM writes gamma x·y + coef0, the power is taken in place: no temporaries of the (N, M) size
    # (twice as fast as gamma * (x @ y.T) + coef0 at N = M = 1000, the KID subset size)
    offset = torch.full((), coef0, dtype=x.dtype, device=x.device)
    return torch.addmm(offset, x, y.T, alpha=gamma).pow_(degree)


def polynomial_mmd2(x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None,
                    coef0: float = 1.0, unbiased: bool = True) -> float:
    """MMD² between samples x (m, D) and y (n, D) with the polynomial kernel, float64.

    unbiased=True: the U-statistic (Gretton et al., 2012, eq. 3); False: the V-statistic (keeps the
    diagonals, biased upwards by O(1/m)).
    """
    x = as_float64(x, "x", min_rows=2)
    y = as_float64(y, "y", min_rows=2)
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
    m, n = x.shape[0], y.shape[0]
    if not unbiased:
        return float(k_xx.mean() + k_yy.mean() - 2 * k_xy.mean())
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


def kid(real_feats: Any, fake_feats: Any, n_subsets: int = 100, subset_size: int = 1000,
        degree: int = 3, gamma: float | None = None, coef0: float = 1.0, seed: int = 0) -> dict[str, float]:
    """KID: unbiased polynomial-kernel MMD² averaged over `n_subsets` random subsets.

    Each subset draws `subset_size` real and fake rows without replacement; subset_size is clipped to
    the smaller set (the value used is returned as "subset_size"). Returns {"mean", "std",
    "subset_size"}; std is over subsets (0 for one subset). Deterministic for a given seed.
    """
    real = as_float64(real_feats, "real_feats", min_rows=2)
    fake = as_float64(fake_feats, "fake_feats", min_rows=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in dimension ({real.shape[1]} vs "
                         f"{fake.shape[1]}); extract both with the same network")
    if n_subsets < 1 or subset_size < 2:
        raise ValueError(f"kid needs n_subsets >= 1 and subset_size >= 2, got {n_subsets} and {subset_size}")
    m = min(subset_size, real.shape[0], fake.shape[0])
    gen = torch.Generator().manual_seed(seed)
    values = torch.empty(n_subsets, dtype=torch.float64)
    for i in range(n_subsets):
        real_idx = torch.randperm(real.shape[0], generator=gen)[:m]
        fake_idx = torch.randperm(fake.shape[0], generator=gen)[:m]
        values[i] = polynomial_mmd2(real[real_idx], fake[fake_idx], degree, gamma, coef0)
    std = float(values.std()) if n_subsets > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "subset_size": float(m)}


class KID(PairedSetMetric):
    """KID over all features fed with update(real=..., fake=...); options as in `kid`. Lower is better."""

    name = "kid"
    higher_is_better = False
    function = kid
