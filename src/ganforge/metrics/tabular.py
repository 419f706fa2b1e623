"""Metrics that judge a synthetic table against a real one.

Inputs are plain dicts: column name -> 1-D array (real and fake), and column name -> kind, where the kind
is "continuous" (also "integer", "datetime": compared as numbers) or "categorical" (also "boolean").
`table_metrics(real, fake, kinds, label=None, seed=0)` returns one flat dict of floats:

- per column: `w1/<col>` (1-D Wasserstein distance, scipy.stats.wasserstein_distance, in the column's
  units), `w1_std/<col>` (the same divided by the real column's standard deviation, so columns can be
  averaged), `ks/<col>` (two-sample Kolmogorov-Smirnov statistic, the largest gap between the empirical
  CDFs) for continuous columns; `tvd/<col>` (total-variation distance 1/2 sum_k |p_k - q_k| between the
  category frequencies) for categorical ones. Means: `w1_std_mean`, `ks_mean`, `tvd_mean`.
- `corr_frobenius`: ||C_real - C_fake||_F for the Pearson correlation matrices of the continuous columns
  (a constant column's correlations count as 0); `corr_similarity`: mean over column pairs of
  1 - |rho_real - rho_fake| / 2 (1 = identical).
- `mmd2`: unbiased multi-bandwidth Gaussian MMD^2 (metrics/mmd.py) between the rows, continuous columns
  standardised with the real table's mean and std, categorical ones one-hot; up to MMD_ROWS rows each.
- `c2st_auc`: classifier two-sample test, the cross-validated ROC AUC of a gradient-boosted classifier
  told to separate real from fake rows (0.5: indistinguishable, 1: fully separable). Seeded.
- with `label`: machine-learning efficacy. The real table is split (seeded, 70/30); a model is trained on
  the real 70% and one on the fake table, both scored on the real 30%: `efficacy_real`,
  `efficacy_synthetic` and their ratio, as accuracy and macro-F1 (`..._accuracy`, `..._f1`) for a
  categorical label, R^2 (`..._r2`) for a continuous one.
- with `beam_energy` (event tables): `validity/<rule>` of the fake events (data/eprime.validity), and
  `validity_real/<rule>` for reference.
- `fake_nonfinite_rows`: share of fake rows with a NaN/inf in a continuous column (dropped before the
  other metrics).

SDMetrics (the SDV ecosystem's library) has counterparts: KSComplement = 1 - ks, TVComplement = 1 - tvd,
CorrelationSimilarity (Pearson) = corr_similarity, LogisticDetection / SVCDetection = 1 - mean over 3
folds of (2 max(AUC, 0.5) - 1) with a logistic / SVC classifier (read in SDMetrics'
single_table/detection/base.py), BinaryDecisionTreeClassifier / MulticlassDecisionTreeClassifier /
LinearRegression (efficacy: train on synthetic, test on real) ~ efficacy_synthetic with another model.
Apart from the detection formula these correspondences are from memory of SDMetrics' documentation and
are to be checked in a test against the installed package.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..data.eprime import W_PION_THRESHOLD, validity
from .mmd import mmd

CONTINUOUS_KINDS = {"continuous", "integer", "datetime", "float", "numeric"}
CATEGORICAL_KINDS = {"categorical", "boolean", "bool", "category"}
MMD_ROWS = 2000          # rows of each table used for MMD^2 (seeded subset beyond this; it is O(n^2))
C2ST_ROWS = 5000         # rows of each table for the classifier two-sample test
C2ST_FOLDS = 5
EFFICACY_TEST_SHARE = 0.3
MAX_ONE_HOT = 50         # categories one-hot encoded per column (the real table's most frequent; rest 'other')


# ------------------------------------------------------------------ input checks

def _kind(name: str, kind: str) -> str:
    k = str(kind).lower()
    if k in CONTINUOUS_KINDS:
        return "continuous"
    if k in CATEGORICAL_KINDS:
        return "categorical"
    raise ValueError(f"column '{name}' has kind {kind!r}; use 'continuous' or 'categorical'")


def _table(data: Mapping[str, Any], kinds: Mapping[str, str], what: str) -> dict[str, np.ndarray]:
    missing = [c for c in kinds if c not in data]
    if missing:
        raise ValueError(f"the {what} table lacks columns {missing} named in kinds (it has {sorted(data)})")
    out = {}
    for c, kind in kinds.items():
        a = np.asarray(data[c])
        if a.ndim != 1:
            raise ValueError(f"{what} column '{c}' must be 1-D, got shape {a.shape}")
        if kind == "continuous":
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{what} column '{c}' is marked continuous but is not numeric; mark it "
                                 f"'categorical'") from None
        else:
            a = a.astype(str)
        out[c] = a
    lengths = {len(a) for a in out.values()}
    if len(lengths) > 1:
        raise ValueError(f"{what} table's columns differ in length: {sorted(lengths)}")
    if not out or lengths == {0}:
        raise ValueError(f"the {what} table is empty")
    return out


def infer_kinds(data: Mapping[str, Any]) -> dict[str, str]:
    """Floats and integers with more than 20 distinct values -> continuous; everything else categorical."""
    kinds = {}
    for c, v in data.items():
        a = np.asarray(v)
        numeric = a.dtype.kind in "fiu" and a.dtype != bool
        kinds[c] = "continuous" if numeric and (a.dtype.kind == "f" or len(np.unique(a)) > 20) else "categorical"
    return kinds


# ------------------------------------------------------------------ per-column distances

def wasserstein_1d(real, fake) -> float:
    """1-D Wasserstein-1 distance between two samples (scipy.stats.wasserstein_distance)."""
    from scipy.stats import wasserstein_distance
    return float(wasserstein_distance(np.asarray(real, np.float64), np.asarray(fake, np.float64)))


def ks_statistic(real, fake) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup_t |F_real(t) - F_fake(t)| (scipy.stats.ks_2samp)."""
    from scipy.stats import ks_2samp
    return float(ks_2samp(np.asarray(real, np.float64), np.asarray(fake, np.float64)).statistic)


