"""FID against training time on Fashion-MNIST: DCGAN's three objectives, or the image families side by side.

Objectives (the default): a DCGAN trains on the CPU with each objective (non-saturating, WGAN-GP, hinge);
after 2, 5 and 10 minutes of training (wall clock, evaluation time excluded) the EMA generator's FID is
measured with the shipped `fashion` features: 10,000 generated samples against the 10,000 images of the
test split. Writes bench/results/fid_curve.json.

Families (--families): dcgan, progan, stylegan and fastgan on Fashion-MNIST resized to 32x32 (a size every
family's grid reaches without a crop), each at its family defaults plus the settings in FAMILIES below, one
run each with FID after 10 and 20 minutes (the 10-minute point is measured from the same run, as a checkpoint
there would be). Writes bench/results/fid_curve_families.json. The issue's bar: the best of progan, stylegan
and fastgan beats dcgan at 20 minutes.

Each run directory stays under bench/results/runs/ so `ganforge report` can draw it.

    .venv/bin/python bench/fid_curve.py                       # 2, 5, 10 minutes x 3 objectives (~35 min)
    .venv/bin/python bench/fid_curve.py --minutes 0.2 0.5 --objectives ns   # smoke check
    .venv/bin/python bench/fid_curve.py --families dcgan progan stylegan fastgan   # 10, 20 minutes x 4 (~85 min)
    .venv/bin/python bench/fid_curve.py --families fastgan --minutes 0.2 --n 1000 --out /tmp/f.json  # smoke
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
# --families: each family at its defaults, batch 64, precision auto + channels_last, plus:
FAMILIES = {
    "dcgan": {"model": {"latent_dim": 100, "width": 64}, "train": {}},
    # the family defaults: WGAN-GP + drift, 20k images per stable level and per fade-in, Adam(1e-3, 0, 0.99)
    "progan": {"model": {}, "train": {"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "beta2": 0.99}},
    # the paper's Adam(0.002, 0, 0.99); R1 gamma by the StyleGAN2-ADA heuristic 0.0002 * 32 * 32 / 64 = 0.0032
    "stylegan": {"model": {"r1_weight": 0.0032}, "train": {"lr_g": 2e-3, "lr_d": 2e-3, "beta1": 0.0, "beta2": 0.99}},
    # the reference code's Adam(2e-4, 0.5, 0.999), hinge, no augmentation (60,000 images)
    "fastgan": {"model": {}, "train": {}},
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


def run_one(objective: str, minutes: list[float], n_eval: int, data, extractor, real, seed: int,
            family: str | None = None) -> dict:
    spec = json.loads(json.dumps(BASE))
    if family is None:
        spec["model"].update(SETTINGS[objective]["model"])
        spec["train"].update(SETTINGS[objective]["train"])
        name = objective
    else:
        spec["family"], spec["model"] = family, dict(FAMILIES[family]["model"])
        spec["train"].update(FAMILIES[family]["train"])
        spec["data"]["size"] = list(data.x.shape[-2:])
        spec["train"]["precision"] = "auto"  # the families run the default path a user gets (bf16 only where faster)
        objective = name = family
    spec["train"]["steps"] = 10**9  # the time budget ends the run, not the step count
    out = HERE / "results" / "runs" / f"fid_curve_{name}"
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
    report = build_report(out, HERE / "results" / f"fid_curve_{name}_report.html")  # tracked beside the JSON
    return {"objective": objective, "family": spec["family"], "settings": spec, "curve": points, "provenance": ev["provenance"],
            "events": [e for e in trainer.events if e["event"] in ("health", "rollback", "summary")],
            "run_dir": str(out.relative_to(HERE.parent)), "report": str(report.relative_to(HERE.parent))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", help="default: 2 5 10 (objectives), 10 20 (--families)")
    ap.add_argument("--objectives", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--families", nargs="+", choices=list(FAMILIES),
                    help="compare these families at 32x32 instead of DCGAN's objectives")
    ap.add_argument("--n", type=int, default=10000, help="generated and real samples for FID")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="default: bench/results/fid_curve.json (fid_curve_families.json with --families)")
    args = ap.parse_args()
    fams = args.families
    minutes = args.minutes or ([10, 20] if fams else [2, 5, 10])
    out = Path(args.out or HERE / "results" / ("fid_curve_families.json" if fams else "fid_curve.json"))
    size = (32, 32) if fams else None
    data = load_builtin("fashion-mnist", size=size)
    # the reference at the training size: both sides then pass through the same resize on their way into the 28x28
    # extractor (test images at 28x28 against 32x32 samples put a floor of FID 8.1 under every family)
    test = load_builtin("fashion-mnist", split="test", size=size)
    extractor = load_extractor("fashion")
    real = real_set(test, extractor, args.n, seed=args.seed)
    if fams:
        results = [run_one(f, minutes, args.n, data, extractor, real, args.seed, family=f) for f in fams]
    else:
        results = [run_one(o, minutes, args.n, data, extractor, real, args.seed) for o in args.objectives]
    # the test split against the train split: the floor a perfect generator would reach with these features
    floor = compute(["fid"], real, real_set(data, extractor, args.n, seed=args.seed), Provenance())["fid"].values["fid"]
    what = ("DCGAN on Fashion-MNIST" if not fams else f"{', '.join(fams)} on Fashion-MNIST at 32x32") + \
        ", FID (fashion features, EMA generator, n generated vs the test split) after the given minutes of CPU " \
        "training (wall clock, evaluation excluded)"
    doc = {
        "benchmark": "fid_curve",
        "what": what,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seed": args.seed, "n": args.n, "fid_train_vs_test": floor,
        "results": results,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if fams:
        last = {r["family"]: r["curve"][-1]["fid"] for r in results}
        new = {f: v for f, v in last.items() if f != "dcgan"}
        if "dcgan" in last and new:
            best = min(new, key=new.get)
            doc["verdict"] = {"minutes": max(minutes), "dcgan_fid": last["dcgan"], "best_new": best,
                              "best_fid": new[best], "pass": new[best] < last["dcgan"]}
            print(json.dumps(doc["verdict"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"FID of the train split vs the test split (floor): {floor:.3f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
