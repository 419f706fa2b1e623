"""`builtin:eprime`: inclusive electron-proton scattering events, e p -> e' X, at a fixed-target beam.

A small event generator written here from textbook physics, as the test bed for FAT-GAN (Alanazi et al.
2020, who trained on events of this reaction at Jefferson Lab's 10.6 GeV beam). It is a physics-shaped
toy, not a precision simulation: Born level (no radiative corrections), no resonance region, no detector.

Kinematics (any DIS text, e.g. Halzen & Martin, "Quarks and Leptons" (1984), ch. 8; PDG Review
"Structure functions", sec. 18.1). Beam electron of energy E_b along +z, proton at rest (M = 0.938272 GeV),
electron mass neglected. With nu = E_b - E' the energy transfer and theta the scattering angle:

    Q^2 = 4 E_b E' sin^2(theta / 2)            x_B = Q^2 / (2 M nu)          y = nu / E_b
    W^2 = M^2 + 2 M nu - Q^2 = M^2 + Q^2 (1 / x_B - 1)

so a point (x_B, Q^2) fixes nu = Q^2 / (2 M x_B), E' = E_b - nu, theta = 2 asin(sqrt(Q^2 / (4 E_b E'))).
The electron's momentum is E' (sin theta cos phi, sin theta sin phi, cos theta) (|p| = E', massless).

Cross section (PDG Review "Structure functions", eq. 18.7, one-photon exchange, m_e -> 0):

    d^2 sigma / dx dQ^2 = 4 pi alpha^2 / (x Q^4) [ (1 - y - x^2 y^2 M^2 / Q^2) F2 + y^2 x F1 ]

with the Callan-Gross relation 2 x F1 = F2 (R = sigma_L / sigma_T = 0). The bracket is then
F2 [ (E'/E_b) cos^2(theta/2) + y^2 / 2 ] (because x^2 y^2 M^2 / Q^2 = Q^2 / (4 E_b^2)), which is
positive everywhere in the physical region and at most F2.

Structure function: the proton fit of Bodek et al., Phys. Rev. D 20 (1979) 1471 (SLAC data; the
"Bodek-Ritchie" universal curve), in Rittenberg-Rubinstein's scaling variable omega_w:

    omega_w = (2 M nu + a^2) / (Q^2 + b^2),   a^2 = 1.642 GeV^2, b^2 = 0.376 GeV^2
    F2(x, Q^2) = nu W2 = B(W, Q^2) * x omega_w * sum_{j=3..7} C_j (1 - 1/omega_w)^j,
    C = (0.256, 2.178, 0.898, -6.716, 3.756)

The factor x omega_w = (Q^2 + a^2 x) / (Q^2 + b^2) turns the universal curve (a function of omega_w alone)
into nu W2. Checked against three independent implementations of this fit that agree on every number
(CepGen's structure functions, cepgen/cepgen; wcosyn/physics-code Tools/NucleonStructure.cpp `f2p_b`; a
Fortran `GP_H` / `B(W, Q^2)` routine by M. Sargsian); the printed paper itself was not available here.
B(W, Q^2), the fit's resonance and threshold factor (24 constants), is left out: it is 0.97-1.00 for
W > 2 GeV, which is why the default cuts are the DIS ones, W > 2 GeV and Q^2 > 1 GeV^2. Values: F2 = 0.34 at
x = 0.2, Q^2 = 4 GeV^2; 0.16 at x = 0.5; 0.32 at x = 0.05, Q^2 = 1.5 (measured proton F2: about 0.34, 0.16 and
0.32). Until 2026-12-05 the factor x omega_w was missing, which put F2 up to 27% high at x = 0.05.

Sampling: accept-reject in u = ln x, t = 1 / Q^2 with a uniform proposal over a box around the allowed
region. The density in (u, t) is x Q^4 d^2sigma/dx dQ^2 = 4 pi alpha^2 * bracket <= 4 pi alpha^2 max F2,
a flat bound (max F2 <= max of the universal curve x (q2_min + a^2) / (q2_min + b^2): x omega_w =
(Q^2 + a^2 x) / (Q^2 + b^2) <= (Q^2 + a^2) / (Q^2 + b^2) for x <= 1, which falls with Q^2 since a^2 > b^2), so
the efficiency is ~10-20% and every step is vectorised. Allowed region: Q^2 >= q2_min,
W >= w_min, 0 < y <= y_max, and sin^2(theta/2) <= 1 (the backward-scattering limit). phi is uniform in
[0, 2 pi) (unpolarised beam and target: the cross section does not depend on phi).
"""

