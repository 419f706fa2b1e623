"""End-to-end time of `ganforge evaluate` on 10,000 samples, run as a user runs it.

A DCGAN (width 64) is trained for a few steps on Fashion-MNIST with `ganforge train` (the quality of the
checkpoint does not matter here, only the work of evaluating it); then

    ganforge evaluate --ckpt RUN --data builtin:fashion-mnist --metrics fid,kid,pr,is --n 10000

runs as a subprocess twice: first with an empty ganforge cache (the reference statistics of the test split
are computed and cached), then again with that cache (they are read back). Each timing is the whole
command: interpreter start, imports, loading the checkpoint, sampling 10,000 images, features, metrics.
Writes bench/results/evaluate_speed.json.

    .venv/bin/python bench/evaluate_speed.py [--n 10000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
GANFORGE = [sys.executable, "-m", "ganforge"]


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="samples per side")
    ap.add_argument("--metrics", default="fid,kid,pr,is")
    ap.add_argument("--repeats", type=int, default=1, help="cached runs after the cold one")
    ap.add_argument("--out", default=str(HERE / "results" / "evaluate_speed.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ganforge-evalbench-"))
    try:
        env = {**os.environ, "GANFORGE_CACHE": str(tmp / "cache")}
        run_dir = tmp / "run"
        train_cmd = [*GANFORGE, "train", "--data", "builtin:fashion-mnist", "--family", "dcgan", "--steps", "20",
                     "--out", str(run_dir), "--quiet", "--set", "log.tensorboard=false"]
        run(train_cmd, env)
        eval_cmd = [*GANFORGE, "evaluate", "--ckpt", str(run_dir), "--data", "builtin:fashion-mnist",
                    "--metrics", args.metrics, "--n", str(args.n), "--features", "fashion",
                    "--out", str(tmp / "eval.json")]
        cold = run(eval_cmd, env)
        cached = [run(eval_cmd, env) for _ in range(args.repeats)]
        values = json.loads((tmp / "eval.json").read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc = {
        "benchmark": "evaluate_speed",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "evaluate_command": "ganforge " + " ".join(eval_cmd[3:]).replace(str(tmp), "TMP"),
        "n": args.n, "metrics": args.metrics.split(","),
        "seconds_cold_cache": round(cold, 1),
        "seconds_cached_reference": [round(c, 1) for c in cached],
        "result": values,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "load_average_1min": os.getloadavg()[0]},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"ganforge evaluate, {args.n} samples, {args.metrics}: {cold:.1f} s with an empty cache, "
          f"{', '.join(f'{c:.1f}' for c in cached)} s with the cached reference; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
