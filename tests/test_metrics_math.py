"""Metric math against closed forms, hand-computed values and reference implementations."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

import ganforge
from ganforge.metrics import (METRICS, FID, InceptionScore, KID, Provenance, density_coverage, feature_stats,
                              fid, frechet_distance, get_metric, inception_score, kid, mmd, mode_coverage,
                              precision_recall, sliced_wasserstein)
from ganforge.metrics.base import MetricResult
from ganforge.metrics.kid import polynomial_mmd2
from ganforge.metrics.mmd import median_pairwise_distance
from ganforge.metrics.swd import _w1_sorted, laplacian_pyramid, level_sizes, _up

scipy_linalg = pytest.importorskip("scipy.linalg")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These are many small float64 kernels: on a busy 2-core machine OpenMP's spin-waiting made them
    10-50x slower with 2 threads than with 1. Results do not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, dtype=torch.float64, generator=_gen(seed))
    return a @ a.T / d + 0.01 * torch.eye(d, dtype=torch.float64)


def _sqrtm_fid(mu1, s1, mu2, s2) -> float:
    """The classic reference: a general matrix square root of S1 S2, real part of its trace."""
    covmean = scipy_linalg.sqrtm(s1.numpy() @ s2.numpy())
    return float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2 * np.trace(covmean).real)


# ---------------------------------------------------------------- FID

def test_fid_diagonal_covariances_closed_form():
    g = _gen(0)
    mu1, mu2 = torch.randn(30, generator=g, dtype=torch.float64), torch.randn(30, generator=g, dtype=torch.float64)
    s1 = torch.rand(30, generator=g, dtype=torch.float64) + 0.1
    s2 = torch.rand(30, generator=g, dtype=torch.float64) + 0.1
    expected = float((mu1 - mu2).square().sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("rank", [40, 25])   # full rank: Cholesky path; rank 25: both singular, eigh path
def test_fid_commuting_covariances_closed_form(rank):
    d, g = 40, _gen(1)
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=g))
    a = torch.rand(d, dtype=torch.float64, generator=g) * 3
    b = torch.rand(d, dtype=torch.float64, generator=g) * 3
    a[rank:] = 0.0
    b[rank:] = 0.0
    s1, s2 = q @ torch.diag(a) @ q.T, q @ torch.diag(b) @ q.T   # same eigenvectors: S1 S2 commute
    mu = torch.zeros(d, dtype=torch.float64)
    expected = float((a + b - 2 * (a * b).sqrt()).sum())
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_scaled_covariance_is_the_gaussian_w2():
    s = _random_spd(20, 2)   # W2²(N(0, S), N(0, c² S)) = (1 - c)² tr S
    mu = torch.zeros(20, dtype=torch.float64)
    assert frechet_distance(mu, s, mu, 9 * s) == pytest.approx(4 * float(s.trace()), rel=1e-12)
    assert frechet_distance([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(4 + 1, rel=1e-14)


def test_fid_of_a_set_with_itself_is_zero_and_symmetric():
    x = torch.randn(500, 32, dtype=torch.float64, generator=_gen(3)) * 5 + 2
    y = torch.randn(400, 32, dtype=torch.float64, generator=_gen(4))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid(x, y) == pytest.approx(fid(y, x), rel=1e-10)
    mu, sigma = feature_stats(x)
    assert mu.dtype == sigma.dtype == torch.float64
    torch.testing.assert_close(sigma, torch.from_numpy(np.cov(x.numpy(), rowvar=False)))


@pytest.mark.parametrize("d", [64, 256, pytest.param(2048, marks=pytest.mark.slow)])  # 2048: sqrtm ~25 s here
def test_fid_matches_the_sqrtm_reference(d):
    from threadpoolctl import threadpool_limits   # scikit-learn's dependency; one BLAS thread each

    g = _gen(d)
    mu1 = torch.randn(d, dtype=torch.float64, generator=g)
    mu2 = mu1 + 0.1 * torch.randn(d, dtype=torch.float64, generator=g)
    s1, s2 = _random_spd(d, d + 1), _random_spd(d, d + 2)
    with threadpool_limits(limits=1):   # OpenBLAS threads crawl on a busy 2-core machine
        reference = _sqrtm_fid(mu1, s1, mu2, s2)
    value = frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(value, float)
    assert value == pytest.approx(reference, rel=1e-6)


def test_fid_with_fewer_samples_than_dimensions_warns_and_stays_real():
    x = torch.randn(30, 64, dtype=torch.float64, generator=_gen(5))
    y = torch.randn(40, 64, dtype=torch.float64, generator=_gen(6)) + 0.3
    with pytest.warns(RuntimeWarning, match="singular"):
        value = fid(x, y)
    assert isinstance(value, float) and math.isfinite(value)
    assert value == pytest.approx(_sqrtm_fid(*feature_stats(x), *feature_stats(y)), rel=1e-6)
    with pytest.warns(RuntimeWarning, match="more than 64 samples"):
        assert fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_keeps_the_thread_count_and_rejects_bad_input():
    threads = torch.get_num_threads()
    mu, s = torch.zeros(8, dtype=torch.float64), _random_spd(8, 7)
    frechet_distance(mu, s, mu, s)
    assert torch.get_num_threads() == threads
    bad = s.clone()
    bad[0, 1] += 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        frechet_distance(mu, bad, mu, s)
    with pytest.raises(ValueError, match="same feature extractor"):
        frechet_distance(mu, s, torch.zeros(7), s[:7, :7])
    with pytest.raises(ValueError, match="NaN"):
        fid(torch.full((10, 2), float("nan")), torch.zeros(10, 2))


def test_streaming_fid_equals_the_one_shot_value_even_far_from_the_origin():
    x = torch.randn(3000, 16, dtype=torch.float64, generator=_gen(8)) + 1e4   # |mean| >> std
    y = torch.randn(2000, 16, dtype=torch.float64, generator=_gen(9)) * 1.1 + 1e4
    metric = FID()
    for start in range(0, 3000, 512):
        metric.update(real=x[start:start + 512], fake=y[start:start + 512] if start < 2000 else None)
    expected = fid(x, y)
    assert metric.compute()["fid"] == pytest.approx(expected, rel=1e-9)
    mu, sigma = metric.real_stats()
    torch.testing.assert_close(sigma, feature_stats(x)[1], rtol=1e-9, atol=1e-12)
    cached = FID(real_stats=(mu, sigma, 3000))
    cached.update(fake=y.float())   # float32 features are accumulated in float64
    assert cached.compute()["fid"] == pytest.approx(fid(x, y.float()), rel=1e-9)
    result = cached.result(Provenance(extractor="toy", seed=0))
    assert (result.provenance.n_real, result.provenance.n_fake) == (3000, 2000)
    metric.reset()
    with pytest.raises(RuntimeError, match="update"):
        metric.compute()


# ---------------------------------------------------------------- KID

def test_kid_estimator_matches_the_definition_on_a_tiny_set():
    x = torch.randn(5, 3, dtype=torch.float64, generator=_gen(10))
    y = torch.randn(6, 3, dtype=torch.float64, generator=_gen(11))
    k = lambda a, b: (float(a @ b) / 3 + 1) ** 3   # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / 30
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(6)) / 30
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    out = kid(x, y, n_subsets=3, subset_size=1000)
    assert out["subset_size"] == 5   # clipped to the smaller set


def test_kid_is_unbiased_where_the_v_statistic_is_not():
    g = _gen(12)
    draws = torch.randn(1000, 2, 10, 4, dtype=torch.float64, generator=g)   # 1000 draws of 10 vs 10 points
    unbiased = torch.tensor([polynomial_mmd2(d[0], d[1]) for d in draws])
    biased = torch.tensor([polynomial_mmd2(d[0], d[1], unbiased=False) for d in draws])
    se_unbiased = float(unbiased.std()) / math.sqrt(len(draws))
    se_biased = float(biased.std()) / math.sqrt(len(draws))
    assert abs(float(unbiased.mean())) < 3.5 * se_unbiased
    assert float(biased.mean()) > 20 * se_biased


def test_kid_same_distribution_near_zero_different_clearly_positive():
    g = _gen(13)
    real = torch.randn(1500, 32, dtype=torch.float64, generator=g)
    same = torch.randn(1500, 32, dtype=torch.float64, generator=g)
    shifted = torch.randn(1500, 32, dtype=torch.float64, generator=g) + 0.5
    null = kid(real, same, n_subsets=20, subset_size=500)
    alt = kid(real, shifted, n_subsets=20, subset_size=500)
    assert abs(null["mean"]) < 2 * null["std"]
    assert alt["mean"] > 20 * alt["std"]
    assert alt["mean"] > 50 * abs(null["mean"])
    assert kid(real, shifted, n_subsets=5, subset_size=200, seed=1) == kid(real, shifted, n_subsets=5,
                                                                          subset_size=200, seed=1)


# ---------------------------------------------------------------- precision / recall / density / coverage

def test_prdc_on_a_hand_computed_1d_set():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])   # k=1 radii: 1, 1, 1, 1, 7
    fake = torch.tensor([[0.5], [20.0], [2.9]])                 # k=1 radii: 2.4, 17.1, 2.4
    pr = precision_recall(real, fake, k=1)
    assert pr["precision"] == pytest.approx(2 / 3) and pr["recall"] == pytest.approx(1.0)
    dc = density_coverage(real, fake, k=1)
    assert dc["density"] == pytest.approx(4 / 3) and dc["coverage"] == pytest.approx(4 / 5)


def _modes(n_per_mode: int, seed: int, modes=range(4)) -> torch.Tensor:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]], dtype=torch.float64)
    g = _gen(seed)
    return torch.cat([centres[m] + 0.5 * torch.randn(n_per_mode, 2, dtype=torch.float64, generator=g)
                      for m in modes])


def test_prdc_identical_far_and_half_covered_sets():
    real = _modes(250, 14)
    for k in (3, 5):
        assert precision_recall(real, real, k=k) == {"precision": 1.0, "recall": 1.0}
        dc = density_coverage(real, real, k=k)
        assert dc["coverage"] == 1.0
        # each ball holds its centre and k neighbours; abs: the k-th one sits on the boundary (rounding)
        assert dc["density"] == pytest.approx((k + 1) / k, abs=0.01)
    far = real + 1000.0
    assert precision_recall(real, far) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, far) == {"density": 0.0, "coverage": 0.0}
    half = real[:500]                                            # exactly the points of modes 0 and 1
    assert precision_recall(real, half) == {"precision": 1.0, "recall": 0.5}
    assert density_coverage(real, half)["coverage"] == 0.5


def test_prdc_on_fresh_samples():
    real = _modes(1000, 15)
    fresh = _modes(1000, 16)
    dc = density_coverage(real, fresh, k=5)
    assert dc["density"] == pytest.approx(1.0, abs=0.1)
    assert dc["coverage"] == pytest.approx(1.0, abs=0.05)
    half = _modes(2000, 17, modes=(0, 1))
    pr = precision_recall(real, half, k=3)
    assert pr["precision"] == pytest.approx(1.0, abs=0.05)
    assert pr["recall"] == pytest.approx(0.5, abs=0.05)
    assert density_coverage(real, half, k=5)["coverage"] == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="lower k"):
        precision_recall(real[:3], half, k=3)


# ---------------------------------------------------------------- SWD

def _textures(n: int, seed: int, ramp: float = 0.0, size: int = 32) -> torch.Tensor:
    """Smooth random images (upsampled noise) plus `ramp` times a fixed left-to-right intensity ramp.

    A global offset or scale would be normalised away per set; a position-dependent one is not.
    """
    base = torch.randn(n, 3, size // 4, size // 4, generator=_gen(seed))
    smooth = torch.nn.functional.interpolate(base, size=(size, size), mode="bicubic", align_corners=False)
    return smooth + ramp * torch.linspace(-1, 1, size)


def test_swd_of_identical_sets_is_exactly_zero():
    x = _textures(40, 18)
    out = sliced_wasserstein(x, x.clone(), patches_per_image=32)
    assert set(out) == {"swd_32x32", "swd_16x16", "swd_mean"}
    assert all(v == 0.0 for v in out.values())


def test_swd_is_positive_and_grows_with_the_shift():
    real = _textures(64, 19)
    values = [sliced_wasserstein(real, _textures(64, 20, ramp=t), patches_per_image=32, seed=3)["swd_mean"]
              for t in (0.0, 0.5, 1.0, 2.0)]
    assert values[0] > 0                                   # a fresh sample: only sampling noise
    assert values == sorted(values) and values[-1] > 3 * values[0]
    again = sliced_wasserstein(real, _textures(64, 20, ramp=0.5), patches_per_image=32, seed=3)
    assert again["swd_mean"] == values[1]                  # deterministic with a seed


def test_swd_pieces_pyramid_levels_and_unequal_sets():
    assert level_sizes(1024, 1024) == [(2 ** k, 2 ** k) for k in range(10, 3, -1)]
    assert level_sizes(100, 100) == [(100, 100), (50, 50), (25, 25)]
    assert level_sizes(28, 28) == [(28, 28)]
    x = torch.randn(2, 3, 37, 50, dtype=torch.float64, generator=_gen(21))
    levels = laplacian_pyramid(x)                  # collapsing the pyramid gives the image back
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = band + _up(rebuilt, tuple(band.shape[-2:]))
    torch.testing.assert_close(rebuilt, x)
    stats = pytest.importorskip("scipy.stats")
    a, b = torch.randn(1, 7, generator=_gen(22)), torch.randn(1, 11, generator=_gen(23)) + 0.5
    w1 = float(_w1_sorted(a.sort(1).values, b.sort(1).values)[0])
    assert w1 == pytest.approx(stats.wasserstein_distance(a[0].numpy(), b[0].numpy()), rel=1e-6)
    out = sliced_wasserstein(_textures(10, 24), _textures(13, 25), patches_per_image=16)
    assert out["swd_mean"] > 0 and math.isfinite(out["swd_mean"])


# ---------------------------------------------------------------- MMD

def test_mmd_matches_the_definition_and_the_median_heuristic():
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    y = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    k = lambda a, b: math.exp(-((a - b) ** 2) / 2) + math.exp(-((a - b) ** 2) / 8)   # noqa: E731  s = 1, 2
    xs, ys = x[:, 0].tolist(), y[:, 0].tolist()
    xx = sum(k(a, b) for i, a in enumerate(xs) for j, b in enumerate(xs) if i != j) / 6
    yy = sum(k(a, b) for i, a in enumerate(ys) for j, b in enumerate(ys) if i != j) / 2
    xy = sum(k(a, b) for a in xs for b in ys) / 6
    assert mmd(x, y, bandwidths=(1.0, 2.0)) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    # pooled distances 0.5, 0.5, 1, 1, 1 | 1.5, 2, 2, 2.5, 3 -> median (1 + 1.5) / 2
    assert median_pairwise_distance(x, y) == pytest.approx(1.25)


def test_mmd_same_distribution_near_zero_different_positive_and_table_rows():
    g = _gen(26)
    x = torch.randn(800, 5, dtype=torch.float64, generator=g)
    same = torch.randn(800, 5, dtype=torch.float64, generator=g)
    shifted = torch.randn(800, 5, dtype=torch.float64, generator=g) + 0.5
    null, alt = mmd(x, same), mmd(x, shifted)
    assert null == pytest.approx(0.0, abs=0.01)
    assert alt > 0.05 and alt > 20 * abs(null)
    rows = np.column_stack([np.arange(100) % 7, np.linspace(0, 1, 100)])   # raw numeric table rows
    assert mmd(rows, rows[::-1].copy()) == pytest.approx(mmd(rows, rows), rel=1e-12)
    with pytest.raises(ValueError, match=r"x\[:, None\]"):
        mmd(np.arange(10.0), np.arange(10.0))


# ---------------------------------------------------------------- Inception Score

@pytest.mark.parametrize("as_logits", [False, True])
def test_inception_score_uniform_one_hot_is_k_and_constant_is_one(as_logits):
    k, n = 10, 1000
    one_hot = torch.nn.functional.one_hot(torch.arange(n) % k, k).double()
    preds = 1000.0 * one_hot if as_logits else one_hot
    out = inception_score(preds, splits=10)
    assert out["mean"] == pytest.approx(k, rel=1e-12) and out["std"] == pytest.approx(0.0, abs=1e-9)
    constant = torch.randn(k, dtype=torch.float64, generator=_gen(27)).expand(n, k)
    assert inception_score(constant, splits=5)["mean"] == pytest.approx(1.0, rel=1e-12)


def test_inception_score_two_classes_per_sample_and_streaming():
    rows = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]], dtype=torch.float64).repeat(50, 1)
    assert inception_score(rows, splits=2)["mean"] == pytest.approx(2.0, rel=1e-12)   # exp(log 2)
    metric = InceptionScore(splits=2)
    for part in rows.split(30):
        metric.update(fake=part)
    assert metric.compute() == inception_score(rows, splits=2)
    with pytest.raises(ValueError, match="from_logits=True"):
        inception_score(rows * 3, splits=2, from_logits=False)


# ---------------------------------------------------------------- registry and provenance

def test_registry_and_provenance_round_trip():
    assert {"fid", "kid", "pr", "dc", "swd", "mmd", "is", "modes"} <= set(METRICS)
    assert get_metric("fid").metric is FID and get_metric("modes").metric is mode_coverage
    with pytest.raises(KeyError, match="valid metrics: .*fid"):
        get_metric("fdi")
    metric = KID(n_subsets=2, subset_size=50)
    metric.update(real=torch.randn(60, 4, generator=_gen(28)), fake=torch.randn(70, 4, generator=_gen(29)))
    prov = Provenance(extractor="fashion-mnist-classifier", weights_sha256="ab12", seed=0, resize="none",
                      reference="fashion-mnist:test", reference_sha256="cd34")
    result = metric.result(prov)
    assert result.provenance.ganforge_version == ganforge.__version__
    assert (result.provenance.n_real, result.provenance.n_fake) == (60, 70)
    assert MetricResult.from_json(result.to_json()) == result
    assert json.loads(result.to_json())["higher_is_better"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no stray warnings from the well-posed metrics
        assert metric.compute() == result.values
