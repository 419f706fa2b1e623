"""StarGAN on builtin:fmnist-shoes: does one generator move a shoe into each of the other two domains?

Trains `stargan` on the three shoe classes of Fashion-MNIST (sandal, sneaker, ankle boot; 18,000 28x28
training images) on one CPU thread, then translates every test image (1,000 per domain) into each
domain with the EMA generator and asks the shipped `fashion` classifier (Fashion-MNIST classes 5, 7, 9)
which class each translation is. Reported:

- the 3x3 accuracy matrix: row = source domain, column = target domain, entry = fraction of the
  translations the classifier assigns to the target. Bar: >= 70% for EVERY off-diagonal (source, target)
  pair. The diagonal (translating into the image's own domain) and the classifier's accuracy on the real
  test images (among the 10 classes) are given for context.
- reconstruction L1, |x - G(G(x, c), c')| averaged over pixels in [-1, 1] units, per pair;
- FID / KID (fashion-classifier features) of the translations into each domain against the real test
  images of that domain, and of the real test images of the other two domains as the "no translation"
  reference.

The figure bench/results/stargan_shoes.png has a row per input (4 per domain) and the columns input,
sandal, sneaker, ankle boot.

    .venv/bin/python bench/stargan.py                 # the benchmark -> bench/results/stargan.json
    .venv/bin/python bench/stargan.py --steps 200 --tag _smoke   # smoke check
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

from ganforge.config import apply_override, from_dict
from ganforge.data import load_builtin
from ganforge.image import save_grid
from ganforge.metrics.features import load as load_extractor
from ganforge.metrics.translation import class_indices, translation_fid
from ganforge.train import build_run

HERE = Path(__file__).parent
MIN_ACCURACY = 0.70
DATA = "builtin:fmnist-shoes"
# The paper's objective (WGAN-GP, lambda_gp 10, n_critic 5, lambda_cls 1, lambda_rec 10, Adam 1e-4,
# betas 0.5/0.999) on a network sized for 28 px and one CPU thread (see the module doc of the family).
SETTINGS = {
    "family": "stargan",
    "model": {"width": 32, "n_res": 3, "d_width": 64, "loss": "wgan-gp", "n_critic": 5,
              "lambda_cls": 1.0, "lambda_rec": 10.0, "gp_weight": 10.0},
    "data": {"source": DATA},
    "train": {"batch_size": 16, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5, "beta2": 0.999,
              "precision": "bf16", "channels_last": True},
    "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 50, "progress": False, "tensorboard": False},
}


@torch.no_grad()
def translate_all(fam, G, x: torch.Tensor, domain: int, batch: int = 500) -> torch.Tensor:
    return torch.cat([fam.translate(x[i:i + batch], domain=domain, net=G).float() for i in range(0, len(x), batch)])


def evaluate(fam, G, test, extractor, seed: int) -> tuple[dict, dict]:
    names = list(fam.spec.class_names)
    k = len(names)
    fashion_ids = class_indices(names)  # domain -> fashion class (5, 7, 9)
    if fashion_ids is None:
        raise ValueError(f"domains {names} are not Fashion-MNIST classes")
    x_all = test.to_float(test.x)
    by_domain = [x_all[test.y == d] for d in range(k)]
    real_pred = [extractor.logits(xs).argmax(1) for xs in by_domain]
    acc = [[0.0] * k for _ in range(k)]
    rec = [[None] * k for _ in range(k)]
    into: list[list[torch.Tensor]] = [[] for _ in range(k)]  # translations into each domain (from the others)
    for s in range(k):
        xs = by_domain[s]
        for t in range(k):
            fake = translate_all(fam, G, xs, t)
            pred = extractor.logits(fake).argmax(1)
            acc[s][t] = float((pred == fashion_ids[t]).float().mean())
            if t != s:
                back = translate_all(fam, G, fake, s)
                rec[s][t] = float((back - xs).abs().mean())
                into[t].append(fake)
    fids = {}
    for t in range(k):
        real_t = by_domain[t]
        others = torch.cat([by_domain[s] for s in range(k) if s != t])
        fids[names[t]] = {"translated": translation_fid(torch.cat(into[t]), real_t, extractor, seed=seed),
                          "untranslated_sources": translation_fid(others, real_t, extractor, seed=seed)}
    off = [acc[s][t] for s in range(k) for t in range(k) if s != t]
    result = {
        "domains": names, "fashion_classes": fashion_ids, "n_test_per_domain": [len(x) for x in by_domain],
        "accuracy_matrix": acc,
        "min_pair_accuracy": min(off), "mean_pair_accuracy": sum(off) / len(off),
        "pass": min(off) >= MIN_ACCURACY,
        "classifier_accuracy_on_real": [float((real_pred[d] == fashion_ids[d]).float().mean()) for d in range(k)],
        "reconstruction_l1": rec,
        "mean_reconstruction_l1": sum(r for row in rec for r in row if r is not None) / len(off),
        "fid": fids,
    }
    return result, {"by_domain": by_domain}


def figure(fam, G, by_domain, path: Path, per_domain: int = 4) -> Path:
    k = len(by_domain)
    x = torch.cat([xs[:per_domain] for xs in by_domain])  # rows: 4 inputs of each domain
    cols = [x] + [translate_all(fam, G, x, t) for t in range(k)]
    grid = torch.stack(cols, 1).flatten(0, 1)  # row-major: input, into domain 0, 1, 2
    return save_grid(grid, path, nrow=k + 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4000, help="trainer steps (D every step, G every n_critic-th)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting, e.g. model.loss=lsgan or train.batch_size=32")
    ap.add_argument("--tag", default="", help="suffix for the run folder, figure and JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    spec = json.loads(json.dumps(SETTINGS))
    spec["train"].update(steps=args.steps, seed=args.seed)
    for assignment in args.overrides:
        apply_override(spec, assignment)
    data = load_builtin("fmnist-shoes")
    test = load_builtin("fmnist-shoes", split="test")
    extractor = load_extractor("fashion")
    out = HERE / "results" / "runs" / f"stargan{args.tag}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    trainer = build_run(from_dict(spec), out, data=data).fit()
    train_s = time.perf_counter() - t0
    fam, G = trainer.family.eval(), trainer.generator.eval()
    t1 = time.perf_counter()
    result, held = evaluate(fam, G, test, extractor, args.seed)
    eval_s = time.perf_counter() - t1
    fig = figure(fam, G, held["by_domain"], HERE / "results" / f"stargan{args.tag}_shoes.png")
    logs = trainer.last_logs
    acc = result["accuracy_matrix"]
    names = result["domains"]
    print(f"{args.steps} steps in {train_s:.0f} s (eval {eval_s:.0f} s); "
          f"pair accuracy min {result['min_pair_accuracy']:.1%} mean {result['mean_pair_accuracy']:.1%}; "
          f"reconstruction L1 {result['mean_reconstruction_l1']:.3f}")
    print("source \\ target  " + "  ".join(f"{n:>10s}" for n in names))
    for s, row in enumerate(acc):
        print(f"{names[s]:>15s}  " + "  ".join(f"{a:10.1%}" for a in row))
    doc = {"benchmark": "stargan", "data": DATA, "command": " ".join([Path(sys.executable).name, *sys.argv]),
           "bar": f"fashion classifier assigns >= {MIN_ACCURACY:.0%} of translations to the target domain, "
                  "for every (source, target) pair of different domains",
           "settings": spec, "steps": args.steps, "g_updates": (args.steps + spec["model"]["n_critic"] - 1)
           // spec["model"]["n_critic"], "seed": args.seed, "train_seconds": round(train_s, 1),
           "eval_seconds": round(eval_s, 1), **result,
           "final_logs": {k: round(v, 4) for k, v in sorted(logs.items())},
           "figure": str(fig.relative_to(HERE.parent)), "figure_layout": "rows: 4 test inputs per domain; columns: "
           "input, then its translation into " + ", ".join(names),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "note": "2 shared cores; other jobs ran at the same time"},
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = HERE / "results" / f"stargan{args.tag}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path} and {fig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