from __future__ import annotations

import math

import numpy as np

PROTON_MASS = 0.938272           # GeV (PDG)
PION0_MASS = 0.134977            # GeV (PDG): W = M + m_pi0 is the inelastic (pion-production) threshold
W_PION_THRESHOLD = PROTON_MASS + PION0_MASS
ALPHA_EM = 1.0 / 137.035999
HBARC2_NB = 0.3893794e6          # (hbar c)^2 in nb GeV^2
DEFAULT_BEAM_ENERGY = 10.6       # GeV, Jefferson Lab's CEBAF after its 12 GeV upgrade, as in FAT-GAN
DEFAULT_Q2_MIN = 1.0             # GeV^2
DEFAULT_W_MIN = 2.0              # GeV: above the resonance region (the DIS cut)

PROTON_MU = 2.792847             # the proton's magnetic moment in nuclear magnetons (PDG): G_M(0)
DIPOLE_LAMBDA2 = 0.71            # GeV^2: the dipole form factor's scale

BODEK_A2, BODEK_B2 = 1.642, 0.376                       # GeV^2
BODEK_C = (0.256, 2.178, 0.898, -6.716, 3.756)          # C_3 .. C_7

EPRIME_COLUMNS = ("px", "py", "pz", "E_prime", "theta", "phi", "Q2", "x_B", "W")


def f2_proton(x, q2) -> np.ndarray:
    """Proton F2(x, Q^2) from Bodek et al. 1979's fit without its resonance factor (W > 2 GeV, 1 < Q^2 < 20
    GeV^2): x omega_w times the universal curve."""
    x, q2 = np.asarray(x, dtype=np.float64), np.asarray(q2, dtype=np.float64)
    omega = (q2 / x + BODEK_A2) / (q2 + BODEK_B2)          # 2 M nu = Q^2 / x
    t = 1.0 - 1.0 / omega
    return x * omega * sum(c * t ** (j + 3) for j, c in enumerate(BODEK_C))


def _curve_max() -> float:
    """Largest value of the universal curve over its whole range 0 <= 1 - 1/omega_w <= 1."""
    t = np.linspace(0.0, 1.0, 100_001)
    return float(sum(c * t ** (j + 3) for j, c in enumerate(BODEK_C)).max())


CURVE_MAX = _curve_max()


def f2_bound(q2_min: float) -> float:
    """An upper bound of F2 for Q^2 >= q2_min, x <= 1: x omega_w = (Q^2 + a^2 x) / (Q^2 + b^2) <= (q2_min + a^2) /
    (q2_min + b^2), since a^2 > b^2."""
    return CURVE_MAX * (q2_min + BODEK_A2) / (q2_min + BODEK_B2)


def dis_cross_section(x, q2, beam_energy: float = DEFAULT_BEAM_ENERGY) -> np.ndarray:
    """d^2 sigma / dx dQ^2 in nb / GeV^2 (0 outside 0 < y <= 1 and the backward limit)."""
    x, q2 = np.asarray(x, dtype=np.float64), np.asarray(q2, dtype=np.float64)
    y = q2 / (2.0 * PROTON_MASS * beam_energy * x)
    e_prime = beam_energy * (1.0 - y)
    bracket = f2_proton(x, q2) * (1.0 - y - q2 / (4.0 * beam_energy**2) + 0.5 * y**2)
    sigma = 4.0 * math.pi * ALPHA_EM**2 / (x * q2**2) * bracket * HBARC2_NB
    allowed = (y > 0) & (y <= 1) & (q2 <= 4.0 * beam_energy * e_prime)
    return np.where(allowed, sigma, 0.0)


