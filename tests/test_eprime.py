"""The e p -> e' X event generator (data/eprime.py): exact kinematics, cuts, shape, determinism, validity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganforge.data.eprime import (EPRIME_BOUNDS, EPRIME_COLUMNS, PROTON_MASS, W_PION_THRESHOLD, dis_cross_section,
                                  eprime_bounds, eprime_events, f2_proton, validity)

E_B = 10.6


@pytest.fixture(scope="module")
def events():
    return eprime_events(20_000, seed=3)


def test_columns_and_exact_kinematics(events):
    assert tuple(events) == EPRIME_COLUMNS
    assert all(v.dtype == np.float64 and v.shape == (20_000,) for v in events.values())
    e, th, q2, x, w = (events[k] for k in ("E_prime", "theta", "Q2", "x_B", "W"))
    assert (e <= E_B).all() and (e > 0).all()
    np.testing.assert_allclose(q2, 4 * E_B * e * np.sin(th / 2) ** 2, rtol=1e-9, atol=0)
    nu = E_B - e
    np.testing.assert_allclose(w**2, PROTON_MASS**2 + 2 * PROTON_MASS * nu - q2, rtol=1e-9, atol=0)
    np.testing.assert_allclose(x, q2 / (2 * PROTON_MASS * nu), rtol=1e-9, atol=0)
    p = np.sqrt(events["px"] ** 2 + events["py"] ** 2 + events["pz"] ** 2)
    np.testing.assert_allclose(p, e, rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.arccos(events["pz"] / p), th, rtol=0, atol=1e-7)
    phi = events["phi"]
    assert (phi >= 0).all() and (phi < 2 * math.pi).all()
    np.testing.assert_allclose(np.mod(np.arctan2(events["py"], events["px"]), 2 * math.pi), phi, atol=1e-9)


def test_cuts_and_physical_bounds_hold(events):
    assert (events["Q2"] >= 1.0).all() and (events["W"] >= 2.0).all()
    assert ((events["x_B"] > 0) & (events["x_B"] < 1)).all()
    for name, (lo, hi) in EPRIME_BOUNDS.items():
        assert (events[name] >= lo).all() and (events[name] <= hi).all(), name
    assert validity(events, E_B) == {"finite": 1.0, "energy": 1.0, "x_range": 1.0, "w_threshold": 1.0, "all": 1.0}
    # phi is uniform: each quarter of the circle holds a quarter of the events (binomial 5 sigma)
    counts = np.bincount((events["phi"] // (math.pi / 2)).astype(int), minlength=4)
    assert np.abs(counts / 20_000 - 0.25).max() < 5 * math.sqrt(0.25 * 0.75 / 20_000)


def test_deterministic_per_seed():
    a, b, c = eprime_events(500, seed=7), eprime_events(500, seed=7), eprime_events(500, seed=8)
    for k in EPRIME_COLUMNS:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["Q2"], c["Q2"])


def test_distribution_follows_the_cross_section(events):
    """Accept-reject is right: shares of events in regions of (x, Q^2) equal the cross section's
    integrals there (midpoint rule on a fine grid in ln x, ln Q^2 over the allowed region)."""
    q2 = events["Q2"]
    assert np.median(q2) < q2.mean()                              # Q^2 falls steeply
    lx = np.linspace(math.log(0.04), 0.0, 601)
    lq = np.linspace(0.0, math.log(20.0), 601)
    cx, cq = (lx[1:] + lx[:-1]) / 2, (lq[1:] + lq[:-1]) / 2
    gx, gq = np.meshgrid(np.exp(cx), np.exp(cq), indexing="ij")
    inside = (gq >= 1.0) & (PROTON_MASS**2 + gq * (1 / gx - 1) >= 4.0)
    dens = np.where(inside, dis_cross_section(gx, gq, E_B) * gx * gq, 0.0)   # per d ln x d ln Q^2
    total = dens.sum()
    for region_grid, region_events in (
        (gq < 2.0, q2 < 2.0),
        (gx < 0.2, events["x_B"] < 0.2),
        ((gq < 3.0) & (gx > 0.15), (q2 < 3.0) & (events["x_B"] > 0.15)),
    ):
        expected = dens[region_grid].sum() / total
        sigma = math.sqrt(expected * (1 - expected) / len(q2))
        assert region_events.mean() == pytest.approx(expected, abs=5 * sigma + 0.005)


def test_f2_parametrisation_is_in_the_measured_range():
    # proton F2 (SLAC / NMC): about 0.34 at x = 0.2 and 0.16 at x = 0.5 (Q^2 = 4 GeV^2), 0.32 at x = 0.05
    # (Q^2 = 1.5); the last is where the universal curve alone, without x omega_w, was 17% high
    assert float(f2_proton(0.2, 4.0)) == pytest.approx(0.34, rel=0.1)
    assert float(f2_proton(0.5, 4.0)) == pytest.approx(0.16, rel=0.1)
    assert float(f2_proton(0.05, 1.5)) == pytest.approx(0.32, rel=0.06)
    x = np.linspace(0.01, 0.95, 200)
    assert (f2_proton(x, 2.0) > 0).all()


def test_the_accept_reject_bound_covers_f2():
    from ganforge.data.eprime import f2_bound

    for q2_min in (0.5, 1.0, 3.0):
        x, q2 = np.meshgrid(np.linspace(1e-3, 0.999, 400), np.geomspace(q2_min, 60.0, 400))
        assert float(f2_proton(x, q2).max()) <= f2_bound(q2_min)


def test_validity_counts_each_broken_rule():
    ev = eprime_events(100, seed=1)
    bad = {k: v.copy() for k, v in ev.items()}
    bad["pz"][:10] = E_B + 1.0                     # E' > E_b (and x_B < 0)
    bad["px"][10:15] = np.nan
    got = validity({k: bad[k] for k in ("px", "py", "pz")}, E_B)
    assert got["finite"] == pytest.approx(0.95)
    assert got["energy"] == pytest.approx(0.85)
    assert got["x_range"] == pytest.approx(0.85)
    assert got["all"] == pytest.approx(0.85)
    # the same rules from the derived columns: W below the pion threshold fails only w_threshold
    derived = {k: ev[k].copy() for k in ("E_prime", "Q2", "x_B", "W")}
    derived["W"][:4] = W_PION_THRESHOLD - 0.01
    assert validity(derived, E_B) == pytest.approx(
        {"finite": 1.0, "energy": 1.0, "x_range": 1.0, "w_threshold": 0.96, "all": 0.96})
    with pytest.raises(ValueError, match="px, py, pz"):
        validity({"a": np.ones(3)}, E_B)


def test_bad_settings_name_the_fix():
    with pytest.raises(ValueError, match="positive integer"):
        eprime_events(0)
    with pytest.raises(ValueError, match="q2_min"):
        eprime_events(10, q2_min=0.0)
    with pytest.raises(ValueError, match="no allowed events"):
        eprime_events(10, w_min=5.0)
    with pytest.raises(ValueError, match="beam_energy"):
        eprime_events(10, beam_energy=-1.0)
    lo, hi = eprime_bounds(6.0)["E_prime"]
    assert (lo, hi) == (0.0, 6.0)
    ev = eprime_events(2000, seed=0, beam_energy=6.0, y_max=0.8)
    assert (ev["E_prime"] >= 6.0 * 0.2 - 1e-12).all() and (ev["E_prime"] <= 6.0).all()


def test_elastic_cross_section_equals_rosenbluth_in_the_angle():
    """elastic_cross_section (d sigma / dQ^2) against Rosenbluth's d sigma / d Omega written in the angle, times
    the Jacobian pi / E'^2, with that Jacobian itself checked by a finite difference of Q^2(cos theta) at W = M."""
    from ganforge.data.eprime import (ALPHA_EM, HBARC2_NB, PROTON_MU, dipole_form_factors,
                                      elastic_cross_section)
    e, m = 10.6, PROTON_MASS
    for theta in (0.1, 0.3, 1.0, 2.5):
        def q2_of(cos_t):
            e_prime = e / (1.0 + e / m * (1.0 - cos_t))
            return 2.0 * e * e_prime * (1.0 - cos_t), e_prime
        c = math.cos(theta)
        q2, e_prime = q2_of(c)
        h = 1e-6
        dq2_dcos = (q2_of(c + h)[0] - q2_of(c - h)[0]) / (2 * h)
        assert dq2_dcos == pytest.approx(-2.0 * e_prime**2, rel=1e-6)
        g_e, g_m = (float(v) for v in dipole_form_factors(q2))
        assert g_m == pytest.approx(PROTON_MU * g_e) and g_e == pytest.approx((1 + q2 / 0.71) ** -2)
        tau = q2 / (4 * m * m)
        mott = ALPHA_EM**2 * math.cos(theta / 2) ** 2 / (4 * e * e * math.sin(theta / 2) ** 4)
        d_omega = mott * e_prime / e * ((g_e**2 + tau * g_m**2) / (1 + tau) + 2 * tau * g_m**2 * math.tan(theta / 2) ** 2)
        want = 2 * math.pi * d_omega / abs(dq2_dcos) * HBARC2_NB   # d Omega = 2 pi d cos theta
        assert float(elastic_cross_section(q2, e)) == pytest.approx(want, rel=1e-9)
    assert float(elastic_cross_section(25.0, e)) == 0.0  # beyond backward scattering (Q^2 max = 19.1 GeV^2)


