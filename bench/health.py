"""Does the health monitor speak up when it should, and only then?

Two DCGAN runs on Fashion-MNIST with the default health settings:
- "collapse": made to fail on purpose: the saturating minimax loss, D's learning rate 10x G's and a tiny G
  (width 8, latent 8). Expected: a mode-collapse or overpowering-D warning within the first few hundred steps.
- "healthy": the DCGAN defaults (non-saturating loss, equal learning rates). Expected: no warning.
Writes bench/results/health.json with every event and the step it came at.

    .venv/bin/python bench/health.py [--steps 600]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from ganforge.config import from_dict
from ganforge.train import build_run

HERE = Path(__file__).parent
RUNS = {
    "collapse": {"model": {"loss": "minimax", "width": 8, "latent_dim": 8}, "train": {"lr_d": 2e-3, "lr_g": 2e-4}},
    "healthy": {"model": {"width": 32}, "train": {}},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--out", default=str(HERE / "results" / "health.json"))
    args = ap.parse_args()
    results = {}
    for name, over in RUNS.items():
        spec = {"family": "dcgan", "model": over["model"], "data": {"source": "builtin:fashion-mnist"},
                "train": {"steps": args.steps, "batch_size": 64, "precision": "bf16", "channels_last": True, **over["train"]},
                "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 10, "progress": False, "tensorboard": False}}
        out = Path(tempfile.mkdtemp(prefix=f"health-{name}-"))
        t0 = time.perf_counter()
        trainer = build_run(from_dict(spec), out).fit()
        warnings = [e for e in trainer.events if e["event"] == "health"]
        summary = [e["message"] for e in trainer.events if e["event"] == "summary"]
        results[name] = {
            "settings": spec, "seconds": round(time.perf_counter() - t0, 1),
            "warnings": [{"step": e["step"], "message": e["message"]} for e in warnings],
            "first_warning_step": warnings[0]["step"] if warnings else None,
            "summary": summary[0] if summary else None,
        }
        shutil.rmtree(out, ignore_errors=True)
        print(f"{name:9s} warnings at steps {[w['step'] for w in warnings]}", flush=True)
        for w in warnings:
            print(f"    {w['message'][:150]}")
    ok_collapse = results["collapse"]["first_warning_step"] is not None and results["collapse"]["first_warning_step"] <= 500
    ok_healthy = not results["healthy"]["warnings"]
    doc = {"benchmark": "health", "command": " ".join([Path(sys.executable).name, *sys.argv]), "results": results,
           "pass": {"collapse_warned_within_500_steps": ok_collapse, "healthy_run_silent": ok_healthy},
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"collapse warned within 500 steps: {ok_collapse}; healthy run silent: {ok_healthy}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
