"""Semi-supervised GAN on Fashion-MNIST with 10 labels per class: what do the unlabelled images add?

Two arms, the same network (Salimans et al. 2016's MNIST discriminator: MLP 1000-500-250-250-250 with
Gaussian noise and weight norm), the same 100 labelled images (`labels_per_class: 10`, `label_seed`), the
same optimiser settings and number of steps:
  sgan        -- D is a (K+1)-way classifier on the labelled images, all 60,000 training images (labels
                 unused) and G's fakes; G trained with feature matching.
  supervised  -- `supervised_only: true`: D trained with the cross-entropy on the 100 labelled images alone.
Each arm's final discriminator is measured as a classifier on the 10,000 test images with the code path of
`ganforge evaluate --classifier`. Bar: sgan >= supervised + 5 points, for every seed.

    .venv/bin/python bench/sgan.py                 # seeds 0 1 2, both arms, two runs at a time
    .venv/bin/python bench/sgan.py --steps 300 --seeds 0   # smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
MARGIN = 0.05


def settings(arm: str, steps: int, seed: int, labels_per_class: int, overrides=()) -> dict:
    from ganforge.config import apply_override

    model = {"labels_per_class": labels_per_class, "label_seed": seed, "supervised_only": arm == "supervised"}
    spec = {"family": "sgan", "model": model, "data": {"source": "builtin:fashion-mnist"},
            "train": {"steps": steps, "batch_size": 100, "lr_d": 3e-3, "lr_g": 3e-3, "beta1": 0.5,
                      "lr_decay": "linear", "lr_decay_start": 0.5, "seed": seed},
            "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 50, "progress": False, "tensorboard": False}}
    for assignment in overrides:  # --set, applied to both arms
        apply_override(spec, assignment)
    return spec


def run_arm(arm: str, steps: int, seed: int, labels_per_class: int, overrides=(), tag: str = "") -> dict:
    import torch

    torch.set_num_threads(1)
    from ganforge.artifacts import Classifier
    from ganforge.config import from_dict
    from ganforge.data import load_builtin
    from ganforge.train import build_run

    spec = settings(arm, steps, seed, labels_per_class, overrides)
    out = HERE / "results" / "runs" / f"sgan{tag}_{arm}_seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    trainer = build_run(from_dict(spec), out).fit()
    train_s = time.perf_counter() - t0
    index = trainer.family.labelled_index.tolist()
    clf = Classifier.from_checkpoint(out)  # what `ganforge evaluate --ckpt RUN --classifier` loads
    res = clf.evaluate(load_builtin("fashion-mnist", split="test"))
    print(f"{arm:10s} seed {seed}: {steps} steps in {train_s:.0f} s; test accuracy {res['accuracy']:.2%}", flush=True)
    return {"arm": arm, "seed": seed, "settings": spec, "train_seconds": round(train_s, 1),
            "labelled_images": len(index), "labelled_index": index, "test_accuracy": res["accuracy"],
            "per_class_accuracy": res["per_class_accuracy"], "confusion": res["confusion"], "run": str(out.relative_to(HERE.parent))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--labels-per-class", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each")
    ap.add_argument("--arms", nargs="+", default=["sgan", "supervised"], choices=["sgan", "supervised"])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting of both arms, e.g. model.input_noise=0.6")
    ap.add_argument("--tag", default="", help="suffix for the run folders (bench/results/runs/sgan<TAG>_...)")
    ap.add_argument("--out", default=str(HERE / "results" / "sgan.json"))
    args = ap.parse_args()
    jobs = [(arm, args.steps, seed, args.labels_per_class, tuple(args.overrides), args.tag)
            for seed in args.seeds for arm in args.arms]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run_arm, *zip(*jobs)))
    by = {(r["arm"], r["seed"]): r for r in results}
    if len(args.arms) < 2:
        return 0
    pairs = []
    for seed in args.seeds:
        s, b = by[("sgan", seed)]["test_accuracy"], by[("supervised", seed)]["test_accuracy"]
        pairs.append({"seed": seed, "sgan": s, "supervised": b, "gain_points": 100 * (s - b), "pass": s - b >= MARGIN})
        print(f"seed {seed}: sgan {s:.2%} vs supervised-only {b:.2%}: {100 * (s - b):+.1f} points")
    mean = {arm: statistics.mean(by[(arm, s)]["test_accuracy"] for s in args.seeds) for arm in ("sgan", "supervised")}
    import torch

    doc = {"benchmark": "sgan", "command": " ".join([Path(sys.executable).name, *sys.argv]),
           "bar": f"sgan test accuracy >= supervised-only + {MARGIN * 100:.0f} points, same network and labels",
           "labels_per_class": args.labels_per_class, "steps": args.steps, "pairs": pairs,
           "mean_test_accuracy": mean, "mean_gain_points": 100 * (mean["sgan"] - mean["supervised"]),
           "pass": all(p["pass"] for p in pairs), "results": results,
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"mean: sgan {mean['sgan']:.2%}, supervised-only {mean['supervised']:.2%}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
