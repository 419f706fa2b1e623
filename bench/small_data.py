"""Small data: does discriminator augmentation help when there are only 100 or 1,000 training images?

Fashion-MNIST subsets (a seeded, class-balanced draw from the training split) are written as PNG folders under
bench/results/runs/small_data/, the way a user's folder would arrive. For each subset size, family and
augmentation (none, DiffAugment, ADA) this bench types the command a user would:

    ganforge train --data FOLDER --family F --augment A --steps S --out RUN

(the folder recipe that matches supplies the other settings; --steps is the same for every run, so the runs
differ only in augmentation), then measures FID and KID of 10,000 EMA samples against the 10,000 Fashion-MNIST
test images with the shipped `fashion` features (`ganforge evaluate --data builtin:fashion-mnist --split test`).
The issue's bar: at 1,000 images the best augmented run's FID is at least 30% below the unaugmented one, for
each family.

    .venv/bin/python bench/small_data.py                                 # every run (long)
    .venv/bin/python bench/small_data.py --sizes 1000 --families dcgan   # a part
    .venv/bin/python bench/small_data.py --steps 200 --sizes 100 --out /tmp/sd.json   # smoke check

--full adds the same runs on the whole training split (60,000 images: `--data builtin:fashion-mnist --channels 3`,
RGB as a folder of PNGs loads, with `--recipe` naming the recipe the 1,000-image folder takes, so that only the
number of images differs): the FID a run reaches with 60 times the data, a yardstick for what augmentation on
1,000 images stands in for. Its rows have "images": 60000; `--sizes` with no number runs the full split only.

    .venv/bin/python bench/small_data.py --sizes --families dcgan --augments none --steps 24000 --full

Results: bench/results/small_data.json (rows of earlier runs of other settings are kept).
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
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from precision_auto import cpu_name  # noqa: E402
from recipes import run_cli  # noqa: E402  (the same logged, timed `python -m ganforge` call)
ROOT = HERE.parent
RUNS = HERE / "results" / "runs" / "small_data"
AUGMENTS = ("none", "diffaugment", "ada")
BAR = 0.30  # the best augmented FID at least 30% below the unaugmented one


def make_folder(n: int, seed: int = 0) -> Path:
    """n Fashion-MNIST training images, n // 10 per class (seeded), as 28x28 grey PNGs in one flat folder."""
    from PIL import Image

    from ganforge.data import load_builtin

    folder = RUNS / f"fmnist{n}"
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    data = load_builtin("fashion-mnist")
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(10):
        idx = (data.y == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[: n // 10]])
    for i, j in enumerate(torch.cat(picks).sort().values.tolist()):
        Image.fromarray(data.x[j, 0].numpy(), mode="L").save(folder / f"{i:05d}.png")
    done.write_text(str(n))
    return folder


FULL = 60000  # the whole Fashion-MNIST training split


def full_split_words(family: str) -> list[str]:
    """--data, --channels and --recipe of a run on the whole training split with the settings a 1,000-image folder
    gets (a folder loads as RGB: three equal channels for these grey PNGs)."""
    from ganforge.recipes import select

    recipe = select("folder", family, None, n_images=1000)
    return ["--data", "builtin:fashion-mnist", "--channels", "3", "--recipe", recipe.name if recipe else "none"]


def one_run(folder: Path | None, family: str, augment: str, steps: int, n_eval: int) -> dict[str, Any]:
    """One run on a subset folder, or (folder None) on the whole training split."""
    name = folder.name if folder is not None else f"fmnist{FULL}"
    run = RUNS / f"{name}_{family}_{augment}"
    shutil.rmtree(run, ignore_errors=True)
    log = RUNS / f"{run.name}.log"
    log.unlink(missing_ok=True)
    data = ["--data", str(folder.relative_to(ROOT))] if folder is not None else full_split_words(family)
    words = ["ganforge", "train", *data, "--family", family, "--augment", augment,
             "--steps", str(steps), "--out", str(run.relative_to(ROOT)), "--quiet"]
    rc, wall = run_cli(words, log)
    row: dict[str, Any] = {"images": int(name.removeprefix("fmnist")), "family": family, "augment": augment,
                           "steps": steps, "command": " ".join(words), "wall_s": round(wall, 1),
                           "log": str(log.relative_to(ROOT)), "date": time.strftime("%Y-%m-%d"),
                           "cpu": cpu_name()}
    if rc:
        return {**row, "error": f"ganforge train exited {rc}"}
    cfg = json.loads((run / "config.json").read_text())
    row["recipe"] = cfg.get("recipe", "")
    out = run / "eval.json"
    rc, _ = run_cli(["ganforge", "evaluate", "--ckpt", str(run.relative_to(ROOT)), "--data", "builtin:fashion-mnist",
                     "--split", "test", "--features", "fashion", "--metrics", "fid,kid", "--n", str(n_eval),
                     "--out", str(out.relative_to(ROOT))], log)
    if rc:
        return {**row, "error": f"ganforge evaluate exited {rc}"}
    res = json.loads(out.read_text())["results"]
    row.update(fid=round(res["fid"]["values"]["fid"], 3), kid=round(res["kid"]["values"]["kid"], 4))
    logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    rts = [r["d/rt"] for r in logs if "d/rt" in r]
    ps = [r["aug/p"] for r in logs if "aug/p" in r]
    if rts:
        row["final_rt"] = round(float(np.mean(rts[-20:])), 3)
    if ps:
        row["final_p"] = round(ps[-1], 3)
    row["health"] = [e["message"][:160] for e in logs if e.get("event") == "health"]
    return row


def verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bar per (images, family, steps): augmentation is compared with none at equal steps only."""
    out = []
    for n, fam, steps in sorted({(r["images"], r["family"], r["steps"]) for r in rows}):
        group = {r["augment"]: r for r in rows
                 if (r["images"], r["family"], r["steps"]) == (n, fam, steps) and "fid" in r}
        if n == FULL or "none" not in group or len(group) < 2:
            continue
        best = min((r for a, r in group.items() if a != "none"), key=lambda r: r["fid"])
        gain = 1 - best["fid"] / group["none"]["fid"]
        out.append({"images": n, "family": fam, "steps": steps, "fid_none": group["none"]["fid"],
                    "best_augment": best["augment"], "fid_best": best["fid"], "reduction": round(gain, 3),
                    "pass": gain >= BAR if n == 1000 else None})
    return out


def data_gains(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (family, steps) with an unaugmented run on both: how far below the 1,000-image run's FID the whole
    training split (60x the images, same recipe and steps) reaches. Augmentation stands in for data it does not
    have, so this is about the most it can be expected to recover at these steps."""
    none = {(r["images"], r["family"], r["steps"]): r["fid"] for r in rows if r["augment"] == "none" and "fid" in r}
    return [{"family": fam, "steps": steps, "fid_1000": none[(1000, fam, steps)], "fid_full_split": fid,
             "reduction": round(1 - fid / none[(1000, fam, steps)], 3)}
            for (n, fam, steps), fid in sorted(none.items()) if n == FULL and (1000, fam, steps) in none]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", type=int, default=[100, 1000],
                    help="subset sizes (default: 100 1000); none: only --full")
    ap.add_argument("--families", nargs="+", default=["dcgan", "stylegan"])
    ap.add_argument("--augments", nargs="+", default=list(AUGMENTS), choices=AUGMENTS)
    ap.add_argument("--steps", type=int, default=4000, help="steps of every run (default: 4000)")
    ap.add_argument("--n", type=int, default=10000, help="samples for FID/KID (default: 10,000)")
    ap.add_argument("--full", action="store_true",
                    help="also train on the whole training split (60,000 images) with the 1,000-image folder's recipe")
    ap.add_argument("--out", default=str(HERE / "results" / "small_data.json"))
    args = ap.parse_args()
    if FULL in args.sizes:
        ap.error(f"--sizes {FULL} is the whole training split: pass --full instead")
    sizes = [*args.sizes, *([FULL] if args.full else [])]
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    keep = [r for r in doc.get("runs", []) if not (r["images"] in sizes and r["family"] in args.families
                                                    and r["augment"] in args.augments and r["steps"] == args.steps)]
    rows = list(keep)
    for n in sizes:
        folder = make_folder(n) if n != FULL else None
        for fam in args.families:
            for aug in args.augments:
                row = one_run(folder, fam, aug, args.steps, args.n)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("command", "log", "health")}), flush=True)
                doc.update({
                    "bench": "small_data",
                    "command": " ".join([Path(sys.executable).name, *sys.argv]),
                    "what": "Fashion-MNIST subsets as PNG folders; ganforge train --augment none/diffaugment/ada at "
                            "equal steps; FID/KID (fashion features) of EMA samples vs the 10,000 test images",
                    "bar": "at 1,000 images the best augmented FID >= 30% below the unaugmented one, per family",
                    "runs": sorted(rows, key=lambda r: (r["images"], r["family"], r["augment"], r["steps"])),
                    "verdicts": verdicts(rows),
                    "full_split": data_gains(rows),
                    "machine": {"platform": platform.platform(), "processor": platform.processor(),
                                "cpus": os.cpu_count(), "torch": torch.__version__},
                    "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                })
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(doc, indent=1) + "\n")
    for v in [*doc.get("verdicts", []), *doc.get("full_split", [])]:
        print(json.dumps(v))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
