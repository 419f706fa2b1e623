"""Quality parity of the default precision: FID after the same number of steps, fp32 vs `auto`, 3 seeds each.

A DCGAN (latent 100, width 64, non-saturating loss, batch 64) trains on Fashion-MNIST (28x28) for
`--steps` steps with `train.precision=fp32` and with the default `train.precision=auto` (bf16 autocast on
this CPU, fp32 weights and losses), for each seed; runs alternate between the two precisions so drift
of a shared machine hits both alike. Each run's EMA generator is then scored with FID on the shipped
`fashion` features: `--n` generated samples (fixed latents) against the `--n` test-split images.

Parity means the default's mean FID is within the seed noise of fp32's: |mean difference| <= 2 x the
standard error of that difference (Welch) or <= 10% of fp32's mean. Also reported: the wall-clock time
of every training run (a whole-run speed figure beside bench/speed.py's per-step one).
Writes bench/results/precision_fid.json; runs are kept under bench/results/runs/precision_fid/.

    .venv/bin/python bench/precision_fid.py                   # 1000 steps x 3 seeds x 2 precisions (~30 min)
    .venv/bin/python bench/precision_fid.py --steps 50 --n 1000 --seeds 0   # smoke check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

from ganforge.config import from_dict
from ganforge.data import load_builtin
from ganforge.metrics.base import Provenance
from ganforge.metrics.evaluate import compute, fake_set, real_set
from ganforge.metrics.features import load as load_extractor
from ganforge.train import build_run

HERE = Path(__file__).resolve().parent
RUNS = HERE / "results" / "runs" / "precision_fid"
PRECISIONS = ("fp32", "auto")


def config(precision: str, seed: int, steps: int) -> dict:
    return {
        "family": "dcgan",
        "model": {"latent_dim": 100, "width": 64, "loss": "ns"},
        "data": {"source": "builtin:fashion-mnist"},
        "train": {"steps": steps, "batch_size": 64, "precision": precision, "seed": seed},
        "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 50, "progress": False, "tensorboard": False},
    }


def train(precision: str, seed: int, steps: int, data) -> dict:
    out = RUNS / f"{precision}_seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    trainer = build_run(from_dict(config(precision, seed, steps)), out, data=data)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  {precision:4s} seed {seed}: {steps} steps in {wall:6.1f} s ({steps * 64 / wall:6.1f} img/s), "
          f"resolved precision {trainer.precision}", flush=True)
    return {"precision": precision, "resolved": trainer.precision, "seed": seed, "steps": trainer.step,
            "train_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "images_per_s": round(steps * 64 / wall, 1), "run_dir": str(out.relative_to(HERE.parent)),
            "trainer": trainer}


@torch.inference_mode()
def fid_of(trainer, extractor, real, n: int) -> float:
    fam, G = trainer.family, trainer.generator
    G.eval()
    z = fam.noise(n, generator=torch.Generator().manual_seed(12345))
    fake = fake_set(lambda a, b: fam.sample(b - a, z=z[a:b], net=G).float(), n, extractor)
    return compute(["fid"], real, fake, Provenance(**extractor.provenance()))["fid"].values["fid"]


def summary(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 3), "std": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0,
            "min": round(min(values), 3), "max": round(max(values), 3), "values": [round(v, 3) for v in values]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=10000, help="generated and real samples for FID")
    ap.add_argument("--out", default=str(HERE / "results" / "precision_fid.json"))
    args = ap.parse_args()
    data = load_builtin("fashion-mnist")
    runs = []
    t_start = time.perf_counter()
    for i, seed in enumerate(args.seeds):
        order = PRECISIONS if i % 2 == 0 else PRECISIONS[::-1]
        for precision in order:
            runs.append(train(precision, seed, args.steps, data))
    extractor = load_extractor("fashion")
    real = real_set(load_builtin("fashion-mnist", split="test"), extractor, args.n, seed=0)
    for r in runs:
        r["fid"] = round(fid_of(r.pop("trainer"), extractor, real, args.n), 3)
        print(f"  {r['precision']:4s} seed {r['seed']}: FID {r['fid']:.3f}", flush=True)
    fids = {p: [r["fid"] for r in runs if r["precision"] == p] for p in PRECISIONS}
    speed = {p: [r["images_per_s"] for r in runs if r["precision"] == p] for p in PRECISIONS}
    a, b = summary(fids["fp32"]), summary(fids["auto"])
    diff = b["mean"] - a["mean"]
    k = len(args.seeds)
    se = math.sqrt((a["std"] ** 2 + b["std"] ** 2) / k) if k > 1 else float("inf")
    parity = abs(diff) <= 2 * se or abs(diff) <= 0.1 * a["mean"] or diff < 0
    doc = {
        "benchmark": "precision_fid",
        "what": "DCGAN on Fashion-MNIST 28x28, FID (fashion features, EMA generator, n generated vs the test "
                "split) after the same steps with train.precision=fp32 and with the default (auto)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "steps": args.steps, "n": args.n, "seeds": args.seeds,
        "resolved_default": sorted({r["resolved"] for r in runs if r["precision"] == "auto"}),
        "fid": {"fp32": a, "auto": b},
        "difference_auto_minus_fp32": round(diff, 3), "standard_error_of_difference": round(se, 3),
        "parity": parity,
        "parity_rule": "auto not worse: difference < 0, or |difference| <= 2 x standard error (Welch), or <= 10% of fp32's mean",
        "images_per_s": {p: summary(v) for p, v in speed.items()},
        "speedup_auto_over_fp32_whole_runs": round(statistics.mean(speed["auto"]) / statistics.mean(speed["fp32"]), 3),
        "runs": runs,
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"FID fp32 {a['mean']:.2f} +- {a['std']:.2f}, auto ({doc['resolved_default']}) {b['mean']:.2f} +- {b['std']:.2f}; "
          f"difference {diff:+.2f} (standard error {se:.2f}); parity {parity}")
    print(f"whole-run speed: auto {doc['speedup_auto_over_fp32_whole_runs']}x fp32; wrote {args.out}")
    return 0 if parity else 1


if __name__ == "__main__":
    sys.exit(main())
