"""Unpaired translation sneaker <-> ankle boot (Fashion-MNIST, 28x28): cyclegan and discogan.

Each family trains on builtin:fmnist-sneaker2boot (6,000 sneakers as domain A, 6,000 ankle boots as
domain B, drawn independently), one torch thread per run, the two runs side by side. Then, with the
run's EMA generators loaded by `Sampler.from_checkpoint` (the artifact path), every test sneaker (1,000)
is translated to B and every test ankle boot (1,000) to A, and measured with the shipped Fashion-MNIST
classifier (`metrics.features.fashion()`):

  target accuracy  the fraction of translations the classifier puts in the target class (ankle boot = 9
                   for AtoB, sneaker = 7 for BtoA); for reference, the same for the untranslated inputs
  cycle L1         mean |G_BA(G_AB(a)) - a| (and B->A->B), in [-1, 1] units (`metrics.translation.cycle_error`)
  FID / KID        translations vs the real test images of the target class (fashion features); the
                   untranslated inputs vs the same images give the "did nothing" reference

Bar: target accuracy >= 80% in both directions, for each family.

    .venv/bin/python bench/cyclegan.py                          # both families, default steps
    .venv/bin/python bench/cyclegan.py --families discogan --steps 200 --tag _smoke
    .venv/bin/python bench/cyclegan.py --set cyclegan:model.lambda_cycle=5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
BAR = 0.80
KID_SUBSETS = 20  # of 1,000 x 1,000: KID's spread is reported beside it
SNEAKER, BOOT = 7, 9
SETTINGS = {
    # the paper's losses and weights; nets narrowed to fit ~10 CPU minutes at 28x28 (3 residual blocks)
    "cyclegan": {"model": {"width": 16, "d_width": 32},
                 "train": {"batch_size": 8, "steps": 600}},
    # the paper's 4x4 encoder-decoder and D (2 stride-2 stages at 28x28), half width
    "discogan": {"model": {"width": 32, "d_width": 32},
                 "train": {"batch_size": 64, "steps": 1200}},
}


def settings(family: str, steps: int | None, seed: int, overrides=()) -> dict:
    from ganforge.config import apply_override

    base = SETTINGS[family]
    spec = {"family": family, "model": dict(base["model"]), "data": {"source": "builtin:fmnist-sneaker2boot"},
            "train": {**base["train"], "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999,
                      "lr_decay": "linear", "lr_decay_start": 0.5, "seed": seed},
            "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 25, "progress": False, "tensorboard": False}}
    if steps is not None:
        spec["train"]["steps"] = steps
    for assignment in overrides:  # "KEY=VALUE" for every family, "FAMILY:KEY=VALUE" for one
        target, _, rest = assignment.partition(":") if ":" in assignment.split("=")[0] else ("", "", assignment)
        if target in ("", family):
            apply_override(spec, rest)
    return spec


def run_family(family: str, steps: int | None, seed: int, overrides=(), tag: str = "") -> dict:
    import torch

    torch.set_num_threads(1)
    from ganforge.artifacts import Sampler
    from ganforge.config import from_dict
    from ganforge.data import load_data
    from ganforge.data import load_builtin
    from ganforge.image import save_grid
    from ganforge.metrics.features import fashion
    from ganforge.metrics.translation import cycle_error, domain_accuracy, translation_fid
    from ganforge.train import build_run

    spec = settings(family, steps, seed, overrides)
    out = HERE / "results" / "runs" / f"cyclegan_{family}{tag}"
    shutil.rmtree(out, ignore_errors=True)
    data = load_data(spec["data"]["source"])
    t0, c0 = time.perf_counter(), time.process_time()
    trainer = build_run(from_dict(spec), out, data=data).fit()
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    logs = trainer.last_logs

    test = load_builtin("fmnist-sneaker2boot", split="test")
    a, b = test.to_float(test.x), test.to_float(test.x_b)      # sneakers, ankle boots (1,000 each)
    ext = fashion()
    result = {"family": family, "settings": spec, "steps": trainer.step, "train_seconds": round(train_s, 1),
              "train_cpu_seconds": round(train_cpu, 1),  # one thread: the compute, whatever the machine's load
              "seconds_per_step": round(train_s / max(1, trainer.step), 3), "seed": seed,
              "final_logs": {k: round(v, 4) for k, v in logs.items()}, "directions": {}}
    t1 = time.perf_counter()
    for label, ema in (("ema", True), ("raw", False)):
        sampler = Sampler.from_checkpoint(out, ema=ema)
        fake_b, fake_a = sampler.translate(a, "AtoB"), sampler.translate(b, "BtoA")
        rec_a, rec_b = sampler.translate(fake_b, "BtoA"), sampler.translate(fake_a, "AtoB")
        for direction, x, fake, rec, target, real_target in (("AtoB", a, fake_b, rec_a, BOOT, b),
                                                              ("BtoA", b, fake_a, rec_b, SNEAKER, a)):
            entry = {"target_class": target, "n": len(x),
                     "target_accuracy": domain_accuracy(fake, target, ext),
                     "cycle_l1": cycle_error(x, rec)}
            if label == "ema":
                fd = translation_fid(fake, real_target, ext, n_subsets=KID_SUBSETS, seed=seed)
                base = translation_fid(x, real_target, ext, n_subsets=KID_SUBSETS, seed=seed)
                entry.update({"pass": entry["target_accuracy"] >= BAR, "fid": fd["fid"], "kid": fd["kid"],
                              "input_target_accuracy": domain_accuracy(x, target, ext),
                              "input_fid": base["fid"], "input_kid": base["kid"]})
                result["directions"][direction] = entry
            else:  # the raw (non-EMA) generators, for comparison
                result["directions"][direction]["raw_generator"] = entry
        if ema:  # inputs, translations, reconstructions: 12 of each domain
            rows = [a[:12], fake_b[:12], rec_a[:12], b[:12], fake_a[:12], rec_b[:12]]
            path = save_grid(torch.cat(rows), HERE / "results" / f"{family}{tag}_sneaker2boot.png", nrow=12)
            result["figure"] = str(path.relative_to(HERE.parent))
    result["eval_seconds"] = round(time.perf_counter() - t1, 1)
    d = result["directions"]
    print(f"{family}: {trainer.step} steps in {train_s:.0f} s; sneaker->boot {d['AtoB']['target_accuracy']:.1%} "
          f"(cycle L1 {d['AtoB']['cycle_l1']:.3f}, FID {d['AtoB']['fid']:.1f}), boot->sneaker "
          f"{d['BtoA']['target_accuracy']:.1%} (cycle L1 {d['BtoA']['cycle_l1']:.3f}, FID {d['BtoA']['fid']:.1f})",
          flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--steps", type=int, help="training steps of every family (default: each family's own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="[FAMILY:]KEY=VALUE",
                    help="override a setting, e.g. train.lr_g=1e-4 or cyclegan:model.lambda_identity=0")
    ap.add_argument("--serial", action="store_true", help="one run after the other (default: side by side)")
    ap.add_argument("--tag", default="", help="suffix for run folders, figures and the default JSON name")
    ap.add_argument("--note", default="", help="free text kept in the JSON (e.g. what earlier runs measured)")
    ap.add_argument("--out", help="JSON results (default: bench/results/cyclegan<tag>.json)")
    args = ap.parse_args()
    jobs = [(f, args.steps, args.seed, tuple(args.overrides), args.tag) for f in args.families]
    if args.serial or len(jobs) == 1:
        results = [run_family(*j) for j in jobs]
    else:
        with ProcessPoolExecutor(len(jobs)) as pool:
            results = list(pool.map(run_family, *zip(*jobs)))
    import torch

    doc = {"benchmark": "cyclegan", "command": " ".join([Path(sys.executable).name, *sys.argv]),
           "data": "builtin:fmnist-sneaker2boot: train 6,000 sneakers (A) / 6,000 ankle boots (B); test 1,000 + 1,000",
           "bar": f"target-class accuracy (fashion classifier) >= {BAR:.0%} for the translations of every test "
                  f"image, in each direction (AtoB: sneaker -> ankle boot, BtoA: ankle boot -> sneaker)",
           "note": args.note,
           "results": {r["family"]: r for r in results},
           "pass": all(d["pass"] for r in results for d in r["directions"].values()),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads_per_run": 1, "runs_side_by_side": 1 if args.serial else len(jobs),
                       "load_average_at_end": os.getloadavg()},
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(args.out or HERE / "results" / f"cyclegan{args.tag}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
