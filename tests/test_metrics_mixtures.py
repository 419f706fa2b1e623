"""mode_coverage (Srivastava et al., 2017 protocol) on exact mixture samples and hand-built cases."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.data.builtin import grid25, ring8
from ganforge.metrics import mode_coverage

# P(||e|| < 3 sigma) for e ~ N(0, sigma^2 I_2): the radius is Rayleigh, so 1 - exp(-3^2 / 2).
P_3SIGMA_2D = 1.0 - math.exp(-4.5)


@pytest.mark.parametrize("make", [ring8, grid25], ids=["ring8", "grid25"])
def test_exact_mixture_samples_cover_every_mode(make):
    mix = make()
    n = 50_000
    x, _ = mix.sample(n, torch.Generator().manual_seed(0))
    out = mode_coverage(x, mix.centers, mix.std)
    k = len(mix.centers)
    assert out["modes_covered"] == k
    assert out["n_modes"] == k
    five_sigma = 5 * math.sqrt(P_3SIGMA_2D * (1 - P_3SIGMA_2D) / n)
    assert out["high_quality_fraction"] == pytest.approx(P_3SIGMA_2D, abs=five_sigma)
    assert len(out["per_mode_fraction"]) == k
    assert sum(out["per_mode_fraction"]) == pytest.approx(out["high_quality_fraction"], abs=1e-12)
    # each mode gets ~P/K of the samples; binomial 5-sigma band for the smallest share
    per_mode_sigma = math.sqrt((P_3SIGMA_2D / k) * (1 - P_3SIGMA_2D / k) / n)
    assert out["per_mode_fraction"] == pytest.approx([P_3SIGMA_2D / k] * k, abs=5 * per_mode_sigma)


def test_wider_radius_counts_more_samples():
    mix = grid25()
    x, _ = mix.sample(20_000, torch.Generator().manual_seed(1))
    n = len(x)
    out = mode_coverage(x, mix.centers, mix.std, n_std=2.0)
    p2 = 1.0 - math.exp(-2.0)
    assert out["high_quality_fraction"] == pytest.approx(p2, abs=5 * math.sqrt(p2 * (1 - p2) / n))


def test_all_samples_at_one_centre_cover_one_mode():
    mix = ring8()
    x = mix.centers[3].expand(2000, 2).clone()
    out = mode_coverage(x, mix.centers, mix.std)
    assert out["modes_covered"] == 1
    assert out["high_quality_fraction"] == pytest.approx(1.0)
    expected = [0.0] * 8
    expected[3] = 1.0
    assert out["per_mode_fraction"] == pytest.approx(expected)


def test_far_away_points_cover_nothing():
    mix = grid25()
    x = torch.full((2000, 2), 100.0)
    out = mode_coverage(x, mix.centers, mix.std)
    assert out["modes_covered"] == 0
    assert out["high_quality_fraction"] == pytest.approx(0.0)
    assert out["per_mode_fraction"] == pytest.approx([0.0] * 25)


def test_min_fraction_boundary_is_inclusive():
    # 2000 samples: 20 at centre 0 (exactly 1%), 19 at centre 1 (0.95%), the rest far away
    mix = ring8()
    far = torch.full((2000 - 39, 2), 50.0)
    x = torch.cat([mix.centers[0].expand(20, 2), mix.centers[1].expand(19, 2), far])
    out = mode_coverage(x, mix.centers, mix.std)
    assert out["modes_covered"] == 1
    assert out["per_mode_fraction"][0] == pytest.approx(0.01)
    assert out["per_mode_fraction"][1] == pytest.approx(0.0095)
    assert out["high_quality_fraction"] == pytest.approx(39 / 2000)
    assert mode_coverage(x, mix.centers, mix.std, min_fraction=0.0095)["modes_covered"] == 2
    assert mode_coverage(x, mix.centers, mix.std, min_fraction=0.0101)["modes_covered"] == 0


def test_radius_boundary_and_nearest_assignment():
    centers = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    std = 0.1
    # 2.9 sigma from centre 0: high quality; 3.1 sigma: not; 0.2 from centre 1 counts for centre 1 only
    x = torch.tensor([[0.29, 0.0], [0.0, -0.31], [0.8, 0.0], [0.0, 0.0]], dtype=torch.float64)
    out = mode_coverage(x, centers, std, min_fraction=0.0)
    assert out["high_quality_fraction"] == pytest.approx(3 / 4)
    assert out["per_mode_fraction"] == pytest.approx([2 / 4, 1 / 4])
    assert out["modes_covered"] == 2


def test_min_fraction_zero_still_needs_one_sample():
    centers = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    out = mode_coverage(torch.zeros(10, 2), centers, 0.1, min_fraction=0.0)
    assert out["modes_covered"] == 1


def test_non_finite_samples_count_but_are_never_high_quality():
    mix = ring8()
    x = torch.cat([mix.centers.repeat(10, 1), torch.tensor([[math.nan, 0.0], [math.inf, 1.0]]).repeat(10, 1)])
    out = mode_coverage(x, mix.centers, mix.std)
    assert out["high_quality_fraction"] == pytest.approx(80 / 100)
    assert out["modes_covered"] == 8


def test_float64_inside_keeps_tiny_std_exact():
    # float32 would round these 1e-9 offsets around 1e3 away; 40 samples > 25 is where torch.cdist
    # would switch to its less exact matmul form
    centers = torch.tensor([[1000.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[1000.0 + 2.5e-9, 0.0], [1000.0 + 3.5e-9, 0.0]], dtype=torch.float64).repeat(20, 1)
    out = mode_coverage(x, centers, 1e-9, min_fraction=0.0)
    assert out["high_quality_fraction"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "samples, centers, kwargs, match",
    [
        (torch.zeros(5, 3), torch.zeros(2, 2), {}, "samples \\(N, D\\) and centers \\(K, D\\)"),
        (torch.zeros(5), torch.zeros(2, 2), {}, "samples \\(N, D\\)"),
        (torch.zeros(0, 2), torch.zeros(2, 2), {}, "at least one sample"),
        (torch.zeros(5, 2), torch.zeros(2, 2), {"std": 0.0}, "must be positive"),
        (torch.zeros(5, 2), torch.zeros(2, 2), {"min_fraction": 1.5}, "min_fraction"),
    ],
)
def test_bad_input_names_the_problem(samples, centers, kwargs, match):
    kwargs = {"std": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        mode_coverage(samples, centers, **kwargs)
