"""Trainer step speed of this checkout against an earlier commit, side by side: what a change to the training
loop costs (e.g. the phase loop of docs/architecture.md section 4).

Each tree (`git worktree` of --baseline, and this checkout) gets one worker process per setup, with
PYTHONPATH at its src/. A worker builds the DCGAN run of bench/speed.py's ganforge arms (Fashion-MNIST,
latent 100, width 64, batch 64, the health monitor and the JSONL logger, no files written), trains 3 warm-up
steps, then trains `steps` steps each time the parent asks. The parent asks the two workers in turn, the
order alternating every round, so load drift hits both; only one trains at a time. Reported per setup:
median images/s of each and the median of the per-round ratios current / baseline (1.0 = no change).

Setups: 64x64 at the trainer's defaults (bf16 autocast, channels_last), and 28x28 fp32 NCHW (small steps,
where per-step Python overhead shows most). Writes bench/results/trainer_speed_ab.json.

    .venv/bin/python bench/trainer_speed_ab.py --baseline 33930a9 [--rounds 12]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SETUPS = [(64, "default", 3), (28, "fp32", 20)]  # (side, precision, steps per round)

WORKER = r"""
import pathlib, sys, tempfile, time
from ganforge import config
from ganforge.data import load_data
from ganforge.train import HealthMonitor, MetricsLogger, build_run

side, precision = int(sys.argv[1]), sys.argv[2]
train = {} if precision == "default" else {"precision": "fp32", "channels_last": False}
cfg = config.from_dict({
    "family": "dcgan", "model": {"latent_dim": 100, "width": 64, "loss": "ns"},
    "data": {"source": "builtin:fashion-mnist", "size": [side, side], "channels": 1},
    "train": {"steps": 0, "batch_size": 64, "seed": 0, "device": "cpu", **train},
    "log": {"log_every": 10, "sample_every": 0, "ckpt_every": 0, "tensorboard": False, "progress": False}})
data = load_data("builtin:fashion-mnist", size=(side, side), channels=1, quiet=True)
callbacks = [HealthMonitor(cfg.health), MetricsLogger(cfg.log.log_every, tensorboard=False)]
trainer = build_run(cfg, pathlib.Path(tempfile.mkdtemp()), data=data, callbacks=callbacks)

def run(n):
    trainer.cfg.train.steps = trainer.step + n
    trainer.fit()

run(3)
print("ready", flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    run(int(line))
    print(time.perf_counter() - start, flush=True)
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", required=True, help="the git revision to compare against")
    p.add_argument("--rounds", type=int, default=12, help="timed rounds per setup")
    p.add_argument("--out", type=Path, default=RESULTS / "trainer_speed_ab.json")
    args = p.parse_args(argv)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline], check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), rev], check=True,
                       capture_output=True)
        try:
            trees = {"baseline": worktree / "src", "current": ROOT / "src"}
            results = {f"{side}x{side}_{prec}": measure(trees, side, prec, steps, args.rounds)
                       for side, prec, steps in SETUPS}
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False)
    out = {"benchmark": "trainer_speed_ab", "baseline": rev,
           "current": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip(),
           "command": f".venv/bin/python bench/trainer_speed_ab.py --baseline {args.baseline} --rounds {args.rounds}",
           "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
           "time": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


def measure(trees: dict[str, Path], side: int, precision: str, steps: int, rounds: int) -> dict:
    workers = {}
    for name, src in trees.items():
        env = {**os.environ, "PYTHONPATH": str(src)}
        w = subprocess.Popen([sys.executable, "-c", WORKER, str(side), precision], env=env, cwd=tempfile.gettempdir(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if w.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {name} worker did not start")
        workers[name] = w
    speed: dict[str, list[float]] = {name: [] for name in trees}
    ratios = []
    try:
        for r in range(rounds):
            seconds = {}
            for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                workers[name].stdin.write(f"{steps}\n")
                workers[name].stdin.flush()
                seconds[name] = float(workers[name].stdout.readline())
                speed[name].append(64 * steps / seconds[name])
            ratios.append(seconds["baseline"] / seconds["current"])
    finally:
        for w in workers.values():
            w.stdin.close()
            w.wait()
    return {"baseline_img_s": round(statistics.median(speed["baseline"]), 1),
            "current_img_s": round(statistics.median(speed["current"]), 1),
            "current_over_baseline_paired_median": round(statistics.median(ratios), 3),
            "paired_min": round(min(ratios), 3), "paired_max": round(max(ratios), 3), "rounds": rounds,
            "steps_per_round": steps}


if __name__ == "__main__":
    sys.exit(main())
