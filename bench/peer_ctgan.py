"""The table peer (issue 20, items 1 and 2): PyPI's `ctgan` (the SDV project's CTGAN, Xu et al. 2019), run in its
own virtual environment, and PyPI's `sdmetrics` quality score, for bench/events.py and bench/tables.py.

* Environment: bench/.venv-ctgan (git-ignored), Python 3.11, never ganforge's dependencies. torch==2.13.0 is
  installed first and alone (pip takes this machine's CPU wheel; asked for through another package's range, pip
  could resolve a CUDA build of several GB), then bench/requirements-ctgan.txt (every version pinned: ctgan 0.12.1,
  sdmetrics 0.32.0, rdt 2.0.0, ...) under a torch==2.13.0 constraint. `--setup` makes it; the benches make it
  when it is missing, printing each pip command. A marker file holds the requirements' text: an edited
  requirements file reinstalls.
* Fit (`fit`, runs inside that venv): `ctgan.CTGAN` with the package's defaults (embedding 128, G and D 256x256,
  Adam 2e-4 with betas (0.5, 0.9) and decay 1e-6, batch 500, pac 10, one D step per G step, log-frequency
  conditional sampling) on a CSV, discrete columns named, `torch.set_num_threads(2)` (and OMP/BLAS threads 2)
  and its own seed (`set_random_state`). Either `--epochs N`, or `--time 10m`: a training-time budget. CTGAN's
  `fit` cannot be resumed in chunks (every call refits the transformer and rebuilds both networks), so for a
  budget it is given a huge epoch count and stopped between epochs: its epoch loop iterates over
  `tqdm(range(epochs))` from the module `ctgan.synthesizers.ctgan`, and this runner replaces that name with a
  clock that times every epoch and ends the loop at the epoch boundary nearest to the budget (it starts
  another epoch while elapsed + half the last epoch's time <= budget). The budget counts the training loop
  only, as ganforge's `--time` counts its trainer's fit and not data preparation; the peer's transformer fit
  (its VGM per continuous column) is timed and reported separately. The package's code is not modified.
  An epoch in ctgan is max(rows // batch, 1) optimiser steps (for a table smaller than a batch: one step of
  500 rows drawn with replacement).
* Samples: `model.sample(n)` in original units, written as CSV; the JSON holds versions, settings, the
  transformer time, training time, every epoch's time (median / mean), steps, sampling time.
* Quality (`quality`, inside that venv): sdmetrics' single-table QualityReport (Column Shapes: KSComplement /
  TVComplement; Column Pair Trends: CorrelationSimilarity / ContingencySimilarity) on seeded subsets of at most
  20,000 rows a side, columns typed as the bench types them.

    .venv/bin/python bench/peer_ctgan.py --setup          # make bench/.venv-ctgan (once; idempotent)
    .venv/bin/python bench/peer_ctgan.py --quick          # self-check: 1 epoch on wine + sdmetrics score
    .venv/bin/python bench/peer_ctgan.py fit --csv T.csv --discrete target --epochs 300 --n 1000 \
        --samples S.csv --json R.json                      # (re-runs itself with the venv's python)

The self-check writes bench/results/peer_ctgan.json (no absolute paths). The benches import this file for
`setup()`, `fit()` and `quality()`; it imports only the standard library at the top, so both venvs can load it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv-ctgan"
PEER_PY = VENV / "bin" / "python"
REQUIREMENTS = BENCH / "requirements-ctgan.txt"
RESULTS = BENCH / "results" / "peer_ctgan.json"
SMOKE_DIR = BENCH / "results" / "runs" / "peer_ctgan"
TORCH_VERSION = "2.13.0"
PEER = "ctgan"
THREADS = 2
QUALITY_ROWS = 20_000


def rel(path: Path | str) -> str:
    """A path as the JSON records it: relative to the repository, else `<temporary>/NAME`."""
    p = Path(os.path.abspath(path))  # not resolve(): a venv's bin/python is a symlink to the base interpreter
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return f"<temporary>/{p.name}"


def parse_duration(text: str | float) -> float:
    """'10m' / '60s' / '1h' / '90' (seconds) -> seconds (ganforge's --time syntax; no ganforge import here)."""
    s = str(text).strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(s[-1:], None)
    value = float(s[:-1] if scale else s) * (scale or 1.0)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"a duration is a positive number of seconds or e.g. 10m, 60s, 1h; got {text!r}")
    return value


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