def _check(beam_energy: float, q2_min: float, w_min: float, y_max: float) -> tuple[float, float, float, float]:
    """Validated settings -> the proposal box (x_lo, x_hi, q2_lo, q2_hi)."""
    if not (beam_energy > 0 and math.isfinite(beam_energy)):
        raise ValueError(f"beam_energy must be a positive number of GeV, got {beam_energy}")
    if not q2_min > 0:
        raise ValueError(f"q2_min must be > 0 GeV^2 (the cross section diverges as 1/Q^4), got {q2_min}")
    if not w_min > PROTON_MASS:
        raise ValueError(f"w_min must exceed the proton mass {PROTON_MASS} GeV (inelastic events; "
                         f"{W_PION_THRESHOLD:.4f} is the pion threshold), got {w_min}")
    if not 0 < y_max <= 1:
        raise ValueError(f"y_max must be in (0, 1], got {y_max}")
    excess = w_min**2 - PROTON_MASS**2
    q2_hi = 2.0 * PROTON_MASS * beam_energy * y_max - excess      # W >= w_min at nu = y_max E_b
    if q2_hi <= q2_min:
        raise ValueError(f"no allowed events: at E_b = {beam_energy} GeV with y <= {y_max}, W >= {w_min} GeV "
                         f"needs Q^2 <= {q2_hi:.3f} < q2_min = {q2_min}; lower q2_min or w_min, or raise "
                         f"the beam energy")
    x_lo = q2_min / (2.0 * PROTON_MASS * beam_energy * y_max)
    x_hi = q2_hi / (q2_hi + excess)
    return x_lo, x_hi, q2_min, q2_hi


def _inside(x, q2, beam_energy: float, q2_min: float, w_min: float, y_max: float) -> np.ndarray:
    """The allowed inelastic region: Q^2 >= q2_min, 0 < y <= y_max, the backward-scattering limit, W >= w_min."""
    y = q2 / (2.0 * PROTON_MASS * beam_energy * x)
    e_prime = beam_energy * (1.0 - y)
    return ((q2 >= q2_min) & (y > 0) & (y <= y_max) & (q2 <= 4.0 * beam_energy * e_prime)
            & (PROTON_MASS**2 + q2 * (1.0 / x - 1.0) >= w_min**2))


def _accept_reject(n: int, rng: np.random.Generator, beam_energy: float, q2_min: float, w_min: float,
                   y_max: float) -> tuple[np.ndarray, np.ndarray]:
    x_lo, x_hi, q2_lo, q2_hi = _check(beam_energy, q2_min, w_min, y_max)
    u_lo, u_hi = math.log(x_lo), math.log(x_hi)
    t_lo, t_hi = 1.0 / q2_hi, 1.0 / q2_lo
    xs, q2s, have, proposed, batch = [], [], 0, 0, max(4 * n, 1024)
    while have < n:
        u = rng.uniform(u_lo, u_hi, batch)
        t = rng.uniform(t_lo, t_hi, batch)
        w_ = rng.uniform(0.0, f2_bound(q2_min), batch)
        x, q2 = np.exp(u), 1.0 / t
        y = q2 / (2.0 * PROTON_MASS * beam_energy * x)
        inside = _inside(x, q2, beam_energy, q2_min, w_min, y_max)
        bracket = f2_proton(x, q2) * (1.0 - y - q2 / (4.0 * beam_energy**2) + 0.5 * y**2)
        keep = inside & (w_ < bracket)
        xs.append(x[keep])
        q2s.append(q2[keep])
        have += int(keep.sum())
        proposed += batch
        rate = max(have, 1) / proposed
        batch = int(min(max((n - have) / rate * 1.1, 1024), 4_000_000))
    return np.concatenate(xs)[:n], np.concatenate(q2s)[:n]


def kinematics(x_b, q2, phi, beam_energy: float = DEFAULT_BEAM_ENERGY) -> dict[str, np.ndarray]:
    """The event columns (EPRIME_COLUMNS) from (x_B, Q^2, phi), with the exact relations above."""
    x_b, q2, phi = (np.asarray(a, dtype=np.float64) for a in (x_b, q2, phi))
    nu = q2 / (2.0 * PROTON_MASS * x_b)
    e_prime = beam_energy - nu
    theta = 2.0 * np.arcsin(np.sqrt(q2 / (4.0 * beam_energy * e_prime)))
    w = np.sqrt(PROTON_MASS**2 + 2.0 * PROTON_MASS * nu - q2)
    sin_t = np.sin(theta)
    return {"px": e_prime * sin_t * np.cos(phi), "py": e_prime * sin_t * np.sin(phi),
            "pz": e_prime * np.cos(theta), "E_prime": e_prime, "theta": theta, "phi": phi,
            "Q2": q2, "x_B": x_b, "W": w}