def total_variation(real, fake) -> float:
    """1/2 sum_k |p_k - q_k| over the union of categories (0: same frequencies, 1: disjoint)."""
    r, f = np.asarray(real).astype(str), np.asarray(fake).astype(str)
    if len(r) == 0 or len(f) == 0:
        raise ValueError("total_variation needs at least one value on each side")
    cats = np.unique(np.concatenate([r, f]))
    p = np.bincount(np.searchsorted(cats, r), minlength=len(cats)) / len(r)
    q = np.bincount(np.searchsorted(cats, f), minlength=len(cats)) / len(f)
    return float(0.5 * np.abs(p - q).sum())


def _pearson(matrix: np.ndarray) -> np.ndarray:
    centred = matrix - matrix.mean(0)
    norms = np.sqrt((centred**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (centred.T @ centred) / np.outer(norms, norms)
    corr = np.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def correlation_distance(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Frobenius norm of the difference of Pearson correlation matrices of (N, D) arrays, and the
    SDMetrics-style similarity: mean over pairs i < j of 1 - |rho_real - rho_fake| / 2."""
    cr, cf = _pearson(np.asarray(real, np.float64)), _pearson(np.asarray(fake, np.float64))
    diff = cr - cf
    i, j = np.triu_indices(len(cr), k=1)
    similarity = float((1.0 - np.abs(diff[i, j]) / 2.0).mean()) if len(i) else 1.0
    return {"corr_frobenius": float(np.linalg.norm(diff)), "corr_similarity": similarity}


# ------------------------------------------------------------------ row encodings

def encode_rows(real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], kinds: Mapping[str, str],
                columns: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Both tables as float rows: continuous columns standardised with the real mean and std (std 0 -> 1),
    categorical ones one-hot over the real table's MAX_ONE_HOT most frequent categories (+ 'other')."""
    cols = list(kinds) if columns is None else columns
    r_parts, f_parts, names = [], [], []
    for c in cols:
        if kinds[c] == "continuous":
            r, f = np.asarray(real[c], np.float64), np.asarray(fake[c], np.float64)
            mean, std = r.mean(), r.std()
            std = std if std > 0 else 1.0
            r_parts.append(((r - mean) / std)[:, None])
            f_parts.append(((f - mean) / std)[:, None])
            names.append(c)
        else:
            values, counts = np.unique(real[c], return_counts=True)
            top = values[np.argsort(-counts, kind="stable")[:MAX_ONE_HOT]]
            for side, parts in ((real[c], r_parts), (fake[c], f_parts)):
                onehot = (np.asarray(side)[:, None] == top[None, :]).astype(np.float64)
                # always an 'other' column, so every call gives the same width for the same real table
                parts.append(np.concatenate([onehot, 1.0 - onehot.sum(1, keepdims=True)], 1))
            names += [f"{c}={v}" for v in top] + [f"{c}=<other>"]
    return np.concatenate(r_parts, 1), np.concatenate(f_parts, 1), names


def _subset(x: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= rows else x[np.sort(rng.choice(len(x), rows, replace=False))]


def mmd_rows(real_rows: np.ndarray, fake_rows: np.ndarray, bandwidths=None, max_rows: int = MMD_ROWS,
             seed: int = 0) -> float:
    """Unbiased multi-bandwidth Gaussian MMD^2 between (N, D) row arrays (seeded subsets of max_rows)."""
    rng = np.random.default_rng(seed)
    return mmd(_subset(real_rows, max_rows, rng), _subset(fake_rows, max_rows, rng), bandwidths=bandwidths,
               seed=seed)


def c2st_auc(real_rows: np.ndarray, fake_rows: np.ndarray, seed: int = 0, max_rows: int = C2ST_ROWS,
             folds: int = C2ST_FOLDS) -> float:
    """Mean ROC AUC over stratified folds of a classifier separating real (0) from fake (1) rows, on
    equal-sized seeded subsets. 0.5 = the classifier cannot tell them apart."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    rows = min(len(real_rows), len(fake_rows), max_rows)
    if rows < folds:
        raise ValueError(f"the classifier two-sample test needs at least {folds} rows per table, got {rows}")
    x = np.concatenate([_subset(real_rows, rows, rng), _subset(fake_rows, rows, rng)])
    y = np.repeat([0, 1], rows)
    aucs = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y):
        model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=seed)
        model.fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    return float(np.mean(aucs))


def ml_efficacy(real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], kinds: Mapping[str, str],
                label: str, seed: int = 0, test_share: float = EFFICACY_TEST_SHARE) -> dict[str, float]:
    """Train on fake vs train on real (70%), both tested on the held-out real 30%."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    if label not in kinds:
        raise ValueError(f"label '{label}' is not one of the columns {list(kinds)}")
    features = [c for c in kinds if c != label]
    if not features:
        raise ValueError("machine-learning efficacy needs at least one column besides the label")
    n = len(real[label])
    n_test = int(round(n * test_share))
    if n_test < 2 or n - n_test < 2:
        raise ValueError(f"machine-learning efficacy needs at least 7 real rows, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    real_train = {c: v[train] for c, v in real.items()}
    real_test = {c: v[test] for c, v in real.items()}
    x_train, x_fake, _ = encode_rows(real_train, fake, kinds, features)
    _, x_test, _ = encode_rows(real_train, real_test, kinds, features)
    categorical = kinds[label] == "categorical"
    out = {}
    for name, x, y in (("real", x_train, real_train[label]), ("synthetic", x_fake, fake[label])):
        if categorical:
            classes = np.unique(y)
            if len(classes) == 1:           # a single class: the only sensible model predicts it
                pred = np.full(len(x_test), classes[0])
            else:
                model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=seed)
                pred = model.fit(x, y).predict(x_test)
            out[f"efficacy_{name}_accuracy"] = float(accuracy_score(real_test[label], pred))
            out[f"efficacy_{name}_f1"] = float(f1_score(real_test[label], pred, average="macro", zero_division=0))
        else:
            model = HistGradientBoostingRegressor(max_iter=100, early_stopping=False, random_state=seed)
            out[f"efficacy_{name}_r2"] = float(r2_score(real_test[label], model.fit(x, y).predict(x_test)))
    key = "f1" if categorical else "r2"
    base = out[f"efficacy_real_{key}"]
    out["efficacy_real"], out["efficacy_synthetic"] = base, out[f"efficacy_synthetic_{key}"]
    out["efficacy_ratio"] = out["efficacy_synthetic"] / base if base > 0 else float("nan")
    return out


# ------------------------------------------------------------------ the entry point

def table_metrics(real: Mapping[str, Any], fake: Mapping[str, Any], kinds: Mapping[str, str] | None = None,
                  label: str | None = None, seed: int = 0, beam_energy: float | None = None,
                  w_threshold: float = W_PION_THRESHOLD, classifier_test: bool = True) -> dict[str, float]:
    """Every table metric of this module as one flat dict of floats (see the module docstring).

    kinds: column -> 'continuous' | 'categorical' (None: infer_kinds(real)); only these columns are used.
    label: a column for machine-learning efficacy. beam_energy: set for e p -> e' X event tables to add
    the physical validity of the fake events (data/eprime.py). classifier_test=False skips the C2ST.
    """
    if kinds is None:
        kinds = infer_kinds(real)
    kinds = {c: _kind(c, k) for c, k in kinds.items()}
    out: dict[str, float] = {}
    if beam_energy is not None:       # before any row is dropped: NaN rows count as invalid
        for tag, data in (("validity", fake), ("validity_real", real)):
            numeric = {c: np.asarray(v, np.float64) for c, v in data.items()
                       if c in kinds and kinds[c] == "continuous"}
            out.update({f"{tag}/{k}": v for k, v in validity(numeric, beam_energy, w_threshold).items()})
    r, f = _table(real, kinds, "real"), _table(fake, kinds, "fake")
    continuous = [c for c, k in kinds.items() if k == "continuous"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    if continuous:
        if not np.isfinite(np.stack([r[c] for c in continuous])).all():
            raise ValueError("the real table has NaN/inf in continuous columns; impute or drop them first")
        ok = np.isfinite(np.stack([f[c] for c in continuous])).all(0)
        out["fake_nonfinite_rows"] = float(1.0 - ok.mean())
        if not ok.any():
            raise ValueError("every fake row has a NaN/inf in a continuous column; nothing to compare")
        f = {c: v[ok] for c, v in f.items()}
    for c in continuous:
        std = r[c].std()
        out[f"w1/{c}"] = wasserstein_1d(r[c], f[c])
        out[f"w1_std/{c}"] = out[f"w1/{c}"] / std if std > 0 else out[f"w1/{c}"]
        out[f"ks/{c}"] = ks_statistic(r[c], f[c])
    for c in categorical:
        out[f"tvd/{c}"] = total_variation(r[c], f[c])
    for name, prefix in (("w1_std_mean", "w1_std/"), ("ks_mean", "ks/"), ("tvd_mean", "tvd/")):
        values = [v for k, v in out.items() if k.startswith(prefix)]
        if values:
            out[name] = float(np.mean(values))
    if len(continuous) >= 2:
        out.update(correlation_distance(np.stack([r[c] for c in continuous], 1),
                                        np.stack([f[c] for c in continuous], 1)))
    rows_r, rows_f, _ = encode_rows(r, f, kinds)
    if min(len(rows_r), len(rows_f)) >= 2:
        try:
            out["mmd2"] = mmd_rows(rows_r, rows_f, seed=seed)
        except ValueError:            # all rows identical: no median distance for the bandwidths
            out["mmd2"] = float("nan")
    if classifier_test and min(len(rows_r), len(rows_f)) >= C2ST_FOLDS:
        out["c2st_auc"] = c2st_auc(rows_r, rows_f, seed=seed)
    if label is not None:
        out.update(ml_efficacy(r, f, kinds, label, seed=seed))
    return out
