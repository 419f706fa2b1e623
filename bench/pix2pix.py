"""pix2pix vs its "L1 only" U-Net baseline on builtin:fmnist-edges2items (Isola et al. 2017, Table 1's ablation).

Two arms with the same U-Net (width 64, 28-14-7-3-1), the same steps, batch 64, seed, Adam(2e-4, (0.5, 0.999)),
bf16 autocast + channels_last, one torch thread:
- `l1`:      the U-Net trained on lambda * L1 alone (model.adversarial=false), no discriminator;
- `pix2pix`: the same U-Net + a PatchGAN on (edges, item) pairs, non-saturating cGAN loss + lambda * L1 (lambda 100).
Each arm's EMA generator (what `Sampler.from_checkpoint` loads; translation in eval mode) translates the 10,000
edge maps of the test split. Reported per arm: FID and KID of the translations against the 10,000 real test
items (the shipped `fashion` classifier's features), L1 / PSNR / SSIM against each edge map's own item, and the
classifier's accuracy on the translations (does the item keep its class?). The raw (non-EMA) generator's
figures are kept too, and FID of 10,000 real training items vs the test items as the floor.

Bars: FID(pix2pix) < FID(l1), and L1(pix2pix) <= 1.5 x L1(l1).
Figure: bench/results/pix2pix_edges2items.png, rows edges / L1 only / pix2pix / real, two test items per class.

    .venv/bin/python bench/pix2pix.py                # both arms, --steps each -> bench/results/pix2pix.json
    .venv/bin/python bench/pix2pix.py --quick        # smoke check (40 steps, 1,000 test images, no figure)
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

from ganforge.artifacts.sampler import Sampler
from ganforge.config import from_dict
from ganforge.data import load_data
from ganforge.data import load_builtin
from ganforge.image import save_grid
from ganforge.metrics.features import fashion
from ganforge.metrics.translation import domain_accuracy, l1, psnr, ssim, translation_fid
from ganforge.train import build_run

HERE = Path(__file__).parent
DATA = "builtin:fmnist-edges2items"
ARMS = {"l1": {"adversarial": False}, "pix2pix": {"adversarial": True}}
MAX_L1_RATIO = 1.5
STEPS = 500  # measured on the shared 2-core machine, 1 thread: pix2pix arm 234-536 s (~200 CPU s), l1 arm 110-440 s


def train_arm(arm: str, steps: int, width: int, seed: int, data, tag: str) -> tuple[Path, dict, float, float]:
    spec = {"family": "pix2pix", "model": {"width": width, "d_width": width, **ARMS[arm]}, "data": {"source": DATA},
            "train": {"steps": steps, "batch_size": 64, "precision": "bf16", "channels_last": True, "seed": seed},
            "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 50, "progress": False, "tensorboard": False}}
    out = HERE / "results" / "runs" / f"pix2pix_{arm}{tag}"
    shutil.rmtree(out, ignore_errors=True)
    t0, cpu0 = time.perf_counter(), time.process_time()
    trainer = build_run(from_dict(spec), out, data=data).fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"{arm}: {steps} steps in {wall:.0f} s ({wall / max(steps, 1):.2f} s/step, {cpu:.0f} CPU s); last logs "
          + ", ".join(f"{k} {v:.3g}" for k, v in trainer.last_logs.items() if k.rsplit("/", 1)[-1] in
                      ("loss", "l1", "adv", "acc_real", "acc_fake")), flush=True)
    return out, spec, wall, cpu


def evaluate(run: Path, x: torch.Tensor, target: torch.Tensor, y: torch.Tensor, extractor, ema: bool,
             seed: int) -> tuple[dict, torch.Tensor]:
    t0 = time.perf_counter()
    fake = Sampler.from_checkpoint(run, ema=ema).translate(x)
    dist = translation_fid(fake, target, extractor, seed=seed)
    return {"fid": dist["fid"], "kid": dist["kid"], "l1": l1(fake, target), "psnr": psnr(fake, target),
            "ssim": ssim(fake, target), "class_accuracy": domain_accuracy(fake, y, extractor),
            "eval_seconds": round(time.perf_counter() - t0, 1)}, fake


def figure_columns(y: torch.Tensor, per_class: int = 2) -> torch.Tensor:
    """Indices of the first `per_class` test items of every class, class by class."""
    return torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in range(int(y.max()) + 1)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=STEPS, help="training steps of each arm")
    ap.add_argument("--width", type=int, default=64, help="U-Net and PatchGAN base width (64 in the paper)")
    ap.add_argument("--n-test", type=int, default=10000, help="test pairs to translate and score")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smoke check: 40 steps, 1,000 test images, no figure")
    ap.add_argument("--out", default=str(HERE / "results" / "pix2pix.json"))
    args = ap.parse_args()
    if args.quick:
        args.steps, args.n_test = 40, 1000
    torch.set_num_threads(args.threads)
    tag = "_quick" if args.quick else ""

    t_all, load_start = time.perf_counter(), os.getloadavg()
    train = load_data(DATA)
    test = load_builtin("fmnist-edges2items", split="test")
    n = min(args.n_test, len(test.x))
    x, target, y = test.to_float(test.x[:n]), test.to_float(test.x_b[:n]), test.y[:n]
    extractor = fashion()

    results: dict[str, dict] = {}
    fakes: dict[str, torch.Tensor] = {}
    for arm in ARMS:
        run, spec, wall, cpu = train_arm(arm, args.steps, args.width, args.seed, train, tag)
        ema_metrics, fakes[arm] = evaluate(run, x, target, y, extractor, True, args.seed)
        raw_metrics, _ = evaluate(run, x, target, y, extractor, False, args.seed)
        results[arm] = {**ema_metrics, "train_seconds": round(wall, 1), "train_cpu_seconds": round(cpu, 1),
                        "seconds_per_step": round(wall / args.steps, 3),
                        "raw_generator": raw_metrics, "settings": spec}
        print(f"{arm}: FID {ema_metrics['fid']:.2f}, L1 {ema_metrics['l1']:.4f}, PSNR {ema_metrics['psnr']:.2f} dB, "
              f"SSIM {ema_metrics['ssim']:.3f}, class accuracy {ema_metrics['class_accuracy']:.1%} "
              f"(raw G: FID {raw_metrics['fid']:.2f}, L1 {raw_metrics['l1']:.4f})", flush=True)

    g = torch.Generator().manual_seed(args.seed)
    floor_idx = torch.randperm(len(train.x_b), generator=g)[:n]
    floor = translation_fid(train.to_float(train.x_b[floor_idx]), target, extractor, seed=args.seed)
    real_acc = domain_accuracy(target, y, extractor)

    p2p, base = results["pix2pix"], results["l1"]
    passes = {"fid_pix2pix_below_l1": p2p["fid"] < base["fid"],
              "l1_pix2pix_within_1.5x_l1": p2p["l1"] <= MAX_L1_RATIO * base["l1"]}
    figure = None
    if not args.quick:
        cols = figure_columns(y)
        grid = torch.cat([x[cols], fakes["l1"][cols], fakes["pix2pix"][cols], target[cols]])
        figure = save_grid(grid, HERE / "results" / "pix2pix_edges2items.png", nrow=len(cols))
    doc = {
        "benchmark": "pix2pix",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
        "data": DATA, "seed": args.seed, "steps": args.steps, "batch_size": 64, "width": args.width,
        "n_test": n,
        "bar": f"FID(pix2pix) < FID(l1 only); L1(pix2pix) <= {MAX_L1_RATIO} x L1(l1 only) (EMA generators, test split)",
        "pass": passes,
        "fid": {arm: r["fid"] for arm, r in results.items()},
        "l1": {arm: r["l1"] for arm, r in results.items()},
        "l1_ratio_pix2pix_over_l1": p2p["l1"] / base["l1"],
        "results": results,
        "reference": {"fid_train_items_vs_test_items": floor["fid"], "kid_train_items_vs_test_items": floor["kid"],
                      "class_accuracy_real_test_items": real_acc},
        "provenance": {**extractor.provenance(), "reference": "fmnist-edges2items test split, domain B (items)"},
        "figure": str(Path(figure).relative_to(HERE.parent)) if figure else None,
        "figure_rows": ["edges (input)", "L1 only", "pix2pix", "real item"],
        "wall_seconds": round(time.perf_counter() - t_all, 1),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "load_average_start": load_start, "load_average_end": os.getloadavg()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"pass: {passes}\nwrote {args.out}" + (f" and {figure}" if figure else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
