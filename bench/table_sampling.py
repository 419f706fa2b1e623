"""Sampling a table model to disk (issue 20, acceptance item 3): rows per second and peak memory of
`ganforge sample --ckpt RUN --n N --out rows.parquet` (and .csv) for N = 100,000 and 1,000,000, so that a
flat memory shows (the rows are generated, decoded and written 65,536 at a time).

Each call is a fresh process (`python -m ganforge sample ...`), timed from start to exit; its peak resident
memory is the child's ru_maxrss. The written file is then read back and checked: the row count, the columns
and their types as the training table has them, and every value inside the column's bounds (builtin:eprime
declares |p_i| <= E_b) with E' = |p| <= E_b for events.

The model: RUN given with --ckpt, else a small fatgan run on builtin:eprime trained here for --train-seconds
(the speed of sampling hardly depends on how well G is trained).

    .venv/bin/python bench/table_sampling.py                       # trains 60 s, then 100k and 1M rows
    .venv/bin/python bench/table_sampling.py --ckpt bench/results/runs/events/fatgan

Results: bench/results/table_sampling.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNS = HERE / "results" / "runs" / "table_sampling"
RESULTS = HERE / "results" / "table_sampling.json"


def rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return Path(p).name


# the ganforge CLI in a process that reports its own peak resident memory (ru_maxrss of RUSAGE_SELF) on exit
WRAPPER = ("import resource, sys\nfrom ganforge.cli.main import main\nrc = main(sys.argv[1:])\n"
           "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
           "sys.exit(rc)")


def run(words: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, output) of one ganforge command in its own process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER] + words, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"ganforge {' '.join(words)} failed:\n{proc.stdout}\n{proc.stderr}")
    peak_kb = int(proc.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return wall, peak_kb / 1024.0, proc.stdout + proc.stderr


def check_file(path: Path, ckpt: Path, n: int) -> dict:
    from ganforge.artifacts import Sampler
    from ganforge.data.eprime import DEFAULT_BEAM_ENERGY
    from ganforge.data.table import read_table

    sampler = Sampler.from_checkpoint(ckpt)
    info = {name: ci for name, ci, _ in sampler.transformer.columns}
    back = read_table(path)
    out = {"rows": len(back), "rows_ok": len(back) == n, "columns_ok": back.names == list(info)}
    out["kinds_ok"] = all(back.info[c].kind == info[c].kind for c in info if c in back.info)
    inside = True
    for c, ci in info.items():
        if ci.bounds and c in back.info and ci.kind in ("continuous", "integer"):
            lo, hi = ci.bounds
            x = np.asarray(back[c], dtype=np.float64)
            inside &= bool(((lo is None) | (x >= (lo if lo is not None else 0))).all()
                           and ((hi is None) | (x <= (hi if hi is not None else 0))).all())
    out["bounds_ok"] = inside
    if {"px", "py", "pz"} <= set(back.names):
        p = np.sqrt(back["px"] ** 2 + back["py"] ** 2 + back["pz"] ** 2)
        out["energy_ok_share"] = float((p <= DEFAULT_BEAM_ENERGY).mean())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, help="a table run to sample (default: train a small fatgan here)")
    ap.add_argument("--train-seconds", type=int, default=60)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--formats", nargs="+", default=["parquet", "csv"])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    ckpt = args.ckpt
    train_cmd = None
    if ckpt is None:
        ckpt = RUNS / "fatgan"
        if not (ckpt / "config.json").exists():
            train_cmd = ["train", "--data", "builtin:eprime", "--family", "fatgan", "--time", f"{args.train_seconds}s",
                         "--out", str(ckpt), "--quiet"]
            print("$ ganforge " + " ".join(train_cmd), flush=True)
            run(train_cmd)
    rows = []
    for fmt in args.formats:
        for n in sorted(args.sizes):
            path = RUNS / f"rows_{n}.{fmt}"
            words = ["sample", "--ckpt", str(ckpt), "--n", str(n), "--out", str(path)]
            print("$ ganforge " + " ".join(words), flush=True)
            wall, peak, _ = run(words)
            row = {"command": "ganforge " + " ".join(w if not w.startswith("/") else rel(Path(w)) for w in words),
                   "format": fmt, "n": n, "wall_s": round(wall, 2), "rows_per_s": round(n / wall),
                   "peak_rss_mib": round(peak, 1), "file_mib": round(path.stat().st_size / 2**20, 1)}
            row.update(check_file(path, ckpt, n))
            print(json.dumps(row), flush=True)
            rows.append(row)
            path.unlink()
    result = {"bench": "table_sampling", "ckpt": rel(ckpt), "trained_here": train_cmd is not None,
              "note": "wall_s includes process start-up (import torch, load the checkpoint); peak_rss_mib is the "
                      "sampling process's own peak resident memory (ru_maxrss)",
              "runs": rows, "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {rel(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
