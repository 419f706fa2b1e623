"""The cars stand-in: 100x100 images from 279 clip-art drawings of vehicles, each family for the same CPU budget.

For each family this bench types the commands a user would (the recipe that matches builtin:clipart and the
family supplies every other setting, its 20-minute time budget included; the first line of the run's log names
it; --time T adds `--time T` to the command):

    ganforge train --data builtin:clipart:transportation --size 100 --family F --out RUN
    ganforge evaluate --ckpt RUN --split train --features clipart --metrics kid,swd,memorisation --n 2000
    ganforge sample --ckpt RUN --n 64 --seed 0 --out docs/cars-F-CPU.png

KID and SWD compare 2,000 EMA samples with the 279 training drawings (the folder a user has; the 31 held-out
drawings are too few for KID), in the shipped `clipart` features (KID) and on pixels (SWD). The memorisation
check measures each sample's distance to its nearest training drawing against the held-out drawings' (ratio
below 1: samples sit closer to the training set than new drawings do). The issue's bar: the best of the new
families (stylegan, fastgan) reaches a KID at most half of dcgan's at the same budget.

    .venv/bin/python bench/cars.py                                  # fastgan, stylegan, dcgan, 20 minutes each
    .venv/bin/python bench/cars.py --families fastgan --time 3m --out /tmp/cars.json   # a quick look
    .venv/bin/python bench/cars.py --families fastgan dcgan --seeds 1 2 3               # more seeds

A 20-minute KID on 279 drawings spreads 2-4x between seeds of one recipe, so one run per family decides little.
`--seeds` adds `--seed S` to the train command (the default run is seed 0, the train default) and keeps a row
per seed; the verdict of a budget and CPU model compares each new family's mean KID with dcgan's over the seeds
the two have, lists the per-seed KIDs and ratios beside it, and names the new family with the lowest ratio.
Grids under docs/ come from seed-0 runs only.

Results: bench/results/cars.json (rows of other families, budgets and CPU models are kept: a budget in minutes
buys 3-4x more steps on some CPUs than on others, so the bar compares rows of one CPU model); grids
docs/cars-F-CPU.png and docs/cars-F-nearest-CPU.png (samples beside their nearest training drawings), CPU as in
`intel-xeon`, `amd-epyc`, `amd-epyc-avx2` (`precision_auto.cpu_name`: the model name, with the vector ISA when
it is below AVX512).
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
from precision_auto import cpu_name, cpu_slug  # noqa: E402
from recipes import run_cli  # noqa: E402  (the same logged, timed `python -m ganforge` call)
ROOT = HERE.parent
RUNS = HERE / "results" / "runs" / "cars"
DOCS = ROOT / "docs"
DATA = "builtin:clipart:transportation"
NEW = ("fastgan", "stylegan", "progan")


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def budget_label(time_arg: str | float | None) -> str:
    """The budget as a row records it, in minutes: "20m" for the recipes' 20 minutes (no --time), "0.5m" for
    --time 30s, "60m" for --time 1h; one_run labels each row by its run's train.time (seconds) the same way."""
    from ganforge.config import parse_duration

    return "20m" if time_arg is None else f"{parse_duration(time_arg) / 60:g}m"


def one_run(family: str, budget: str | None, n_eval: int, size: str, seed: int = 0) -> dict[str, Any]:
    run = RUNS / (f"{family}_{budget or 'recipe'}" + (f"_s{seed}" if seed else ""))
    shutil.rmtree(run, ignore_errors=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    log = RUNS / f"{run.name}.log"
    log.unlink(missing_ok=True)
    words = ["ganforge", "train", "--data", DATA, "--size", size, "--family", family,
             *(["--time", budget] if budget else []), *(["--seed", str(seed)] if seed else []),
             "--out", rel(run), "--quiet"]
    rc, wall = run_cli(words, log)
    row: dict[str, Any] = {"family": family, "budget": budget_label(budget), "size": size, "seed": seed,
                           "command": " ".join(words), "wall_s": round(wall, 1), "log": rel(log), "cpu": cpu_name()}
    if rc:
        return {**row, "error": f"ganforge train exited {rc}"}
    cfg = json.loads((run / "config.json").read_text())
    row["recipe"] = cfg.get("recipe", "")
    row["budget"] = budget_label(cfg["train"]["time"])
    row["augment"] = cfg.get("train", {}).get("augment", "")
    logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in logs if "step" in r and "event" not in r]
    row["steps"] = max(steps) if steps else 0
    batch = cfg.get("train", {}).get("batch_size", 0)
    row["images_shown"] = row["steps"] * batch
    row["s_per_step"] = round(cfg["train"]["time"] / row["steps"], 3) if row["steps"] else None
    rts = [r["d/rt"] for r in logs if "d/rt" in r]
    ps = [r["aug/p"] for r in logs if "aug/p" in r]
    if rts:
        row["final_rt"] = round(float(np.mean(rts[-20:])), 3)
    if ps:
        row["final_p"] = round(ps[-1], 3)
    row["health"] = [e["message"][:160] for e in logs if e.get("event") == "health"]

    out = run / "bench_eval.json"
    eval_words = ["ganforge", "evaluate", "--ckpt", rel(run), "--split", "train", "--features", "clipart",
                  "--metrics", "kid,swd,memorisation", "--n", str(n_eval), "--out", rel(out)]
    rc, _ = run_cli(eval_words, log)
    row["eval_command"] = " ".join(eval_words)
    if rc:
        return {**row, "error": f"ganforge evaluate exited {rc}"}
    res = json.loads(out.read_text())["results"]
    row["kid"] = round(res["kid"]["values"]["kid"], 5)
    row["kid_std"] = round(res["kid"]["values"].get("kid_std", float("nan")), 5)
    row["swd"] = {k: round(v, 3) for k, v in res["swd"]["values"].items()}
    row["memorisation"] = {k: (round(v, 4) if isinstance(v, float) else v)
                           for k, v in res["memorisation"]["values"].items()}

    if seed:
        return row  # docs/ shows the seed-0 runs
    slug = cpu_slug()
    grid = DOCS / f"cars-{family}-{slug}.png"
    rc, _ = run_cli(["ganforge", "sample", "--ckpt", rel(run), "--n", "64", "--seed", "0", "--out", rel(grid)], log)
    if rc:
        return {**row, "error": f"ganforge sample exited {rc}"}
    row["grid"] = rel(grid)
    pairs = out.with_suffix(".memorisation.png")  # evaluate writes the closest pairs beside its --out
    if pairs.exists():
        dst = DOCS / f"cars-{family}-nearest-{slug}.png"
        shutil.copyfile(pairs, dst)
        row["nearest"] = rel(dst)
    return row