def in_peer_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def thread_env(threads: int = THREADS) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    return env


# -- peer environment (any python) -------------------------------------------------------------------------------
def _python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return getattr(sys, "_base_executable", sys.executable)
    found = shutil.which("python3.11")
    if not found:
        raise RuntimeError("the peer venv needs Python 3.11 (the local torch 2.13.0 CPU wheel is cp311); "
                           "python3.11 is not on PATH")
    return found


def pip(*words: str) -> None:
    cmd = [str(PEER_PY), "-m", "pip", "install", "--disable-pip-version-check", *words]
    print("$", " ".join(shlex.quote(rel(w) if w.startswith(str(ROOT)) else w) for w in cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


PEER_INFO = ("import json, sys, importlib.metadata as md, torch, ctgan, sdmetrics;"
             "print(json.dumps({**{k: md.version(k) for k in ('ctgan', 'sdmetrics', 'rdt', 'numpy', 'pandas',"
             "'scikit-learn', 'scipy')}, 'torch': torch.__version__, 'python': sys.version.split()[0],"
             "'torch_cuda': torch.version.cuda}))")


def peer_info() -> dict[str, Any]:
    """Versions from inside the peer venv."""
    out = subprocess.run([str(PEER_PY), "-c", PEER_INFO], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def setup() -> dict[str, Any]:
    """Create bench/.venv-ctgan when missing or out of date (idempotent): torch first and alone, then the pins."""
    marker = VENV / "bench-setup.txt"
    want = REQUIREMENTS.read_text()
    if marker.exists() and PEER_PY.exists() and marker.read_text() == want:
        try:
            info = peer_info()
            if info["torch"].split("+")[0] == TORCH_VERSION:
                print(f"peer venv ready: {rel(VENV)} (ctgan {info['ctgan']}, sdmetrics {info['sdmetrics']}, "
                      f"torch {info['torch']})", flush=True)
                return info
        except (subprocess.CalledProcessError, json.JSONDecodeError, KeyError) as e:
            print(f"peer venv check failed ({type(e).__name__}); reinstalling into it", flush=True)
    if not PEER_PY.exists():
        base = _python311()
        print(f"$ {base} -m venv {rel(VENV)}", flush=True)
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    constraint = VENV / "torch-constraint.txt"
    constraint.write_text(f"torch=={TORCH_VERSION}\n")
    pip(f"torch=={TORCH_VERSION}")                       # alone and first: the local CPU wheel
    pip("-c", str(constraint), "-r", str(REQUIREMENTS))
    info = peer_info()
    if info["torch"].split("+")[0] != TORCH_VERSION or info.get("torch_cuda"):
        raise RuntimeError(f"peer venv has torch {info['torch']} (CUDA {info.get('torch_cuda')}), "
                           f"not the {TORCH_VERSION} CPU build")
    marker.write_text(want)
    print(f"peer venv ready: {rel(VENV)} (ctgan {info['ctgan']}, sdmetrics {info['sdmetrics']}, "
          f"torch {info['torch']})", flush=True)
    return info


# -- what the benches call (ganforge's venv) ---------------------------------------------------------------------
def _run_peer(words: list[str], log: Path, timeout: float | None) -> dict[str, Any]:
    cmd = [str(PEER_PY), str(Path(__file__).resolve()), *words]
    shown = " ".join(shlex.quote(rel(w) if w.startswith("/") else w) for w in cmd)
    print("$", shown, flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log.open("w") as f:
        try:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=thread_env(),
                                  timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    wall = time.perf_counter() - t0
    row: dict[str, Any] = {"command": shown, "log": rel(log), "process_wall_s": round(wall, 2)}
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-20:])
        row["error"] = f"the peer exited with {rc}: {tail}"
    return row


def fit(csv: Path, out_dir: Path, discrete: Sequence[str] = (), epochs: int | None = None,
        time_s: float | None = None, n: int | None = None, seed: int = 0, batch_size: int = 500, pac: int = 10,
        threads: int = THREADS) -> dict[str, Any]:
    """Train the peer on `csv` (epochs, or a training-time budget in seconds), sample n rows to
    out_dir/samples.csv; the runner's JSON as a dict (with "error" when it failed)."""
    if (epochs is None) == (time_s is None):
        raise ValueError("give the peer either epochs or time_s")
    out_dir.mkdir(parents=True, exist_ok=True)
    js, samples = out_dir / "peer.json", out_dir / "samples.csv"
    js.unlink(missing_ok=True)
    words = ["fit", "--csv", str(csv), "--samples", str(samples), "--json", str(js), "--seed", str(seed),
             "--batch-size", str(batch_size), "--pac", str(pac), "--threads", str(threads)]
    words += ["--epochs", str(epochs)] if epochs is not None else ["--time", f"{time_s:g}"]
    if discrete:
        words += ["--discrete", ",".join(discrete)]
    if n:
        words += ["--n", str(n)]
    timeout = None if time_s is None else time_s * 3 + 900   # transformer fit + sampling + a stuck process
    row = _run_peer(words, out_dir / "peer.log", timeout)
    if "error" not in row:
        row.update(json.loads(js.read_text()))
    return row


def quality(real_csv: Path, fake_csv: Path, kinds: dict[str, str], out_json: Path, seed: int = 0,
            max_rows: int = QUALITY_ROWS) -> dict[str, Any]:
    """sdmetrics' QualityReport of fake vs real (run in the peer venv); {"score", "properties", ...} or "error"."""
    kinds_file = out_json.with_suffix(".kinds.json")
    kinds_file.parent.mkdir(parents=True, exist_ok=True)
    kinds_file.write_text(json.dumps(kinds))
    out_json.unlink(missing_ok=True)
    row = _run_peer(["quality", "--real", str(real_csv), "--fake", str(fake_csv), "--kinds", str(kinds_file),
                     "--json", str(out_json), "--seed", str(seed), "--max-rows", str(max_rows)],
                    out_json.with_suffix(".log"), 1800)
    if "error" not in row:
        row.update(json.loads(out_json.read_text()))
    return row


# -- inside the peer venv ----------------------------------------------------------------------------------------
class EpochClock:
    """Stands in for `tqdm` in ctgan's epoch loop: times every epoch and, with a budget, ends the loop at the
    epoch boundary nearest to it (another epoch starts while elapsed + half the last epoch <= budget)."""

    def __init__(self, budget_s: float | None) -> None:
        self.budget = budget_s
        self.loop_t0: float | None = None
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.stopped_by_budget = False

    def __call__(self, iterable, *args, **kwargs) -> "EpochClock":
        self._iterable = iterable
        return self

    def set_description(self, *args, **kwargs) -> None:   # what ctgan calls on tqdm when verbose
        pass

    def __iter__(self):
        self.loop_t0 = time.perf_counter()
        for epoch in self._iterable:
            now = time.perf_counter()
            if self.starts:
                self.ends.append(now)
                if self.budget is not None:
                    last = self.ends[-1] - self.starts[-1]
                    if now - self.loop_t0 + last / 2 > self.budget:
                        self.stopped_by_budget = True
                        return
            self.starts.append(now)
            yield epoch
        self.ends.append(time.perf_counter())

    @property
    def epoch_s(self) -> list[float]:
        return [e - s for s, e in zip(self.starts, self.ends)]


def _fit_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="peer_ctgan.py fit")
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--discrete", default="", help="comma-separated discrete (categorical) columns")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--epochs", type=int)
    g.add_argument("--time", help="training-time budget, e.g. 10m (the epoch loop only)")
    p.add_argument("--n", type=int, default=0, help="rows to sample (default: as many as the table has)")
    p.add_argument("--samples", type=Path, required=True)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--pac", type=int, default=10)
    p.add_argument("--threads", type=int, default=THREADS)
    args = p.parse_args(argv)

    import importlib.metadata as md

    import numpy as np
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    import ctgan.synthesizers.ctgan as impl
    from ctgan import CTGAN

    if not hasattr(impl, "tqdm"):
        raise RuntimeError(f"ctgan {md.version('ctgan')} no longer loops over ctgan.synthesizers.ctgan.tqdm; "
                           "the epoch clock cannot be attached (update this runner)")
    budget = parse_duration(args.time) if args.time else None
    clock = EpochClock(budget)
    impl.tqdm = clock
    df = pd.read_csv(args.csv)
    discrete = [c for c in args.discrete.split(",") if c]
    missing = [c for c in discrete if c not in df.columns]
    if missing:
        raise SystemExit(f"--discrete names {missing}, which {args.csv.name} lacks (it has {list(df.columns)})")
    epochs = args.epochs if args.epochs is not None else 10**9
    model = CTGAN(batch_size=args.batch_size, pac=args.pac, epochs=epochs, verbose=False, enable_gpu=False)
    model.set_random_state(args.seed)
    print(f"ctgan {md.version('ctgan')}: {len(df)} rows x {df.shape[1]} columns, discrete {discrete}, "
          f"{'epochs ' + str(args.epochs) if args.epochs is not None else 'budget ' + str(budget) + ' s'}, "
          f"threads {torch.get_num_threads()}", flush=True)
    t0 = time.perf_counter()
    model.fit(df, discrete)
    t1 = time.perf_counter()
    n = args.n or len(df)
    samples = model.sample(n)
    t2 = time.perf_counter()
    args.samples.parent.mkdir(parents=True, exist_ok=True)
    samples.to_csv(args.samples, index=False)
    epoch_s = clock.epoch_s
    steps_per_epoch = max(len(df) // args.batch_size, 1)
    losses = model.loss_values
    result = {
        "peer": f"ctgan {md.version('ctgan')} (PyPI, sdv-dev/CTGAN)",
        "versions": {"ctgan": md.version("ctgan"), "rdt": md.version("rdt"), "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__, "python": sys.version.split()[0]},
        "settings": {"batch_size": args.batch_size, "pac": args.pac, "epochs": args.epochs, "time": args.time,
                     "budget_s": budget, "seed": args.seed, "threads": torch.get_num_threads(),
                     "discrete_columns": discrete, "other": "ctgan.CTGAN defaults (embedding 128, G/D 256x256, "
                     "lr 2e-4, betas (0.5, 0.9), decay 1e-6, discriminator_steps 1, log_frequency True)"},
        "data": {"csv": rel(args.csv), "rows": len(df), "columns": list(df.columns)},
        "transformer_s": round(clock.loop_t0 - t0, 3) if clock.loop_t0 else None,
        "train_s": round(clock.ends[-1] - clock.loop_t0, 3) if clock.ends else 0.0,
        "fit_s": round(t1 - t0, 3),
        "epochs_done": len(epoch_s),
        "steps_per_epoch": steps_per_epoch,
        "steps": len(epoch_s) * steps_per_epoch,
        "stopped_by_budget": clock.stopped_by_budget,
        "epoch_s": [round(v, 4) for v in epoch_s],
        "epoch_s_median": round(float(np.median(epoch_s)), 4) if epoch_s else None,
        "epoch_s_mean": round(float(np.mean(epoch_s)), 4) if epoch_s else None,
        "last_losses": ({"generator": float(losses["Generator Loss"].iloc[-1]),
                         "discriminator": float(losses["Discriminator Loss"].iloc[-1])}
                        if losses is not None and len(losses) else None),
        "sample_rows": n,
        "sample_s": round(t2 - t1, 3),
        "samples": rel(args.samples),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ctgan: {result['epochs_done']} epochs ({result['steps']} steps) in {result['train_s']} s "
          f"(+ transformer {result['transformer_s']} s), {n} rows sampled in {result['sample_s']} s", flush=True)


def _categorical_text(series):
    """Categories as text, integral floats written as integers (a CSV may hold 1 or 1.0 for the same class)."""
    import numpy as np

    values = series.to_numpy()
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    return values.astype(str)


def _quality_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="peer_ctgan.py quality")
    p.add_argument("--real", type=Path, required=True)
    p.add_argument("--fake", type=Path, required=True)
    p.add_argument("--kinds", type=Path, required=True, help="JSON {column: continuous|categorical}")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-rows", type=int, default=QUALITY_ROWS)
    args = p.parse_args(argv)

    import importlib.metadata as md
    import warnings

    import numpy as np
    import pandas as pd
    from sdmetrics.reports.single_table import QualityReport

    kinds = json.loads(args.kinds.read_text())
    frames = []
    for path in (args.real, args.fake):
        df = pd.read_csv(path)
        lacking = [c for c in kinds if c not in df.columns]
        if lacking:
            raise SystemExit(f"{path.name} lacks columns {lacking}")
        df = df[list(kinds)]
        if len(df) > args.max_rows:
            df = df.sample(n=args.max_rows, random_state=args.seed).reset_index(drop=True)
        for c, k in kinds.items():
            df[c] = _categorical_text(df[c]) if k == "categorical" else df[c].astype(np.float64)
        frames.append(df)
    metadata = {"columns": {c: {"sdtype": "categorical" if k == "categorical" else "numerical"}
                            for c, k in kinds.items()}}
    report = QualityReport()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(frames[0], frames[1], metadata, verbose=False)
    props = report.get_properties()
    shapes = report.get_details("Column Shapes")
    result = {"sdmetrics": md.version("sdmetrics"), "report": "single_table.QualityReport",
              "rows": {"real": len(frames[0]), "fake": len(frames[1])}, "score": float(report.get_score()),
              "properties": {str(r["Property"]): float(r["Score"]) for _, r in props.iterrows()},
              "column_shapes": {str(r["Column"]): {"metric": str(r["Metric"]), "score": float(r["Score"])}
                                for _, r in shapes.iterrows()},
              "seconds": round(time.perf_counter() - t0, 2)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"sdmetrics quality score {result['score']:.4f}", flush=True)


# -- self-check (what `run_all.py` runs) ---------------------------------------------------------------------------
def self_check(args: argparse.Namespace) -> None:
    """Setup, then the peer on scikit-learn's wine table for --epochs, and its sdmetrics score."""
    started = machine()
    result: dict[str, Any] = {"bench": "peer_ctgan", "issue": "20 (the peer of items 1 and 2)",
                              "command": " ".join(["bench/peer_ctgan.py", *sys.argv[1:]]), "machine": started}
    try:
        result["versions"] = setup()
        import sklearn.datasets

        SMOKE_DIR.mkdir(parents=True, exist_ok=True)
        csv = SMOKE_DIR / "wine.csv"
        sklearn.datasets.load_wine(as_frame=True).frame.to_csv(csv, index=False)
        run = fit(csv, SMOKE_DIR, discrete=["target"], epochs=args.epochs, n=178, seed=0)
        result["fit"] = run
        if "error" in run:
            raise RuntimeError(run["error"])
        kinds = {c: "continuous" for c in run["data"]["columns"]} | {"target": "categorical"}
        q = quality(csv, SMOKE_DIR / "samples.csv", kinds, SMOKE_DIR / "quality.json")
        result["sdmetrics_quality"] = q
        if "error" in q:
            raise RuntimeError(q["error"])
    except Exception as e:  # noqa: BLE001  (recorded: the self-check reports what failed)
        result["error"] = f"{type(e).__name__}: {e}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {rel(args.out)}")
    if "error" in result:
        print(result["error"], file=sys.stderr)
        raise SystemExit(1)