def dipole_form_factors(q2) -> tuple[np.ndarray, np.ndarray]:
    """The proton's Sachs form factors in the dipole approximation: G_E = G_D, G_M = mu_p G_D with
    G_D = (1 + Q^2 / 0.71 GeV^2)^-2 (Hofstadter's dipole fit; within ~10% of the measured G_M below Q^2 ~ 10)."""
    g_d = (1.0 + np.asarray(q2, dtype=np.float64) / DIPOLE_LAMBDA2) ** -2
    return g_d, PROTON_MU * g_d


def elastic_cross_section(q2, beam_energy: float = DEFAULT_BEAM_ENERGY) -> np.ndarray:
    """d sigma / dQ^2 of elastic e p -> e p in nb / GeV^2 (Rosenbluth, one-photon exchange, m_e -> 0):

        d sigma / d Omega = sigma_Mott (E'/E) [(G_E^2 + tau G_M^2) / (1 + tau) + 2 tau G_M^2 tan^2(theta / 2)],
        sigma_Mott = alpha^2 cos^2(theta/2) / (4 E^2 sin^4(theta/2)),  tau = Q^2 / (4 M^2),

    with E' = E - Q^2 / (2 M) (W = M) and d sigma / dQ^2 = (pi / E'^2) d sigma / d Omega (dQ^2 / d cos theta =
    -2 E'^2 at fixed W = M), i.e. 4 pi alpha^2 / Q^4 (E'/E) [cos^2 (G_E^2 + tau G_M^2) / (1 + tau) + 2 tau G_M^2
    sin^2] (Halzen & Martin ch. 8). 0 beyond backward scattering."""
    q2 = np.asarray(q2, dtype=np.float64)
    e_prime = beam_energy - q2 / (2.0 * PROTON_MASS)
    with np.errstate(all="ignore"):
        sin2 = q2 / (4.0 * beam_energy * e_prime)
        tau = q2 / (4.0 * PROTON_MASS**2)
        g_e, g_m = dipole_form_factors(q2)
        bracket = (1.0 - sin2) * (g_e**2 + tau * g_m**2) / (1.0 + tau) + 2.0 * tau * g_m**2 * sin2
        sigma = 4.0 * math.pi * ALPHA_EM**2 / q2**2 * (e_prime / beam_energy) * bracket * HBARC2_NB
    return np.where((q2 > 0) & (e_prime > 0) & (sin2 <= 1.0), sigma, 0.0)


def elastic_q2_max(beam_energy: float, y_max: float = 1.0) -> float:
    """Largest Q^2 of elastic scattering: backward (theta = pi), Q^2 = 4 E^2 / (1 + 2 E / M), or y = y_max."""
    return min(4.0 * beam_energy**2 / (1.0 + 2.0 * beam_energy / PROTON_MASS),
               2.0 * PROTON_MASS * beam_energy * y_max)


def _elastic_table(beam_energy: float, q2_min: float, y_max: float, points: int = 200_001):
    """(Q^2 grid, cumulative elastic cross section in nb on it): log-spaced from q2_min to the largest Q^2."""
    q2 = np.geomspace(q2_min, elastic_q2_max(beam_energy, y_max), points)
    d = elastic_cross_section(q2, beam_energy)
    return q2, np.concatenate([[0.0], np.cumsum(0.5 * (d[1:] + d[:-1]) * np.diff(q2))])


def dis_total(beam_energy: float = DEFAULT_BEAM_ENERGY, q2_min: float = DEFAULT_Q2_MIN,
              w_min: float = DEFAULT_W_MIN, y_max: float = 1.0, points: int = 1500) -> float:
    """The inelastic cross section (nb) inside the cuts: the trapezoid rule on a log-spaced (x, Q^2) grid."""
    x_lo, x_hi, q2_lo, q2_hi = _check(beam_energy, q2_min, w_min, y_max)
    xs, q2s = np.geomspace(x_lo, x_hi, points), np.geomspace(q2_lo, q2_hi, points)
    x, q2 = np.meshgrid(xs, q2s, indexing="ij")
    d = np.where(_inside(x, q2, beam_energy, q2_min, w_min, y_max), dis_cross_section(x, q2, beam_energy), 0.0)
    return float(np.trapezoid(np.trapezoid(d, q2s, axis=1), xs))


