"""Training speed: DCGAN 64x64, batch 64, through the ganforge trainer vs a plain PyTorch loop.

Both arms train the same networks (`ganforge.nn.DCGANGenerator` / `DCGANDiscriminator`, latent 100,
width 64) with Adam(2e-4, (0.5, 0.999)) and the non-saturating loss, on Fashion-MNIST resized to
64x64x1, in one process, with the same number of torch threads. Timed rounds alternate between the
arms (the order rotates every round), so drift on a shared machine hits both alike; each figure is the
median images/s over the rounds, with min and max.

- "ganforge": `build_run(...)` then `Trainer.fit()` for `--steps` more steps per round, as a user runs it:
  defaults of the trainer (EMA of G, grad-norm logging, spread/accuracy stats), the health monitor and
  the JSONL logger (every 10 steps); no progress bar, TensorBoard, sample grids or checkpoints.
- "plain": the canonical 20-line loop (the PyTorch DCGAN example): a batch by indexing the same uint8
  store + float conversion, one G forward, D on real and on fake.detach(), D step, G step through D(fake).
- "data": `Loader.next_batch()` alone (index gather of uint8 + float conversion).

Acceptance: ganforge >= 0.95x plain images/s in fp32; bf16 autocast (+ channels_last) figures reported;
the data pipeline delivers >= 5x the fastest training images/s. Both training arms' FLOPs per step are
counted too (torch's FlopCounterMode), a noise-free check that they do the same work.

    .venv/bin/python bench/speed.py            # full
    .venv/bin/python bench/speed.py --quick    # smoke check: 2 rounds x 1 step
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ganforge import __version__, config
from ganforge.data import Loader, TensorData, load_data
from ganforge.nn import DCGANDiscriminator, DCGANGenerator
from ganforge.train import HealthMonitor, MetricsLogger, build_run

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, SIZE, CHANNELS, LATENT, WIDTH = 64, (64, 64), 1, 100, 64
MIN_RATIO_FP32 = 0.95
MIN_DATA_RATIO = 5.0


# -- the plain loop -------------------------------------------------------------------------------
def plain_arm(images: torch.Tensor, amp: bool, channels_last: bool, seed: int) -> Callable[[int], None]:
    """A closure running n steps of the plain loop (its own nets and optimizers, built once)."""
    torch.manual_seed(seed)
    G = DCGANGenerator(LATENT, (CHANNELS, *SIZE), WIDTH)
    D = DCGANDiscriminator((CHANNELS, *SIZE), WIDTH)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    def run(n: int) -> None:
        for _ in range(n):
            real = images[torch.randint(len(images), (BATCH,))].float().mul_(2 / 255).sub_(1)  # (N, 1, 64, 64)
            if channels_last:
                real = real.contiguous(memory_format=torch.channels_last)
            with cast():
                fake = G(torch.randn(BATCH, LATENT))
                opt_d.zero_grad(set_to_none=True)
                loss_d = F.softplus(-D(real).float()).mean() + F.softplus(D(fake.detach()).float()).mean()
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            with cast():
                loss_g = F.softplus(-D(fake).float()).mean()
            loss_g.backward()
            opt_g.step()

    return run


# -- the ganforge trainer -------------------------------------------------------------------------
def ganforge_arm(data: TensorData, amp: bool, channels_last: bool, seed: int, out: Path) -> Callable[[int], None]:
    cfg = config.from_dict({
        "family": "dcgan",
        "model": {"latent_dim": LATENT, "width": WIDTH, "loss": "ns"},
        "data": {"source": "builtin:fashion-mnist", "size": list(SIZE), "channels": CHANNELS},
        "train": {"steps": 0, "batch_size": BATCH, "amp": "bf16" if amp else "none",
                  "channels_last": channels_last, "seed": seed, "device": "cpu"},
        "log": {"log_every": 10, "sample_every": 0, "ckpt_every": 0, "tensorboard": False, "progress": False},
    })
    # The default callbacks minus Checkpointer and SampleGrid (they write files at fit start/end).
    callbacks = [HealthMonitor(cfg.health), MetricsLogger(cfg.log.log_every, tensorboard=False)]
    trainer = build_run(cfg, out, data=data, callbacks=callbacks)

    def run(n: int) -> None:
        trainer.cfg.train.steps = trainer.step + n
        trainer.fit()

    return run


def data_arm(data: TensorData, seed: int) -> Callable[[int], None]:
    loader = Loader(data, BATCH, seed=seed)

    def run(n: int) -> None:
        for _ in range(n):
            loader.next_batch()

    return run


# -- measurement ----------------------------------------------------------------------------------
def measure(arms: dict[str, tuple[Callable[[int], None], int]], rounds: int,
            warmup: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per round, each arm's images per wall second and per process-CPU second.

    arms: name -> (run, steps per round). The order rotates every round, so slow drift of the machine
    hits every arm alike; CPU seconds tell being descheduled (wall only) from doing more work (both).
    """
    for run, _ in arms.values():
        run(warmup)
    names = list(arms)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            run, steps = arms[name]
            c0, t0 = time.process_time(), time.perf_counter()
            run(steps)
            t1, c1 = time.perf_counter(), time.process_time()
            wall[name].append(steps * BATCH / (t1 - t0))
            cpu[name].append(steps * BATCH / max(c1 - c0, 1e-9))
        line = "  ".join(f"{n} {wall[n][-1]:7.1f}" for n in names)
        print(f"  round {r + 1}/{rounds}: {line}  img/s", flush=True)
    return wall, cpu