def crosscheck(real_csv: Path, fake_csv: Path, kinds: dict[str, str], out_json: Path) -> dict[str, Any]:
    """sdmetrics' per-column KSComplement / TVComplement and per-pair CorrelationSimilarity (Pearson) of two
    CSVs (run in the peer venv), to compare with ganforge.metrics.tabular's definitions."""
    kinds_file = out_json.with_suffix(".kinds.json")
    kinds_file.parent.mkdir(parents=True, exist_ok=True)
    kinds_file.write_text(json.dumps(kinds))
    out_json.unlink(missing_ok=True)
    row = _run_peer(["crosscheck", "--real", str(real_csv), "--fake", str(fake_csv), "--kinds", str(kinds_file),
                     "--json", str(out_json)], out_json.with_suffix(".log"), 600)
    if "error" not in row:
        row.update(json.loads(out_json.read_text()))
    return row


def _crosscheck_main(argv: list[str]) -> None:
    import itertools

    import pandas as pd
    from sdmetrics.column_pairs import CorrelationSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    p = argparse.ArgumentParser()
    for flag in ("--real", "--fake", "--kinds", "--json"):
        p.add_argument(flag, type=Path, required=True)
    a = p.parse_args(argv)
    real, fake = pd.read_csv(a.real), pd.read_csv(a.fake)
    kinds = json.loads(a.kinds.read_text())
    out: dict[str, Any] = {"ks_complement": {}, "tv_complement": {}, "correlation_similarity": {}}
    for c, k in kinds.items():
        if k == "continuous":
            out["ks_complement"][c] = float(KSComplement.compute(real_data=real[c], synthetic_data=fake[c]))
        else:
            out["tv_complement"][c] = float(TVComplement.compute(real_data=real[c].astype(str),
                                                                 synthetic_data=fake[c].astype(str)))
    numeric = [c for c, k in kinds.items() if k == "continuous"]
    for x, y in itertools.combinations(numeric, 2):
        out["correlation_similarity"][f"{x}|{y}"] = float(CorrelationSimilarity.compute(
            real_data=real[[x, y]], synthetic_data=fake[[x, y]], coefficient="Pearson"))
    a.json.write_text(json.dumps(out, indent=2) + "\n")


def main(argv: list[str]) -> None:
    if argv[:1] in (["fit"], ["quality"], ["crosscheck"]):
        if not in_peer_venv():                       # re-run with the peer's python (making the venv if needed)
            setup()
            os.execve(str(PEER_PY), [str(PEER_PY), str(Path(__file__).resolve()), *argv], thread_env())
        {"fit": _fit_main, "quality": _quality_main, "crosscheck": _crosscheck_main}[argv[0]](argv[1:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setup", action="store_true", help=f"only create {rel(VENV)} (idempotent)")
    p.add_argument("--quick", action="store_true", help="self-check with 1 epoch (what run_all --quick passes)")
    p.add_argument("--epochs", type=int, default=10, help="self-check epochs on wine (default: 10)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"self-check JSON (default: {rel(RESULTS)})")
    args = p.parse_args(argv)
    if args.setup:
        setup()
        return
    if args.quick:
        args.epochs = 1
    self_check(args)


if __name__ == "__main__":
    main(sys.argv[1:])
