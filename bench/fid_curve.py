"""DCGAN on Fashion-MNIST: FID against training time, for three objectives.

For each objective (non-saturating, WGAN-GP, hinge) a DCGAN trains on the CPU; after 2, 5 and 10
minutes of training (wall clock, evaluation time excluded) the EMA generator's FID is measured with the
shipped `fashion` features: 10,000 generated samples against the 10,000 images of the test split.
Writes bench/results/fid_curve.json (the curve, steps, CPU seconds, settings, machine) and keeps each
run directory under bench/results/runs/ so `ganforge report` can draw it.

    .venv/bin/python bench/fid_curve.py                       # 2, 5, 10 minutes x 3 objectives (~35 min)
    .venv/bin/python bench/fid_curve.py --minutes 0.2 0.5 --objectives ns   # smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from ganforge.artifacts.report import build_report
from ganforge.config import from_dict
from ganforge.data import load_builtin
from ganforge.metrics.base import Provenance
from ganforge.metrics.evaluate import compute, fake_set, real_set
from ganforge.metrics.features import load as load_extractor
from ganforge.train import build_run

HERE = Path(__file__).parent
SETTINGS = {
    "ns": {"model": {"loss": "ns"}, "train": {}},
    # Gulrajani et al. 2017: no BatchNorm in the critic, 5 critic steps, Adam(1e-4, 0, 0.9)
    "wgan-gp": {"model": {"loss": "wgan-gp", "n_critic": 5, "d_batchnorm": False},
                "train": {"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9}},
    "hinge": {"model": {"loss": "hinge"}, "train": {}},
}
BASE = {
    "family": "dcgan",
    "model": {"latent_dim": 100, "width": 64},
    "data": {"source": "builtin:fashion-mnist"},
    "train": {"batch_size": 64, "precision": "bf16", "channels_last": True, "seed": 0},
    "log": {"sample_every": 500, "ckpt_every": 0, "log_every": 10, "progress": False, "tensorboard": False},
}


def evaluate(trainer, extractor, real, n: int, seed: int) -> dict:
    fam, G = trainer.family, trainer.generator
    G.eval()
    z = fam.noise(n, generator=torch.Generator().manual_seed(seed + 2))
    fake = fake_set(lambda a, b: fam.sample(b - a, z=z[a:b], net=G).float(), n, extractor)
    prov = Provenance(**extractor.provenance(), seed=seed, reference="builtin:fashion-mnist test split",
                      reference_sha256=real.sha256)
    res = compute(["fid", "kid"], real, fake, prov, seed=seed)
    return {"fid": res["fid"].values["fid"], "kid": res["kid"].values["kid"], "provenance": res["fid"].provenance.to_dict()}


def run_one(objective: str, minutes: list[float], n_eval: int, data, extractor, real, seed: int) -> dict:
    spec = json.loads(json.dumps(BASE))
    spec["model"].update(SETTINGS[objective]["model"])
    spec["train"].update(SETTINGS[objective]["train"])
    spec["train"]["steps"] = 10**9  # the time budget ends the run, not the step count
    out = HERE / "results" / "runs" / f"fid_curve_{objective}"
    shutil.rmtree(out, ignore_errors=True)
    trainer = build_run(from_dict(spec), out, data=data)
    for cb in trainer.callbacks:
        cb.on_train_start(trainer)
    train_s, cpu0, points = 0.0, time.process_time(), []
    for budget in sorted(minutes):
        while train_s < budget * 60:
            t0 = time.perf_counter()
            trainer.family.train()
            logs = trainer.train_step()
            trainer._emit("on_step_end", trainer.step, logs)
            train_s += time.perf_counter() - t0
        t_eval = time.perf_counter()
        ev = evaluate(trainer, extractor, real, n_eval, seed)
        trainer.log_metrics({"eval/fid": ev["fid"], "eval/kid": ev["kid"]})
        point = {"minutes": budget, "steps": trainer.step, "train_seconds": round(train_s, 1),
                 "cpu_seconds": round(time.process_time() - cpu0, 1), "fid": ev["fid"], "kid": ev["kid"],
                 "eval_seconds": round(time.perf_counter() - t_eval, 1)}
        points.append(point)
        print(f"{objective:8s} {budget:5.1f} min  step {trainer.step:6d}  FID {ev['fid']:8.3f}  KID {ev['kid']:.4f}",
              flush=True)
    for cb in trainer.callbacks:
        cb.on_train_end(trainer, False)
    report = build_report(out, HERE / "results" / f"fid_curve_{objective}_report.html")  # tracked beside the JSON
    return {"objective": objective, "settings": spec, "curve": points, "provenance": ev["provenance"],
            "events": [e for e in trainer.events if e["event"] in ("health", "rollback", "summary")],
            "run_dir": str(out.relative_to(HERE.parent)), "report": str(report.relative_to(HERE.parent))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[2, 5, 10])
    ap.add_argument("--objectives", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--n", type=int, default=10000, help="generated and real samples for FID")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results" / "fid_curve.json"))
    args = ap.parse_args()
    data = load_builtin("fashion-mnist")
    test = load_builtin("fashion-mnist", split="test")
    extractor = load_extractor("fashion")
    real = real_set(test, extractor, args.n, seed=args.seed)
    results = [run_one(o, args.minutes, args.n, data, extractor, real, args.seed) for o in args.objectives]
    # the test split against the train split: the floor a perfect generator would reach with these features
    floor = compute(["fid"], real, real_set(data, extractor, args.n, seed=args.seed), Provenance())["fid"].values["fid"]
    doc = {
        "benchmark": "fid_curve",
        "what": "DCGAN on Fashion-MNIST, FID (fashion features, EMA generator, n generated vs the test split) "
                "after the given minutes of CPU training (wall clock, evaluation excluded)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seed": args.seed, "n": args.n, "fid_train_vs_test": floor,
        "results": results,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"FID of the train split vs the test split (floor): {floor:.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
