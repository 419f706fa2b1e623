"""Conditional families on Fashion-MNIST: does the generator draw the class it is asked for?

Each run trains a DCGAN-sized network on Fashion-MNIST (bf16 autocast +
channels_last, batch 64) for --steps steps; then 10,000 EMA-generator samples, 1,000 per requested class,
are classified by the shipped `fashion` classifier (92.4% on real test images). Reported: the fraction
assigned to the requested class, per class and averaged over classes (bar: >= 85%), and FID/KID of the
same 10,000 samples against the 10,000 test images with the same features. `infogan` trains without
labels; its 10,000 samples cycle the categorical code c0, and the bar is NMI(c0, predicted class) >= 0.5;
its sweep grids go to bench/results/infogan_sweep_c<k>.png.

    .venv/bin/python bench/conditional.py --runs infogan      # one run -> bench/results/conditional_infogan.json
    .venv/bin/python bench/conditional.py                     # every run, 6,000 steps each
    .venv/bin/python bench/conditional.py --runs cgan --steps 300   # smoke check
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

from ganforge.config import from_dict
from ganforge.data import load_builtin
from ganforge.families import FAMILIES
from ganforge.metrics.base import Provenance
from ganforge.metrics.evaluate import compute, fake_set, real_set
from ganforge.metrics.features import load as load_extractor
from ganforge.train import build_run

HERE = Path(__file__).parent
MIN_ACCURACY = 0.85
SETTINGS = {  # run name -> family and model options
    "cgan": {"family": "cgan", "model": {"width": 64, "latent_dim": 100}},
    "cgan-projection": {"family": "cgan", "model": {"width": 64, "latent_dim": 100, "projection": True}},
    "acgan": {"family": "acgan", "model": {"width": 64, "latent_dim": 100}},
    "infogan": {"family": "infogan", "model": {"width": 64, "latent_dim": 62, "categorical": [10], "continuous": 2}},
}
MIN_NMI = 0.5


def code_agreement(fam, G, n: int, extractor, seed: int) -> tuple[dict, object, torch.Tensor]:
    """InfoGAN: n samples with the categorical code c0 cycling through its categories (n / K each), the
    rest of the latent random; NMI between c0 and the `fashion` classifier's predicted class, the accuracy
    of the best one-to-one matching of categories to classes, and the class histogram per category."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import normalized_mutual_info_score

    k = fam.code("c0").size
    c0 = torch.arange(k).repeat_interleave(n // k)
    z = fam.set_codes(fam.noise(len(c0), generator=torch.Generator().manual_seed(seed + 2)), {"c0": c0})
    fake = fake_set(lambda a, b: fam.sample(b - a, z=z[a:b], net=G).float(), len(c0), extractor)
    pred = fake.logits.argmax(1)
    table = np.zeros((k, fake.logits.shape[1]), dtype=np.int64)
    np.add.at(table, (c0.numpy(), pred.numpy()), 1)
    rows, cols = linear_sum_assignment(-table)
    return {"nmi": float(normalized_mutual_info_score(c0.numpy(), pred.numpy())),
            "matched_accuracy": float(table[rows, cols].sum() / table.sum()),
            "category_to_class": {int(r): int(c) for r, c in zip(rows, cols)},
            "contingency": table.tolist()}, fake, c0


def run_one(name: str, steps: int, n: int, data, extractor, real, seed: int, overrides=(), tag: str = "") -> dict:
    from ganforge.config import apply_override

    family = SETTINGS[name]["family"]
    spec = {"family": family, "model": dict(SETTINGS[name]["model"]), "data": {"source": "builtin:fashion-mnist"},
            "train": {"steps": steps, "batch_size": 64, "precision": "bf16", "channels_last": True, "seed": seed},
            "log": {"sample_every": 1000, "ckpt_every": 0, "log_every": 10, "progress": False, "tensorboard": False}}
    for assignment in overrides:
        apply_override(spec, assignment)
    out = HERE / "results" / "runs" / f"conditional_{name}{tag}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    trainer = build_run(from_dict(spec), out, data=data).fit()
    train_s = time.perf_counter() - t0
    fam, G = trainer.family, trainer.generator.eval()
    if family == "infogan":
        return run_infogan(name, spec, steps, train_s, fam, G, n, extractor, real, seed, out, tag)
    k = fam.spec.n_classes
    y = torch.arange(k).repeat_interleave(n // k)                       # 1,000 per class, class-major
    z = fam.noise(len(y), generator=torch.Generator().manual_seed(seed + 2))
    fake = fake_set(lambda a, b: fam.sample(b - a, z=z[a:b], y=y[a:b], net=G).float(), len(y), extractor)
    pred = fake.logits.argmax(1)
    per_class = [float((pred[y == c] == c).float().mean()) for c in range(k)]
    prov = Provenance(**extractor.provenance(), seed=seed, reference="builtin:fashion-mnist test split",
                      reference_sha256=real.sha256)
    res = compute(["fid", "kid"], real, fake, prov, seed=seed)
    mean_acc = sum(per_class) / k
    print(f"{name}: {steps} steps in {train_s:.0f} s; requested-class accuracy {mean_acc:.1%} "
          f"(per class {', '.join(f'{a:.0%}' for a in per_class)}); FID {res['fid'].values['fid']:.2f}", flush=True)
    return {"run": name, "family": family, "settings": spec, "steps": steps, "train_seconds": round(train_s, 1),
            "n_samples": len(y), "class_names": list(fam.spec.class_names),
            "requested_class_accuracy": mean_acc, "per_class_accuracy": per_class,
            "pass_accuracy": mean_acc >= MIN_ACCURACY,
            "fid": res["fid"].values["fid"], "kid": res["kid"].values["kid"],
            "provenance": res["fid"].provenance.to_dict(),
            "final_grid": str((out / "samples").relative_to(HERE.parent)) if (out / "samples").exists() else None}


def run_infogan(name, spec, steps, train_s, fam, G, n, extractor, real, seed, out, tag="") -> dict:
    from ganforge.artifacts import Sampler
    from ganforge.image import save_grid

    agree, fake, _ = code_agreement(fam, G, n, extractor, seed)
    prov = Provenance(**extractor.provenance(), seed=seed, reference="builtin:fashion-mnist test split",
                      reference_sha256=real.sha256)
    res = compute(["fid", "kid"], real, fake, prov, seed=seed)
    sampler = Sampler.from_checkpoint(out)
    grids = {}
    k = fam.code("c0").size
    for code in fam.codes:  # one grid per code, 10 columns
        if code.kind == "categorical":  # a row per latent, a column per category
            x, ncol = sampler.sweep(code.name, 10, seed=seed)
        else:  # row r: category r of c0 and its own latent; the code steps from -1 to 1 along the row
            rows = [sampler.sweep(code.name, 1, 10, seed=seed + r, codes={"c0": r})[0] for r in range(k)]
            x, ncol = torch.cat(rows), 10
        path = HERE / "results" / f"infogan{tag}_sweep_{code.name}.png"
        save_grid(x, path, nrow=ncol)
        grids[code.name] = str(path.relative_to(HERE.parent))
    print(f"{name}: {steps} steps in {train_s:.0f} s; NMI(c0, predicted class) {agree['nmi']:.3f}, "
          f"matched accuracy {agree['matched_accuracy']:.1%}; FID {res['fid'].values['fid']:.2f}", flush=True)
    return {"run": name, "family": "infogan", "settings": spec, "steps": steps, "train_seconds": round(train_s, 1),
            "n_samples": n, "class_names": list(fam.spec.class_names), **agree,
            "pass_nmi": agree["nmi"] >= MIN_NMI, "fid": res["fid"].values["fid"], "kid": res["kid"].values["kid"],
            "provenance": res["fid"].provenance.to_dict(), "sweep_grids": grids}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    known = [r for r in SETTINGS if SETTINGS[r]["family"] in FAMILIES]
    ap.add_argument("--runs", nargs="+", default=known, choices=known)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--n", type=int, default=10000, help="generated samples (split evenly over the classes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting of every run, e.g. model.latent_dim=16 or train.lr_g=1e-3")
    ap.add_argument("--tag", default="", help="suffix for run folders and the default JSON name")
    ap.add_argument("--out", help="JSON results (default: bench/results/conditional_<run>.json for one run, "
                    "bench/results/conditional.json for several)")
    args = ap.parse_args()
    data = load_builtin("fashion-mnist")
    extractor = load_extractor("fashion")
    real = real_set(load_builtin("fashion-mnist", split="test"), extractor, args.n, seed=args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = [run_one(f, args.steps, args.n, data, extractor, real, args.seed, args.overrides, args.tag) for f in args.runs]
    doc = {"benchmark": "conditional", "command": " ".join([Path(sys.executable).name, *sys.argv]),
           "bar": f"requested-class accuracy (fashion classifier) >= {MIN_ACCURACY:.0%} averaged over classes; "
                  f"infogan: NMI(c0, predicted class) >= {MIN_NMI}",
           "results": results,
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads": torch.get_num_threads()},
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.out is None:
        name = f"conditional_{args.runs[0]}{args.tag}.json" if len(args.runs) == 1 else f"conditional{args.tag}.json"
        args.out = str(HERE / "results" / name)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