def test_elastic_events_ridge_share_and_q2_law():
    """builtin:eprime-elastic's events: the elastic ones (x_B = 1) have W = M and E' = E_b - Q^2 / 2M, in the
    elastic share of the cross section; their Q^2 follows d sigma / dQ^2; every event keeps E' <= E_b and
    Q^2 = 4 E_b E' sin^2(theta / 2); and the elastic ridge lies above every inelastic event, next to E_b."""
    from ganforge.data.eprime import _elastic_table, elastic_share
    e, n = 10.6, 40_000
    ev = eprime_events(n, seed=3, elastic=True)
    el = ev["x_B"] == 1.0
    share = elastic_share()
    assert 0.05 < share < 0.15
    assert abs(el.mean() - share) <= 4 * math.sqrt(share * (1 - share) / n)
    np.testing.assert_allclose(ev["W"][el], PROTON_MASS, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ev["E_prime"][el], e - ev["Q2"][el] / (2 * PROTON_MASS), rtol=1e-12)
    np.testing.assert_allclose(ev["Q2"], 4 * e * ev["E_prime"] * np.sin(ev["theta"] / 2) ** 2, rtol=1e-9)
    assert (ev["E_prime"] <= e).all() and (ev["Q2"] >= 1.0 - 1e-12).all()
    assert ev["E_prime"][el].max() > 9.9 > ev["E_prime"][~el].max()      # the ridge: up to 10.07 GeV
    q2_grid, cdf = _elastic_table(e, 1.0, 1.0)
    p = float(np.interp(2.0, q2_grid, cdf) / cdf[-1])                    # P(Q^2 < 2 | elastic)
    k = int(el.sum())
    assert abs((ev["Q2"][el] < 2.0).mean() - p) <= 4 * math.sqrt(p * (1 - p) / k)
    # without elastic=True the events are the inelastic set as before (the same draws)
    plain = eprime_events(1000, seed=3)
    assert (plain["W"] >= 2.0).all()
    np.testing.assert_array_equal(plain["px"], eprime_events(1000, seed=3, elastic=False)["px"])


def test_real_elastic_events_are_valid_despite_rounding():
    """validity recomputes x_B and W from the momenta; for elastic events (x_B = 1, W = M exactly) rounding puts
    about half on the wrong side of the bounds without a tolerance. The real events all pass (W >= M rule)."""
    ev = eprime_events(20_000, seed=1, elastic=True)
    v = validity({k: ev[k] for k in ("px", "py", "pz")}, w_threshold=PROTON_MASS)
    assert v == {"finite": 1.0, "energy": 1.0, "x_range": 1.0, "w_threshold": 1.0, "all": 1.0}
    # and a W just below M (beyond rounding) still fails
    bad = validity({"E_prime": np.array([9.0]), "Q2": np.array([1.0]), "W": np.array([PROTON_MASS - 1e-3])},
                   w_threshold=PROTON_MASS)
    assert bad["w_threshold"] == 0.0