def verdict(rows: list[dict[str, Any]], budget: str, cpu: str) -> dict[str, Any] | None:
    """The bar at one budget, from rows trained on one CPU model (a budget in minutes buys 3-4x more steps on
    some CPUs than on others, so rows from different machines are not compared). Each new family is compared with
    dcgan over the seeds both have (a row without "seed" is seed 0): mean KID against mean KID; the verdict is the
    new family with the lowest ratio."""
    kids: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.get("budget") == budget and r.get("cpu", "") == cpu and "kid" in r:
            kids.setdefault(r["family"], {})[int(r.get("seed", 0))] = r["kid"]
    if "dcgan" not in kids:
        return None
    compared = {}
    for fam in (f for f in kids if f in NEW):
        seeds = sorted(set(kids[fam]) & set(kids["dcgan"]))
        if not seeds:
            continue
        ours, base = float(np.mean([kids[fam][s] for s in seeds])), float(np.mean([kids["dcgan"][s] for s in seeds]))
        compared[fam] = {"seeds": seeds, "kid": round(ours, 5), "kids": [kids[fam][s] for s in seeds],
                         "dcgan_kid": round(base, 5), "dcgan_kids": [kids["dcgan"][s] for s in seeds],
                         "per_seed_ratio": [round(kids[fam][s] / kids["dcgan"][s], 3) for s in seeds],
                         "ratio": round(ours / base, 3) if base > 0 else float("inf")}
    if not compared:
        return None
    best = min(compared, key=lambda f: compared[f]["ratio"])
    b = compared[best]
    return {"budget": budget, "cpu": cpu, "best_new": best, "seeds": b["seeds"], "best_kid": b["kid"],
            "best_kids": b["kids"], "dcgan_kid": b["dcgan_kid"], "dcgan_kids": b["dcgan_kids"],
            "per_seed_ratio": b["per_seed_ratio"], "ratio": b["ratio"], "pass": b["ratio"] <= 0.5,
            "families": compared}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", nargs="+", default=["fastgan", "stylegan", "dcgan"])
    ap.add_argument("--time", help="training budget of every run (default: the recipe's, 20 minutes)")
    ap.add_argument("--size", default="100", help="image size (default: 100)")
    ap.add_argument("--n", type=int, default=2000, help="samples for KID/SWD/memorisation (default: 2,000)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0],
                    help="train each family once per seed (--seed S; default: 0 only)")
    ap.add_argument("--out", default=str(HERE / "results" / "cars.json"))
    args = ap.parse_args()
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    here = cpu_name()  # a rerun replaces this CPU model's rows only; other machines' rows are kept
    label = budget_label(args.time)  # rows store the budget as the run's config has it ("0.5m" for --time 30s)
    rows = [r for r in doc.get("runs", []) if not (r["family"] in args.families and r["budget"] == label
                                                   and r.get("cpu", "") == here and r.get("seed", 0) in args.seeds)]
    for seed, fam in [(s, f) for s in args.seeds for f in args.families]:
        row = one_run(fam, args.time, args.n, args.size, seed)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("command", "eval_command", "log", "health")}),
              flush=True)
        doc.update({
            "bench": "cars",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "what": f"{DATA} at {args.size}x{args.size}: ganforge train --time per family with the recipe it "
                    "picks; KID (clipart features) and SWD of EMA samples vs the 279 training drawings; "
                    "memorisation (nearest training drawing vs held-out drawings)",
            "bar": "the best new family's KID <= half of dcgan's at the same budget",
            "runs": sorted(rows, key=lambda r: (r["budget"], r["family"], r.get("cpu", ""), r.get("seed", 0))),
            "verdicts": [v for b, c in sorted({(r["budget"], r.get("cpu", "")) for r in rows})
                         if (v := verdict(rows, b, c))],
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cpus": os.cpu_count(), "torch": torch.__version__},
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        })
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
    for v in doc.get("verdicts", []):
        print(json.dumps(v))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