def gflop_per_step(run: Callable[[int], None]) -> float:
    """FLOPs of one step as counted by torch's FlopCounterMode (convolutions and matmuls): noise-free work."""
    counter = FlopCounterMode(display=False)
    with counter:
        run(1)
    return round(counter.get_total_flops() / 1e9, 2)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "max": round(max(values), 2), "per_round": [round(v, 2) for v in values]}


def ratio(speeds: dict[str, list[float]], num: str, den: str) -> dict[str, Any]:
    """Ratio of medians, and the per-round paired ratios (robust to slow drift)."""
    paired = [a / b for a, b in zip(speeds[num], speeds[den])]
    return {"of_medians": round(statistics.median(speeds[num]) / statistics.median(speeds[den]), 4),
            "paired": {k: (round(v, 4) if isinstance(v, float) else [round(x, 4) for x in v])
                       for k, v in spread(paired).items()}}


def machine(threads: int) -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": threads, "ganforge": __version__}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2, help="training steps per arm per round")
    p.add_argument("--rounds", type=int, default=12, help="interleaved timed rounds per precision")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per arm before the rounds")
    p.add_argument("--data-batches", type=int, default=300, help="Loader batches per round for the data arm")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for every arm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-flops", action="store_true", help="skip counting the FLOPs of one step per arm")
    p.add_argument("--quick", action="store_true", help="smoke check: 2 rounds x 1 step, 1 warm-up step")
    p.add_argument("--out", type=Path, default=RESULTS / "speed.json")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.warmup, args.data_batches = 1, 2, 1, 50
    return args


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start, load_start = time.perf_counter(), _load()
    data = load_data("builtin:fashion-mnist", size=SIZE, channels=CHANNELS)  # uint8 (60000, 1, 64, 64)
    print(f"data: {tuple(data.x.shape)} {data.x.dtype}; {args.threads} threads; "
          f"{args.rounds} rounds x {args.steps} steps per arm; load average {load_start}", flush=True)
    wall: dict[str, dict[str, list[float]]] = {}
    cpu: dict[str, dict[str, list[float]]] = {}
    gflop: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ganforge-speed-") as tmp:
        print("fp32 (eager, contiguous):", flush=True)
        arms = {"plain": (plain_arm(data.x, False, False, args.seed), args.steps),
                "ganforge": (ganforge_arm(data, False, False, args.seed, Path(tmp) / "fp32"), args.steps),
                "data": (data_arm(data, args.seed), args.data_batches)}
        wall["fp32"], cpu["fp32"] = measure(arms, args.rounds, args.warmup)
        if not args.no_flops:
            gflop = {name: gflop_per_step(run) for name, (run, _) in arms.items() if name != "data"}
        print("bf16 autocast + channels_last:", flush=True)
        arms = {"plain": (plain_arm(data.x, True, True, args.seed), args.steps),
                "ganforge": (ganforge_arm(data, True, True, args.seed, Path(tmp) / "bf16"), args.steps)}
        wall["bf16"], cpu["bf16"] = measure(arms, args.rounds, args.warmup)
    total_s = time.perf_counter() - t_start

    med = {(prec, arm): statistics.median(v) for prec, arms_ in wall.items() for arm, v in arms_.items()}
    fastest_train = max(med["fp32", "ganforge"], med["bf16", "ganforge"])
    data_ratio = med["fp32", "data"] / fastest_train
    ratios: dict[str, Any] = {
        "fp32_ganforge_over_plain": ratio(wall["fp32"], "ganforge", "plain"),
        "bf16_ganforge_over_plain": ratio(wall["bf16"], "ganforge", "plain"),
        "bf16_over_fp32_ganforge": round(med["bf16", "ganforge"] / med["fp32", "ganforge"], 3),
        "bf16_over_fp32_plain": round(med["bf16", "plain"] / med["fp32", "plain"], 3),
        "data_over_fastest_training": round(data_ratio, 2),
        "data_over_fp32_training": round(med["fp32", "data"] / med["fp32", "ganforge"], 2),
        "cpu_time_fp32_ganforge_over_plain": ratio(cpu["fp32"], "ganforge", "plain"),
        "cpu_time_bf16_ganforge_over_plain": ratio(cpu["bf16"], "ganforge", "plain"),
    }
    results = {
        "bench": "speed",
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else f"speed.main({argv})",
        "quick": args.quick,
        "setup": {
            "model": f"DCGAN G/D from ganforge.nn, latent {LATENT}, width {WIDTH}, BatchNorm",
            "image": [CHANNELS, *SIZE], "batch": BATCH,
            "data": "builtin:fashion-mnist resized to 64x64, 1 channel, uint8 in memory",
            "optimizer": "Adam(2e-4, betas=(0.5, 0.999))", "loss": "non-saturating (ns)",
            "steps_per_round": args.steps, "data_batches_per_round": args.data_batches,
            "rounds": args.rounds, "warmup_steps": args.warmup,
            "ganforge": "build_run + Trainer.fit; EMA 0.999, grad-norm logs, HealthMonitor, JSONL log every "
                        "10 steps; no progress bar, TensorBoard, sample grids or checkpoints",
            "plain": "canonical loop: one G forward per step reused for the D and G steps",
            "bf16": "torch.autocast(cpu, bfloat16) + channels_last in both arms (ganforge: train.amp=bf16, "
                    "train.channels_last=true)",
        },
        "images_per_s": {prec: {arm: spread(v) for arm, v in arms_.items()} for prec, arms_ in wall.items()},
        "images_per_cpu_s": {prec: {arm: spread(v) for arm, v in arms_.items()} for prec, arms_ in cpu.items()},
        "gflop_per_step_fp32": gflop,
        "ratios": ratios,
        "pass": {"fp32_ratio_ge_0.95": ratios["fp32_ganforge_over_plain"]["of_medians"] >= MIN_RATIO_FP32,
                 "data_ge_5x_training": data_ratio >= MIN_DATA_RATIO},
        "seed": args.seed, "threads": args.threads, "total_wall_s": round(total_s, 1),
        "load_average_1min": {"start": load_start, "end": _load()},
        "machine": machine(args.threads), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    print()
    for prec, arms_ in wall.items():
        for arm, v in arms_.items():
            sp = spread(v)
            print(f"{prec} {arm:<12} {sp['median']:9.1f} img/s  (min {sp['min']:.1f}, max {sp['max']:.1f})")
    for key, r in ratios.items():
        if isinstance(r, dict):
            p = r["paired"]
            print(f"{key}: {r['of_medians']:.3f} (per-round pairs min {p['min']:.3f}, median {p['median']:.3f}, "
                  f"max {p['max']:.3f})")
    if gflop:
        print("GFLOP per fp32 step: " + ", ".join(f"{k} {v}" for k, v in gflop.items()))
    print(f"data pipeline {med['fp32', 'data']:.0f} img/s = {data_ratio:.1f}x the fastest training "
          f"({fastest_train:.1f} img/s)")
    print(f"pass: {results['pass']}; total {total_s:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
