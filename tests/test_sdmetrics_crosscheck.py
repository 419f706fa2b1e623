"""ganforge's table metrics against PyPI sdmetrics' definitions (issue 20): KSComplement = 1 - KS statistic,
TVComplement = 1 - total-variation distance, CorrelationSimilarity (Pearson) = 1 - |rho_real - rho_fake| / 2, to 1e-8
(sdmetrics computes KS its own way: the two agree to ~1e-9, not bit for bit).

sdmetrics needs pandas < 3 and ganforge's environment has pandas 3, so sdmetrics lives in the benches' peer
environment (bench/.venv-ctgan, made by `bench/peer_ctgan.py --setup`): this test runs it there on the same
CSVs. Without that environment the test is skipped (it is not part of `make test`'s set-up).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganforge.metrics.tabular import correlation_distance, ks_statistic, total_variation

ROOT = Path(__file__).resolve().parent.parent
PEER_PY = ROOT / "bench" / ".venv-ctgan" / "bin" / "python"

pytestmark = pytest.mark.skipif(not PEER_PY.exists(), reason="needs bench/.venv-ctgan (bench/peer_ctgan.py --setup)")


def _peer():
    spec = importlib.util.spec_from_file_location("peer_ctgan", ROOT / "bench" / "peer_ctgan.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("peer_ctgan", module)
    spec.loader.exec_module(module)
    return module


def test_ks_tv_and_correlation_similarity_match_sdmetrics(tmp_path):
    rng = np.random.default_rng(7)
    n_r, n_f = 700, 500
    real = pd.DataFrame({"a": rng.normal(0, 1, n_r), "b": rng.exponential(2.0, n_r),
                         "c": rng.choice(["x", "y", "z"], n_r, p=[0.5, 0.3, 0.2])})
    real["d"] = 0.6 * real["a"] + rng.normal(0, 0.5, n_r)
    fake = pd.DataFrame({"a": rng.normal(0.2, 1.3, n_f), "b": rng.exponential(1.5, n_f),
                         "c": rng.choice(["x", "y", "w"], n_f, p=[0.3, 0.4, 0.3])})
    fake["d"] = -0.2 * fake["a"] + rng.normal(0, 1.0, n_f)
    real.to_csv(tmp_path / "real.csv", index=False)
    fake.to_csv(tmp_path / "fake.csv", index=False)
    kinds = {"a": "continuous", "b": "continuous", "c": "categorical", "d": "continuous"}
    ref = _peer().crosscheck(tmp_path / "real.csv", tmp_path / "fake.csv", kinds, tmp_path / "sdm.json")
    assert "error" not in ref, ref.get("error")
    for c in ("a", "b", "d"):
        assert ref["ks_complement"][c] == pytest.approx(1.0 - ks_statistic(real[c], fake[c]), abs=1e-8)
    assert ref["tv_complement"]["c"] == pytest.approx(1.0 - total_variation(real["c"], fake["c"]), abs=1e-8)
    for pair, value in ref["correlation_similarity"].items():
        x, y = pair.split("|")
        ours = correlation_distance(real[[x, y]].to_numpy(), fake[[x, y]].to_numpy())["corr_similarity"]
        assert value == pytest.approx(ours, abs=1e-8), pair
