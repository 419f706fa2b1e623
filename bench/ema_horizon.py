"""How far back should the EMA generator average? A paired probe: one training run, several EMA copies of G.

`ganforge train ...` runs in this process, exactly as the command would (the CLI's own code path, the recipe it
picks), with extra EMA copies of G updated after the trainer's own at every G update, each with another warm-up
constant w (train.ema_warmup): at update k a copy averages about the last k / (w - 1) updates until its decay cap
is reached, and the extra copies have none (decay 1 - 1e-7), so w alone sets their horizon. The trainer's own
copy keeps the run's settings (w 10 and decay 0.999 by default: about the last k / 9 updates up to k = 8,990).
Because all copies average one and the same trajectory of G, their differences are the EMA horizon's alone, not
a seed's or the machine load's.

At the end the trainer writes each extra copy as its EMA generator, with BatchNorm statistics of the copy's own
weights, to RUN_wW/checkpoints/step_N (the run's final state otherwise); then
`ganforge evaluate --ckpt CKPT --split train --features clipart --metrics kid,swd --n 2000` measures the run's
own checkpoint and every copy.

    .venv/bin/python bench/ema_horizon.py --warmups 2 3 5 10 -- --data builtin:clipart:transportation \
        --size 100 --family fastgan --seed 2 --out bench/results/runs/ema_horizon/fastgan_s2 --quiet
    .venv/bin/python bench/ema_horizon.py --warmups 2 10 -- --data builtin:clipart:transportation --size 100 \
        --family fastgan --time 20s --out /tmp/eh/smoke --quiet --n 100     # smoke check

(a copy with w 10 reproduces the trainer's own copy bit for bit while the run stays below 8,990 G updates: a
check of the probe itself, reported as `control_max_abs_diff`). --skip-train measures the copies an earlier call
left in --out. Results: bench/results/ema_horizon.json, one row per run directory (rows of other runs kept).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from precision_auto import cpu_name  # noqa: E402
from recipes import run_cli  # noqa: E402  (the same logged, timed `python -m ganforge` call)

ROOT = HERE.parent


def copy_dir(out: Path, w: float) -> Path:
    return out.parent / f"{out.name}_w{w:g}"


def train_with_copies(train_argv: list[str], warmups: list[float], out: Path) -> dict[str, Any]:
    """`ganforge train TRAIN_ARGV` in this process with one extra EMA copy of G per warm-up constant."""
    import ganforge.train.ema as ema_mod
    from ganforge.cli.main import main as cli_main
    from ganforge.train.trainer import Trainer

    copies: dict[float, Any] = {}
    owner: list[Any] = []  # the trainer's own EMA (the first one updated)
    trainers: list[Trainer] = []
    orig_update, orig_init = ema_mod.EMA.update, Trainer.__init__

    def update(self, source):
        if not owner:
            owner.append(self)
            for w in warmups:  # from the trainer's copy before its first update: G's initial weights
                copies[w] = ema_mod.EMA(self.module, decay=1.0 - 1e-7, warmup=w)
        orig_update(self, source)
        if self is owner[0]:
            for e in copies.values():
                orig_update(e, source)

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        trainers.append(self)

    ema_mod.EMA.update, Trainer.__init__ = update, init
    try:
        t0 = time.perf_counter()
        rc = cli_main(["train", *train_argv])
        wall = time.perf_counter() - t0
    finally:
        ema_mod.EMA.update, Trainer.__init__ = orig_update, orig_init
    if rc:
        raise SystemExit(f"ganforge train exited {rc}")
    tr = trainers[-1]
    for w, e in copies.items():  # the trainer writes each copy as its EMA (BatchNorm statistics re-estimated)
        dst = copy_dir(out, w)
        shutil.rmtree(dst, ignore_errors=True)
        tr.ema = e
        tr.save_checkpoint(dst, keep_last=1)
        shutil.copy(out / "config.json", dst / "config.json")
    return {"wall_s": round(wall, 1), "g_updates": owner[0].updates if owner else 0}


def control_diff(out: Path, w: float) -> float:
    """Largest |difference| between the run's own EMA weights and the extra copy of warm-up w."""
    from ganforge.checkpoint import latest_checkpoint, load_tensors

    a = load_tensors(latest_checkpoint(out), "ema.safetensors")
    b = load_tensors(latest_checkpoint(copy_dir(out, w)), "ema.safetensors")
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def measure(ckpt_run: Path, n: int, log: Path) -> dict[str, Any]:
    from ganforge.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(ckpt_run)
    res = ckpt_run.parent / f"{ckpt_run.name}.eval.json"
    words = ["ganforge", "evaluate", "--ckpt", str(ckpt), "--split", "train", "--features", "clipart",
             "--metrics", "kid,swd", "--n", str(n), "--out", str(res)]
    rc, _ = run_cli(words, log)
    if rc:
        raise SystemExit(f"ganforge evaluate exited {rc}: see {log}")
    r = json.loads(res.read_text())["results"]
    return {"step": int(ckpt.name.split("_")[1]), "kid": round(r["kid"]["values"]["kid"], 5),
            "kid_std": round(r["kid"]["values"]["kid_std"], 5), "swd_mean": round(r["swd"]["values"]["swd_mean"], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warmups", nargs="+", type=float, default=[2.0, 3.0, 5.0, 10.0],
                    help="warm-up constants of the extra EMA copies (each >= 2; default: 2 3 5 10)")
    ap.add_argument("--n", type=int, default=2000, help="samples for KID and SWD (default: 2,000)")
    ap.add_argument("--skip-train", action="store_true", help="measure the copies an earlier call left in --out")
    ap.add_argument("--results", default=str(HERE / "results" / "ema_horizon.json"))
    ap.add_argument("train", nargs=argparse.REMAINDER, help="-- then the arguments of `ganforge train` (--out required)")
    args = ap.parse_args()
    train_argv = [a for a in args.train if a != "--"]
    if "--out" not in train_argv:
        ap.error("give the training command's arguments after --, with --out RUN")
    out = Path(train_argv[train_argv.index("--out") + 1])
    info: dict[str, Any] = {}
    if not args.skip_train:
        info = train_with_copies(train_argv, args.warmups, out)
    log = out.parent / f"{out.name}.probe.log"
    row: dict[str, Any] = {"run": str(out), "train": "ganforge train " + " ".join(train_argv), **info,
                           "cpu": cpu_name(), "date": time.strftime("%Y-%m-%d"),
                           "trainer_ema": {"warmup": json.loads((out / "config.json").read_text())["train"].get(
                               "ema_warmup", 10.0), **measure(out, args.n, log)}}
    row["copies"] = [{"warmup": w, **measure(copy_dir(out, w), args.n, log)} for w in args.warmups]
    if row["trainer_ema"]["warmup"] in args.warmups:
        row["control_max_abs_diff"] = control_diff(out, row["trainer_ema"]["warmup"])
    print(json.dumps(row, indent=1))
    path = Path(args.results)
    doc = json.loads(path.read_text()) if path.exists() else {"bench": "ema_horizon", "what": __doc__.split("\n")[0],
                                                              "rows": []}
    doc["rows"] = [r for r in doc["rows"] if r["run"] != row["run"]] + [row]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
