"""Domain adaptation from Fashion-MNIST (issue 22, acceptance item 3): DANN against the source-only classifier on
each built-in target domain, 3 seeds.

For each target T in fashion-mnist-m, fashion-mnist-inverted, fashion-mnist-blurred and each seed S, two runs of the
README command with the recipe fashion-mnist-dann:
    ganforge train --data builtin:fashion-mnist --family dann --set model.target=builtin:T --seed S --out RUN
    ganforge train ... --set model.domain_weight=0 ...                                    (source only)
each measured by
    ganforge evaluate --ckpt RUN --classifier --data builtin:T            (the target's labelled test split)
    ganforge evaluate --ckpt RUN --classifier --data builtin:fashion-mnist (the source's test split)
The target's labels are never used in training (dann reads the target's training images only).

    .venv/bin/python bench/dann.py [--seeds 0,1,2] [--targets fashion-mnist-m,...]
Results: bench/results/dann.json (no absolute paths); runs in bench/results/runs/dann/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TARGETS = ("fashion-mnist-m", "fashion-mnist-inverted", "fashion-mnist-blurred")


def cli(words: list[str]) -> str:
    r = subprocess.run([sys.executable, "-m", "ganforge", *words], cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"ganforge {' '.join(words)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def accuracy(run: str, data: str, out: str) -> float:
    cli(["evaluate", "--ckpt", run, "--classifier", "--data", data, "--out", out])
    return float(json.loads((ROOT / out).read_text())["classifier"]["accuracy"])


def one(target: str, seed: int, source_only: bool, runs: Path) -> dict[str, Any]:
    name = f"{target}_{'source' if source_only else 'dann'}_seed{seed}"
    run = str((runs / name).relative_to(ROOT))
    words = ["train", "--data", "builtin:fashion-mnist", "--family", "dann", "--set", f"model.target=builtin:{target}",
             "--seed", str(seed), "--quiet", "--out", run]
    if source_only:
        words[-2:-2] = ["--set", "model.domain_weight=0"]
    import shutil

    shutil.rmtree(ROOT / run, ignore_errors=True)
    t0 = time.time()
    cli(words)
    wall = time.time() - t0
    return {"target": target, "seed": seed, "method": "source-only" if source_only else "dann",
            "command": "ganforge " + " ".join(words).replace(run, "RUN"), "train_wall_s": round(wall, 1),
            "target_accuracy": accuracy(run, f"builtin:{target}", f"{run}/target.json"),
            "source_accuracy": accuracy(run, "builtin:fashion-mnist", f"{run}/source.json")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--out", default=str(BENCH / "results" / "dann.json"))
    args = ap.parse_args()
    sys.path.insert(0, str(BENCH))
    from text2image import machine

    runs = BENCH / "results" / "runs" / "dann"
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for target in args.targets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for source_only in (True, False):
                rows.append(one(target, seed, source_only, runs))
                r = rows[-1]
                print(f"{target:24s} seed {seed} {r['method']:11s} target {r['target_accuracy']:.4f} source "
                      f"{r['source_accuracy']:.4f} ({r['train_wall_s']:.0f} s)", flush=True)
    summary = {}
    for target in args.targets.split(","):
        acc = {m: [r["target_accuracy"] for r in rows if r["target"] == target and r["method"] == m]
               for m in ("source-only", "dann")}
        summary[target] = {m: {"mean": round(statistics.mean(v), 4), "per_seed": v} for m, v in acc.items()}
        summary[target]["dann_better_on_average"] = statistics.mean(acc["dann"]) > statistics.mean(acc["source-only"])
    result = {"bench": "bench/dann.py", "date": time.strftime("%Y-%m-%d"), "source": "builtin:fashion-mnist",
              "recipe": "fashion-mnist-dann@v1", "summary": summary, "rows": rows, "machine": machine()}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for t, s in summary.items():
        print(f"{t:24s} source-only {s['source-only']['mean']:.4f}  dann {s['dann']['mean']:.4f}  "
              f"dann better: {s['dann_better_on_average']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
