"""Table metrics (metrics/tabular.py) against closed forms and direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganforge.data.eprime import eprime_events
from ganforge.metrics.tabular import (c2st_auc, correlation_distance, ml_efficacy, mmd_rows, table_metrics,
                                      total_variation)

KINDS = {"a": "continuous", "b": "continuous", "c": "categorical"}


def _table(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    a = rng.normal(shift, 1.0, n)
    return {"a": a, "b": 0.6 * a + rng.normal(0, 0.8, n), "c": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])}


def test_w1_and_ks_match_their_definitions():
    rng = np.random.default_rng(0)
    real = {"a": rng.normal(0, 1, 400), "b": rng.exponential(1, 400)}
    fake = {"a": rng.normal(0.3, 1.2, 400), "b": rng.exponential(1.5, 400)}
    out = table_metrics(real, fake, {"a": "continuous", "b": "continuous"}, classifier_test=False)
    for c in ("a", "b"):
        r, f = real[c], fake[c]
        # equal sizes: W1 is the mean gap between the sorted samples
        assert out[f"w1/{c}"] == pytest.approx(np.abs(np.sort(r) - np.sort(f)).mean(), rel=1e-10)
        grid = np.concatenate([r, f])
        ecdf = lambda s: np.searchsorted(np.sort(s), grid, side="right") / len(s)  # noqa: E731
        assert out[f"ks/{c}"] == pytest.approx(np.abs(ecdf(r) - ecdf(f)).max(), rel=1e-12)
        assert out[f"w1_std/{c}"] == pytest.approx(out[f"w1/{c}"] / r.std(), rel=1e-12)
    assert out["ks_mean"] == pytest.approx((out["ks/a"] + out["ks/b"]) / 2)


def test_total_variation_closed_form():
    real = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    fake = ["a"] * 2 + ["b"] * 3 + ["d"] * 5                       # (0.2, 0.3, 0, 0.5)
    assert total_variation(real, fake) == pytest.approx(0.5 * (0.3 + 0.0 + 0.2 + 0.5))
    assert total_variation(real, real[::-1]) == 0.0
    assert total_variation(["a"], ["b"]) == 1.0


def test_correlation_distance_closed_form():
    t = _table(500, 1)
    rho = np.corrcoef(t["a"], t["b"])[0, 1]
    real = np.stack([t["a"], t["b"]], 1)
    flipped = real * np.array([1.0, -1.0])                           # correlation -> -rho
    got = correlation_distance(real, flipped)
    assert got["corr_frobenius"] == pytest.approx(math.sqrt(2) * 2 * abs(rho), rel=1e-10)
    assert got["corr_similarity"] == pytest.approx(1 - abs(rho), rel=1e-10)
    assert correlation_distance(real, real[::-1]) == pytest.approx({"corr_frobenius": 0.0, "corr_similarity": 1.0})


def _gauss_mmd2(delta2, s2, d, bandwidths):
    """E MMD^2 between N(mu1, s2 I) and N(mu2, s2 I), |mu1 - mu2|^2 = delta2, kernel sum_b exp(-|.|^2/2b^2):
    x - x' ~ N(0, 2 s2 I) and x - y ~ N(mu1 - mu2, 2 s2 I), and for Z ~ N(m, t I) in d dimensions
    E exp(-|Z|^2 / (2 b^2)) = (b^2 / (b^2 + t))^(d/2) exp(-|m|^2 / (2 (b^2 + t)))."""
    total = 0.0
    for b in bandwidths:
        scale = (b * b / (b * b + 2 * s2)) ** (d / 2)
        total += 2 * scale * (1 - math.exp(-delta2 / (2 * (b * b + 2 * s2))))
    return total


def test_mmd_matches_the_gaussian_closed_form_and_is_zero_for_one_distribution():
    rng = np.random.default_rng(0)
    d, n, widths = 3, 3000, (1.0, 2.0)
    x = rng.normal(0, 1, (n, d))
    y = rng.normal(0, 1, (n, d)) + np.array([1.0, 0.0, 0.0])
    same = rng.normal(0, 1, (n, d))
    expected = _gauss_mmd2(1.0, 1.0, d, widths)
    assert expected == pytest.approx(0.1462, abs=1e-3)              # hand value of the formula
    assert mmd_rows(x, y, bandwidths=widths, max_rows=n) == pytest.approx(expected, abs=0.012)
    assert abs(mmd_rows(x, same, bandwidths=widths, max_rows=n)) < 0.004
    # through table_metrics: standardised rows, median-heuristic bandwidths
    assert abs(table_metrics(_table(800, 1), _table(800, 2), KINDS, classifier_test=False)["mmd2"]) < 0.01
    assert table_metrics(_table(800, 1), _table(800, 2, shift=1.0), KINDS, classifier_test=False)["mmd2"] > 0.05


def test_classifier_two_sample_test():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (600, 2)), rng.normal(0, 1, (600, 2))
    assert c2st_auc(a, b, seed=0) == pytest.approx(0.5, abs=0.08)
    assert c2st_auc(a, b + 10.0, seed=0) > 0.99


def test_ml_efficacy_same_distribution_matches_and_broken_labels_lose():
    def labelled(n, seed, shuffle=False):
        rng = np.random.default_rng(seed)
        a, b = rng.normal(0, 1, n), rng.normal(0, 1, n)
        y = np.where(a + b > 0, "pos", "neg")
        r = 2 * a - b + rng.normal(0, 0.1, n)
        if shuffle:
            y, r = rng.permutation(y), rng.permutation(r)
        return {"a": a, "b": b, "y": y, "r": r, "g": rng.choice(["u", "v"], n)}

    real, same, broken = labelled(800, 0), labelled(800, 1), labelled(800, 2, shuffle=True)
    same["g"][:5] = "w"                           # a category the real table lacks: same feature width
    kinds = {"a": "continuous", "b": "continuous", "g": "categorical", "y": "categorical"}
    good = ml_efficacy(real, same, kinds, "y", seed=0)
    assert good["efficacy_real"] > 0.85
    assert good["efficacy_synthetic"] == pytest.approx(good["efficacy_real"], abs=0.05)
    assert ml_efficacy(real, broken, kinds, "y", seed=0)["efficacy_ratio"] < 0.75
    kinds_r = {"a": "continuous", "b": "continuous", "r": "continuous"}
    reg = ml_efficacy(real, same, kinds_r, "r", seed=0)
    assert reg["efficacy_real_r2"] > 0.9 and reg["efficacy_synthetic_r2"] == pytest.approx(reg["efficacy_real_r2"],
                                                                                          abs=0.05)


def test_table_metrics_events_validity_nonfinite_rows_and_determinism():
    real, fake = eprime_events(600, seed=0), eprime_events(600, seed=1)
    fake["pz"][:30] = 11.0                                           # E' > E_b
    fake["px"][30:36] = np.nan
    kinds = {k: "continuous" for k in ("px", "py", "pz")}
    out = table_metrics(real, fake, kinds, seed=0, beam_energy=10.6)
    assert out["validity/energy"] == pytest.approx(564 / 600)
    assert out["validity/finite"] == pytest.approx(594 / 600)
    assert out["validity_real/all"] == 1.0
    assert out["fake_nonfinite_rows"] == pytest.approx(6 / 600)
    assert 0.4 < out["c2st_auc"] < 0.7 and abs(out["mmd2"]) < 0.05    # 5% outliers: nearly the same
    assert {"w1/px", "ks/pz", "corr_frobenius", "corr_similarity"} <= set(out)
    assert table_metrics(real, fake, kinds, seed=0, beam_energy=10.6) == out


def test_bad_inputs_name_the_problem():
    t = _table(50, 0)
    with pytest.raises(ValueError, match="lacks columns"):
        table_metrics(t, {"a": t["a"]}, KINDS)
    with pytest.raises(ValueError, match="kind"):
        table_metrics(t, t, {"a": "text"})
    with pytest.raises(ValueError, match="not numeric"):
        table_metrics(t, t, {"c": "continuous"})
    with pytest.raises(ValueError, match="every fake row"):
        table_metrics(t, {**t, "a": np.full(50, np.nan)}, KINDS)
