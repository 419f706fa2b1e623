"""Unsupervised clustering with the adversarial autoencoder (issue 22, acceptance item 2).

Train: the README's command, `ganforge train --data builtin:fashion-mnist --family aae --recipe
fashion-mnist-aae-clusters --out RUN` (a 10-way categorical prior, no labels), unless --ckpt names a finished run.

Measure: each test image's cluster is the argmax of the encoder's categorical output (aae.cluster); the clustering
accuracy is the share of test images whose cluster maps to their class under the best one-to-one mapping of
clusters to classes (metrics.clustering.cluster_accuracy, the Hungarian algorithm). Labels are used here only. Also
written: cluster sizes, the mapping, and a grid with one row per cluster (`ganforge sample --sweep c0`).
Bar: >= 60% on the test split.

    .venv/bin/python bench/aae_clusters.py [--ckpt RUN]
Results: bench/results/aae_clusters.json (no absolute paths).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
COMMAND = ["ganforge", "train", "--data", "builtin:fashion-mnist", "--family", "aae", "--recipe",
           "fashion-mnist-aae-clusters"]


def measure(run: Path) -> dict[str, Any]:
    import torch

    from ganforge.artifacts import Sampler
    from ganforge.data import load_builtin
    from ganforge.metrics.clustering import cluster_accuracy

    torch.set_num_threads(2)
    s = Sampler.from_checkpoint(run)
    test = load_builtin("fashion-mnist", split="test")
    x = test.to_float(test.x)
    clusters = torch.cat([s.family.cluster(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    r = cluster_accuracy(clusters, test.y)
    k = int(s.family.cfg.categories)
    return {"step": s.step, "accuracy": round(r["accuracy"], 4), "n": r["n"], "mapping": r["mapping"],
            "cluster_sizes": torch.bincount(clusters, minlength=k).tolist(), "bar_ge_0.60": r["accuracy"] >= 0.60}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", help="a finished run to measure (default: train one with the README command)")
    ap.add_argument("--out", default=str(BENCH / "results" / "aae_clusters.json"))
    args = ap.parse_args()
    sys.path.insert(0, str(BENCH))
    from text2image import machine

    train: dict[str, Any] = {}
    if args.ckpt:
        run = Path(args.ckpt)
    else:
        run = BENCH / "results" / "runs" / "aae_clusters"
        import shutil

        shutil.rmtree(run, ignore_errors=True)
        t0 = time.time()
        rc = subprocess.run([sys.executable, "-m", "ganforge", *COMMAND[1:], "--out", str(run)], cwd=ROOT).returncode
        train = {"command": " ".join(COMMAND + ["--out", "RUN"]), "exit": rc, "wall_s": round(time.time() - t0, 1)}
        if rc:
            raise SystemExit(f"training failed ({rc})")
    result = {"bench": "bench/aae_clusters.py", "date": time.strftime("%Y-%m-%d"), "data": "builtin:fashion-mnist",
              "train": train, **measure(run), "machine": machine()}
    grid = BENCH / "results" / "aae_clusters.png"
    subprocess.run([sys.executable, "-m", "ganforge", "sample", "--ckpt", str(run), "--sweep", "c0", "--n", "8",
                    "--out", str(grid)], cwd=ROOT, check=False)
    result["grid"] = "bench/results/aae_clusters.png (ganforge sample --ckpt RUN --sweep c0 --n 8)"
    result["recipe"] = json.loads((run / "config.json").read_text()).get("recipe")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"clustering accuracy {result['accuracy']:.4f} on {result['n']} test images (bar 0.60); sizes "
          f"{result['cluster_sizes']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