def elastic_share(beam_energy: float = DEFAULT_BEAM_ENERGY, q2_min: float = DEFAULT_Q2_MIN,
                  w_min: float = DEFAULT_W_MIN, y_max: float = 1.0) -> float:
    """sigma_elastic / (sigma_elastic + sigma_inelastic) inside the cuts (the share of elastic events)."""
    s_el = float(_elastic_table(beam_energy, q2_min, y_max)[1][-1])
    return s_el / (s_el + dis_total(beam_energy, q2_min, w_min, y_max))


def eprime_events(n: int, seed: int = 0, beam_energy: float = DEFAULT_BEAM_ENERGY,
                  q2_min: float = DEFAULT_Q2_MIN, w_min: float = DEFAULT_W_MIN,
                  y_max: float = 1.0, elastic: bool = False) -> dict[str, np.ndarray]:
    """n events of e p -> e' X: column name (EPRIME_COLUMNS) -> float64 array of length n.

    Deterministic for a given (n, seed, settings). Energies and momenta in GeV, Q2 in GeV^2, angles in
    radians (theta in [0, pi], phi in [0, 2 pi)). Cuts: Q2 >= q2_min, W >= w_min, y <= y_max.

    elastic=True adds the elastic peak, e p -> e p (W = M, x_B = 1; `elastic_cross_section`), in its share of the
    cross section inside the same Q^2 and y cuts (`elastic_share`: 9.1% at the defaults): the number of elastic
    events is binomial(n, share), their Q^2 drawn by inverse CDF on a 200,001-point log grid, the events shuffled.
    Its ridge reaches E' = E_b - q2_min / (2 M) (10.07 GeV at the defaults), where the inelastic events stop at
    E_b - (w_min^2 - M^2 + q2_min) / (2 M) (8.94 GeV): the edge next to the beam energy that FAT-GAN's bound is for.
    The resonance region (W between the pion threshold and w_min) stays out.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (the number of events) must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    beam_energy, q2_min, w_min, y_max = float(beam_energy), float(q2_min), float(w_min), float(y_max)
    n_el = 0
    if elastic:
        q2_grid, cdf = _elastic_table(beam_energy, q2_min, y_max)
        n_el = int(rng.binomial(int(n), elastic_share(beam_energy, q2_min, w_min, y_max)))
    x_b, q2 = _accept_reject(int(n) - n_el, rng, beam_energy, q2_min, w_min, y_max) if n_el < n else \
        (np.empty(0), np.empty(0))
    if n_el:
        q2_el = np.interp(rng.uniform(0.0, cdf[-1], n_el), cdf, q2_grid)
        order = rng.permutation(int(n))
        x_b, q2 = np.concatenate([x_b, np.ones(n_el)])[order], np.concatenate([q2, q2_el])[order]
    phi = rng.uniform(0.0, 2.0 * math.pi, int(n))
    return kinematics(x_b, q2, phi, beam_energy)


def eprime_bounds(beam_energy: float = DEFAULT_BEAM_ENERGY,
                  w_threshold: float = W_PION_THRESHOLD) -> dict[str, tuple[float, float]]:
    """Physical (cut-independent) range of every column: (low, high), inf where unbounded.

    E' <= E_b (energy conservation; hence |p_i| <= E_b and p_z < E_b, FAT-GAN's log(E_b - p_z) bound),
    0 <= x_B <= 1, W >= w_threshold (inelastic: the pion threshold by default), Q^2 <= 4 E_b^2.
    """
    e = float(beam_energy)
    return {"px": (-e, e), "py": (-e, e), "pz": (-e, e), "E_prime": (0.0, e), "theta": (0.0, math.pi),
            "phi": (0.0, 2.0 * math.pi), "Q2": (0.0, 4.0 * e * e), "x_B": (0.0, 1.0),
            "W": (float(w_threshold), math.sqrt(PROTON_MASS**2 + 2.0 * PROTON_MASS * e))}


EPRIME_BOUNDS = eprime_bounds()


def validity(columns: dict[str, np.ndarray], beam_energy: float = DEFAULT_BEAM_ENERGY,
             w_threshold: float = W_PION_THRESHOLD) -> dict[str, float]:
    """Share of events obeying each physical rule, and all of them at once.

    Uses the momenta (px, py, pz) when present, deriving E' = |p|, Q^2 = 2 E_b E' (1 - cos theta),
    nu = E_b - E', x_B = Q^2 / (2 M nu), W^2 = M^2 + 2 M nu - Q^2 from them (what a generator of momenta
    actually implies); otherwise the E_prime, Q2 (and x_B, W if given) columns. Rules:
    finite (no NaN/inf in any column), energy (E' <= E_b), x_range (0 <= x_B <= 1),
    w_threshold (W >= w_threshold; W^2 < 0 fails), and all.
    """
    if not columns:
        raise ValueError("validity needs event columns (px, py, pz or E_prime and Q2)")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    n = {len(a) for a in arrays.values()}
    if len(n) != 1 or 0 in n:
        raise ValueError(f"event columns must be non-empty and of one length, got lengths {sorted(n)}")
    finite = np.logical_and.reduce([np.isfinite(a) for a in arrays.values()])
    e_b, m = float(beam_energy), PROTON_MASS
    with np.errstate(all="ignore"):
        if {"px", "py", "pz"} <= arrays.keys():
            px, py, pz = arrays["px"], arrays["py"], arrays["pz"]
            e_prime = np.sqrt(px * px + py * py + pz * pz)
            q2 = 2.0 * e_b * (e_prime - pz)                    # 2 E_b E' (1 - cos theta)
            nu = e_b - e_prime
            x_b = q2 / (2.0 * m * nu)
            w2 = m * m + 2.0 * m * nu - q2
        elif {"E_prime", "Q2"} <= arrays.keys():
            e_prime, q2 = arrays["E_prime"], arrays["Q2"]
            nu = e_b - e_prime
            x_b = arrays["x_B"] if "x_B" in arrays else q2 / (2.0 * m * nu)
            w2 = arrays["W"] ** 2 if "W" in arrays else m * m + 2.0 * m * nu - q2
        else:
            raise ValueError(f"validity needs px, py, pz or E_prime and Q2 among the columns, got "
                             f"{sorted(arrays)}")
        energy = e_prime <= e_b
        # a tolerance of 1e-9 (relative): an elastic event (x_B = 1, W = M) recomputed from its float64 momenta
        # lands on either side of the bound by rounding (Q^2 = 2 E_b (E' - pz) cancels), about half the time
        x_range = (x_b >= 0) & (x_b <= 1.0 + 1e-9)
        above = w2 >= w_threshold**2 - 1e-9 * np.maximum(1.0, np.abs(q2))
    rules = {"finite": finite, "energy": energy & finite, "x_range": x_range & finite,
             "w_threshold": above & finite}
    rules["all"] = np.logical_and.reduce(list(rules.values()))
    return {name: float(ok.mean()) for name, ok in rules.items()}


EVENT_FEATURES = ("pT", "p", "E_prime", "theta", "phi", "Q2", "x_B", "W")


def event_features(px, py, pz, beam_energy: float = DEFAULT_BEAM_ENERGY) -> dict[str, np.ndarray]:
    """The quantities an event's momentum implies (massless electron, proton at rest), float64 arrays:
    pT = sqrt(px^2 + py^2), p = E' = |p|, theta = atan2(pT, pz), phi = atan2(py, px) in [0, 2 pi),
    Q2 = 2 E_b E' (1 - cos theta) = 2 E_b (E' - pz), x_B = Q2 / (2 M (E_b - E')), W = sqrt(M^2 + 2 M nu - Q2)
    (NaN where W^2 < 0: such an event is unphysical; `validity` counts it)."""
    px, py, pz = (np.asarray(a, dtype=np.float64) for a in (px, py, pz))
    e_b, m = float(beam_energy), PROTON_MASS
    with np.errstate(all="ignore"):
        pt = np.hypot(px, py)
        p = np.sqrt(pt * pt + pz * pz)
        q2 = 2.0 * e_b * (p - pz)
        nu = e_b - p
        w2 = m * m + 2.0 * m * nu - q2
        return {"pT": pt, "p": p, "E_prime": p, "theta": np.arctan2(pt, pz),
                "phi": np.mod(np.arctan2(py, px), 2.0 * math.pi), "Q2": q2, "x_B": q2 / (2.0 * m * nu),
                "W": np.where(w2 >= 0, np.sqrt(np.maximum(w2, 0.0)), np.nan)}
