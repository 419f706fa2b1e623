"""Fréchet distance between Gaussians fitted to features (FID; Heusel et al., 2017).

    d² = ||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

S1 S2 is not symmetric, so the classic route takes a general matrix square root (a Schur
decomposition, slow and prone to tiny imaginary parts). We never form it: S1 S2 is similar to a
symmetric PSD matrix, so tr((S1 S2)^(1/2)) is the sum of square roots of that matrix's eigenvalues
(`eigvalsh`). With S1 = L L^T (Cholesky; or S2, whichever is positive definite) the symmetric partner
is L^T S2 L; when neither is (fewer samples than dimensions) it is S1^(1/2) S2 S1^(1/2), with S1^(1/2)
from `eigh`. No general matrix square root, no complex numbers.
Eigenvalues within rounding of zero (including tiny negative ones) count as 0. Everything is float64.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

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
    """Shape and symmetry check in O(d²): ||(S - S^T) v|| for a fixed random v, relative to ||S||_F."""
    if sigma.shape != (d, d):
        raise ValueError(f"{name} must be ({d}, {d}) to match the mean, got {tuple(sigma.shape)}")
    v = torch.randn(d, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    asym = float((sigma @ v - sigma.T @ v).norm())
    if asym > 1e-6 * float(sigma.norm()):
        raise ValueError(f"{name} is not symmetric (||(S - S^T) v|| = {asym:.3g}); pass a covariance "
                         f"matrix, e.g. from feature_stats(feats)")
    return sigma   # rounding-level asymmetry is harmless: only one triangle of each product is used


# Threads for the d x d linear algebra below. Measured at d=2048 on the shared 2-core machines: the
# tridiagonal reduction in eigvalsh (memory-bound, one thread barrier per column) took 10-50 s with 2
# busy-waiting OpenMP threads on a loaded machine and 1.2 s on one; the blocked products were 1x-3x slower
# on 2 threads there and at most 2x faster on 2 idle cores. None keeps torch.get_num_threads().
LINALG_THREADS: int | None = 1
_BLOCK = 256   # block size of the triangular products below


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _congruence_upper(lower: Tensor, s: Tensor) -> Tensor:
    """Upper triangle of L^T S L for lower-triangular L and symmetric S: ~1.3 n³ flops, not 4 n³.

    With S = U + U^T (U: upper triangle, half diagonal), L^T S L = N + N^T where N = (L^T U) L; the
    blocks below skip the zero blocks of the triangular factors.
    """
    n = s.shape[0]
    blocks = [(i, min(i + _BLOCK, n)) for i in range(0, n, _BLOCK)]
    u = s.triu()
    u.diagonal().mul_(0.5)
    upper_l = lower.T
    p = torch.zeros_like(s)                     # P = L^T U is upper triangular: blocks j >= i only
    for i0, i1 in blocks:
        for j0, j1 in blocks[i0 // _BLOCK:]:
            p[i0:i1, j0:j1] = upper_l[i0:i1, i0:j1] @ u[i0:j1, j0:j1]
    q = torch.empty_like(s)                     # N = P L; P's row block i and L's column block j
    for i0, i1 in blocks:                       # overlap only from row max(i0, j0) on
        for j0, j1 in blocks:
            k0 = max(i0, j0)
            q[i0:i1, j0:j1] = p[i0:i1, k0:] @ lower[k0:, j0:j1]
    out = torch.zeros_like(s)
    for i0, i1 in blocks:
        for j0, j1 in blocks[i0 // _BLOCK:]:
            out[i0:i1, j0:j1] = q[i0:i1, j0:j1] + q[j0:j1, i0:i1].T
    return out


def trace_sqrt_product(sigma1: Tensor, sigma2: Tensor) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2 via eigenvalues of a similar symmetric matrix."""
    with _torch_threads(LINALG_THREADS):
        for a, b in ((sigma1, sigma2), (sigma2, sigma1)):   # tr sqrt(S1 S2) = tr sqrt(S2 S1)
            chol, info = torch.linalg.cholesky_ex(a)
            if int(info) == 0:
                # L^T S_b L = L^{-1} (S_a S_b) L has the spectrum of S_a S_b. Transposed, its filled
                # triangle is the lower one and the memory column-major, as LAPACK wants (no copy).
                sym = _congruence_upper(chol, b).T
                break
        else:                                               # both singular: symmetric square root
            w, v = torch.linalg.eigh(sigma1)
            root = (v * w.clamp_min(0).sqrt()) @ v.T
            sym = root @ sigma2 @ root
        eig = torch.linalg.eigvalsh(sym, UPLO="L")
    # Eigenvalues within rounding of 0 (|error| ~ d * eps * max) are 0: their square roots would add
    # sqrt(eps)-sized noise for singular covariances, and negative ones have no real root.
    tol = eig.shape[0] * torch.finfo(torch.float64).eps * float(eig.abs().max())
    return float(torch.where(eig > tol, eig, torch.zeros_like(eig)).sqrt().sum())


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
