"""Fréchet distance between Gaussians fitted to features (FID; Heusel et al., 2017).

    d² = ||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

S1 S2 is not symmetric, so the classic route takes a general matrix square root (a Schur
decomposition, slow and prone to tiny imaginary parts). We never form it: S1 S2 is similar to a
symmetric PSD matrix, so tr((S1 S2)^(1/2)) is the sum of square roots of that matrix's eigenvalues
(`eigvalsh`). With S1 = L L^T (Cholesky) the symmetric partner is L^T S2 L; when neither covariance is
positive definite (fewer samples than dimensions) it is S1^(1/2) S2 S1^(1/2), with S1^(1/2) from `eigh`.
Rounding can leave eigenvalues at -1e-13; they are clamped to 0. Everything is float64.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from .base import Metric, as_float64


def feature_stats(feats: Any) -> tuple[Tensor, Tensor]:
    """(N, D) features -> (mean (D,), unbiased covariance (D, D)), float64."""
    x = as_float64(feats, "feats", min_rows=2)
    mu = x.mean(0)
    xc = x - mu
    sigma = xc.T @ xc / (x.shape[0] - 1)
    return mu, sigma


def _check_cov(sigma: Tensor, name: str, d: int) -> Tensor:
    if sigma.shape != (d, d):
        raise ValueError(f"{name} must be ({d}, {d}) to match the mean, got {tuple(sigma.shape)}")
    scale = float(sigma.abs().max()) or 1.0
    asym = float((sigma - sigma.T).abs().max())
    if asym > 1e-6 * scale:
        raise ValueError(f"{name} is not symmetric (max |S - S^T| = {asym:.3g}); pass a covariance "
                         f"matrix, e.g. from feature_stats(feats)")
    return (sigma + sigma.T) / 2   # remove rounding-level asymmetry (e.g. from float32 sources)


def trace_sqrt_product(sigma1: Tensor, sigma2: Tensor) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2 via eigenvalues of a similar symmetric matrix."""
    for a, b in ((sigma1, sigma2), (sigma2, sigma1)):   # tr sqrt(S1 S2) = tr sqrt(S2 S1)
        chol, info = torch.linalg.cholesky_ex(a)
        if int(info) == 0:
            sym = chol.T @ b @ chol                     # = L^T S_b L, similar to S_a S_b
            break
    else:                                               # both singular: symmetric square root
        w, v = torch.linalg.eigh(sigma1)
        root = (v * w.clamp_min(0).sqrt()) @ v.T
        sym = root @ sigma2 @ root
    eig = torch.linalg.eigvalsh((sym + sym.T) / 2)
    return float(eig.clamp_min(0).sqrt().sum())


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Dowson & Landau, 1982), float64."""
    mu1 = as_float64(mu1, "mu1", ndim=1)
    mu2 = as_float64(mu2, "mu2", ndim=1)
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 differ in dimension: {tuple(mu1.shape)} vs {tuple(mu2.shape)}; "
                         f"both statistics must come from the same feature extractor")
    d = mu1.shape[0]
    s1 = _check_cov(as_float64(sigma1, "sigma1", ndim=2), "sigma1", d)
    s2 = _check_cov(as_float64(sigma2, "sigma2", ndim=2), "sigma2", d)
    mean_term = float((mu1 - mu2).square().sum())
    value = mean_term + float(s1.trace()) + float(s2.trace()) - 2.0 * trace_sqrt_product(s1, s2)
    # A squared distance: negatives are rounding (~1e-12 of the traces) for (near-)identical inputs.
    return max(value, 0.0)


def _warn_if_singular(n: int, d: int, which: str) -> None:
    if n <= d:
        warnings.warn(f"FID: {n} {which} samples for {d}-dimensional features, so the covariance is "
                      f"singular (rank <= {n - 1}) and FID is biased upwards; use more than {d} samples "
                      f"(10,000+ is standard for Inception features)", RuntimeWarning, stacklevel=3)


def fid(real_feats: Any, fake_feats: Any) -> float:
    """FID between two (N, D) feature sets (Heusel et al., 2017); warns when N <= D."""
    real = as_float64(real_feats, "real_feats", min_rows=2)
    fake = as_float64(fake_feats, "fake_feats", min_rows=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in dimension ({real.shape[1]} vs "
                         f"{fake.shape[1]}); extract both with the same network")
    _warn_if_singular(real.shape[0], real.shape[1], "real")
    _warn_if_singular(fake.shape[0], fake.shape[1], "fake")
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


class _Moments:
    """Running count, sum and sum of outer products in float64, shifted by the first batch's mean.

    The shift keeps sum(x x^T) - n mu mu^T from cancelling catastrophically when |mean| >> std.
    """

    def __init__(self) -> None:
        self.n = 0
        self.shift: Tensor | None = None
        self.sum: Tensor | None = None
        self.outer: Tensor | None = None

    def add(self, x: Tensor) -> None:
        if self.shift is None:
            self.shift = x.mean(0)
            self.sum = torch.zeros_like(self.shift)
            self.outer = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
        elif x.shape[1] != self.shift.shape[0]:
            raise ValueError(f"feature dimension changed from {self.shift.shape[0]} to {x.shape[1]} "
                             f"between updates; call reset() before switching extractors")
        xs = x - self.shift
        self.n += x.shape[0]
        self.sum += xs.sum(0)
        self.outer += xs.T @ xs

    def stats(self, which: str) -> tuple[Tensor, Tensor]:
        if self.n < 2:
            raise RuntimeError(f"FID needs at least 2 {which} samples, got {self.n}; "
                               f"call update({which}=features) first")
        mean_shifted = self.sum / self.n
        sigma = (self.outer - self.n * torch.outer(mean_shifted, mean_shifted)) / (self.n - 1)
        return self.shift + mean_shifted, (sigma + sigma.T) / 2


class FID(Metric):
    """Streaming FID: feed (B, D) feature batches with update(real=..., fake=...); lower is better.

    `real_stats=(mu, sigma, n)` reuses precomputed reference statistics (then update(real=...) is refused).
    """

    name = "fid"
    higher_is_better = False

    def __init__(self, real_stats: tuple[Any, Any, int] | None = None) -> None:
        self._fixed_real = None
        if real_stats is not None:
            mu, sigma, n = real_stats
            self._fixed_real = (as_float64(mu, "mu", ndim=1), as_float64(sigma, "sigma", ndim=2), int(n))
        self.reset()

    def reset(self) -> None:
        self._real = _Moments()
        self._fake = _Moments()

    def update(self, real: Any = None, fake: Any = None) -> None:
        if real is None and fake is None:
            raise ValueError("FID.update needs real=... and/or fake=... feature batches of shape (B, D)")
        if real is not None:
            if self._fixed_real is not None:
                raise ValueError("this FID was built with real_stats; give only fake=... batches "
                                 "(or build FID() without real_stats to accumulate real features)")
            self._real.add(as_float64(real, "real"))
        if fake is not None:
            self._fake.add(as_float64(fake, "fake"))

    def counts(self) -> tuple[int, int]:
        n_real = self._fixed_real[2] if self._fixed_real is not None else self._real.n
        return n_real, self._fake.n

    def real_stats(self) -> tuple[Tensor, Tensor]:
        return self._fixed_real[:2] if self._fixed_real is not None else self._real.stats("real")

    def fake_stats(self) -> tuple[Tensor, Tensor]:
        return self._fake.stats("fake")

    def compute(self) -> dict[str, float]:
        mu1, s1 = self.real_stats()
        mu2, s2 = self.fake_stats()
        n_real, n_fake = self.counts()
        _warn_if_singular(n_real, mu1.shape[0], "real")
        _warn_if_singular(n_fake, mu2.shape[0], "fake")
        value = frechet_distance(mu1, s1, mu2, s2)
        if not math.isfinite(value):   # cannot happen for finite inputs; guard the contract anyway
            raise FloatingPointError("FID came out non-finite; check the features for overflow")
        return {"fid": value}
