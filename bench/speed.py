"""Training speed: the ganforge trainer at its default precision vs a plain fp32 eager PyTorch loop.

Two setups, each with the same networks in every arm (`ganforge.nn.DCGANGenerator` /
`DCGANDiscriminator`, latent 100, width 64, BatchNorm), Adam(2e-4, (0.5, 0.999)), the non-saturating
loss, batch 64, in one process with the same number of torch threads:

- `64x64`: Fashion-MNIST resized to 64x64x1 (the pytorch/examples DCGAN shape);
- `28x28`: Fashion-MNIST at its own size (the ganforge demo's DCGAN).

Every arm runs in its own worker process (spawned, so no arm inherits another's allocator state, thread
pool or oneDNN caches), and the parent drives them one at a time, round by round (the order rotates every
round, so drift on a shared machine hits every arm alike); each figure is the median images/s over the
rounds, with min and max:

- `plain_fp32`: the canonical 20-line loop (the PyTorch DCGAN example), fp32, eager, contiguous:
  a batch by indexing the same uint8 store + float conversion, one G forward, D on real and on
  fake.detach(), D step, G step through D(fake), with the C library's malloc as it comes. The baseline
  of the acceptance ratio.
- `plain_fp32_malloc`: the same loop after `ganforge.train.memory.tune_malloc()` (what the trainer does
  on CPU): the baseline with ganforge's allocator setting, to show how much of the ratio that setting is.
- `plain_bf16_cl`: the same loop by hand under bf16 autocast with channels_last (what a careful user
  would write).
- `ganforge_fp32`: `build_run` + `Trainer.fit` with `train.precision=fp32 train.channels_last=false`
  (the trainer's own overhead against plain_fp32).
- `ganforge_default`: `build_run` + `Trainer.fit` with no speed settings at all (precision auto ->
  bf16 autocast here, channels_last): what a user gets.
- `data` (64x64 only): `Loader.next_batch()` alone (index gather of uint8 + float conversion).

Each worker also counts its minor page faults per step (getrusage): the cost `tune_malloc` removes.

The ganforge arms run as a user runs them: EMA of G, grad-norm logging, spread/accuracy stats, the
health monitor and the JSONL logger (every 10 steps); no progress bar, TensorBoard, grids or checkpoints.

Work: the FLOPs of one step of each arm are counted with torch.utils.flop_counter.FlopCounterMode
(convolutions and matmuls); achieved GFLOP/s = FLOPs per step x steps per second, set against this
machine's measured matmul peaks (square fp32 and bf16 matmuls of 2048 and 4096, best of several, at
the start and at the end of the run, same threads).

Acceptance: ganforge_default >= 2.0x plain_fp32 images/s at 64x64 (median of the per-round paired ratios).

    .venv/bin/python bench/speed.py            # full (~5 min)
    .venv/bin/python bench/speed.py --quick    # smoke check: 2 rounds x 1 step
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
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
from ganforge.train.memory import tune_malloc

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, CHANNELS, LATENT, WIDTH = 64, 1, 100, 64


# -- the plain loop -------------------------------------------------------------------------------
def plain_arm(images: torch.Tensor, amp: bool, channels_last: bool, seed: int) -> Callable[[int], None]:
    """A closure running n steps of the plain loop (its own nets and optimizers, built once)."""
    torch.manual_seed(seed)
    shape = (CHANNELS, *images.shape[-2:])
    G = DCGANGenerator(LATENT, shape, WIDTH)
    D = DCGANDiscriminator(shape, WIDTH)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    def run(n: int) -> None:
        for _ in range(n):
            real = images[torch.randint(len(images), (BATCH,))].float().mul_(2 / 255).sub_(1)  # (N, 1, H, W)
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
def ganforge_arm(data: TensorData, train: dict[str, Any], seed: int, out: Path) -> tuple[Callable[[int], None], str]:
    size = list(data.spec.shape[1:])
    cfg = config.from_dict({
        "family": "dcgan",
        "model": {"latent_dim": LATENT, "width": WIDTH, "loss": "ns"},
        "data": {"source": "builtin:fashion-mnist", "size": size, "channels": CHANNELS},
        "train": {"steps": 0, "batch_size": BATCH, "seed": seed, "device": "cpu", **train},
        "log": {"log_every": 10, "sample_every": 0, "ckpt_every": 0, "tensorboard": False, "progress": False},
    })
    # The default callbacks minus Checkpointer and SampleGrid (they write files at fit start/end).
    callbacks = [HealthMonitor(cfg.health), MetricsLogger(cfg.log.log_every, tensorboard=False)]
    trainer = build_run(cfg, out, data=data, callbacks=callbacks)

    def run(n: int) -> None:
        trainer.cfg.train.steps = trainer.step + n
        trainer.fit()

    return run, trainer.describe_speed()


def data_arm(data: TensorData, seed: int) -> Callable[[int], None]:
    loader = Loader(data, BATCH, seed=seed)

    def run(n: int) -> None:
        for _ in range(n):
            loader.next_batch()

    return run


def matmul_peaks(sizes: tuple[int, ...] = (2048, 4096), repeats: int = 5) -> dict[str, float]:
    """Best GFLOP/s of square n x n x n matmuls (2 n^3 FLOPs) in fp32 and bf16 over `sizes` and `repeats`."""
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        best = 0.0
        for n in sizes:
            a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
            a @ b  # warm-up (oneDNN primitive creation)
            for _ in range(repeats):
                t0 = time.perf_counter()
                a @ b
                best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
        out[name] = round(best, 1)
    return out


# -- measurement ----------------------------------------------------------------------------------
ARMS = ("plain_fp32", "plain_fp32_malloc", "plain_bf16_cl", "ganforge_fp32", "ganforge_default")
PEAK_OF = {"plain_fp32": "fp32", "plain_fp32_malloc": "fp32", "ganforge_fp32": "fp32",
           "plain_bf16_cl": "bf16", "ganforge_default": "bf16"}


def build_arm(arm: str, data: TensorData, seed: int, out: Path) -> tuple[Callable[[int], None], str]:
    """(run n steps, a description) for one arm, built in the process that will time it."""
    if arm == "data":
        return data_arm(data, seed), "Loader.next_batch()"
    if arm.startswith("plain_"):
        if arm == "plain_fp32_malloc":
            tune_malloc()
        bf16 = arm == "plain_bf16_cl"
        return plain_arm(data.x, bf16, bf16, seed), arm
    train = {"precision": "fp32", "channels_last": False} if arm == "ganforge_fp32" else {}
    return ganforge_arm(data, train, seed, out)


def worker(conn: Any, arm: str, size: tuple[int, int] | None, seed: int, threads: int, out: str) -> None:
    """One arm in its own process: build it, then answer the parent's ('run', n) / ('flops',) / ('quit',)."""
    torch.set_num_threads(threads)
    data = load_data("builtin:fashion-mnist", size=size, channels=CHANNELS)  # uint8 in memory
    run, line = build_arm(arm, data, seed, Path(out))
    serve_arm(conn, run, line, gflop_per_step)


def serve_arm(conn: Any, run: Callable[[int], None], line: str, flops: Callable[[Callable[[int], None]], Any]) -> None:
    """A worker's loop once its arm is built: answer ('run', n) with (wall s, CPU s, minor page faults),
    ('flops',) with flops(run), and stop on anything else."""
    import resource

    conn.send(("ready", line))
    while True:
        msg = conn.recv()
        if msg[0] == "run":
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0, t0 = time.process_time(), time.perf_counter()
            run(msg[1])
            t1, c1 = time.perf_counter(), time.process_time()
            conn.send((t1 - t0, c1 - c0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0))
        elif msg[0] == "flops":
            conn.send(flops(run))
        else:
            break


class Arms:
    """The worker processes of one setup, started together, driven one at a time."""

    def __init__(self, names: list[str], size: tuple[int, int] | None, seed: int, threads: int, tmp: Path) -> None:
        ctx = mp.get_context("spawn")
        self.conns, self.procs, self.lines = {}, {}, {}
        for name in names:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child, name, size, seed, threads, str(tmp / name)), daemon=True)
            proc.start()
            self.conns[name], self.procs[name] = parent, proc
        for name in self.conns:
            self.lines[name] = self._recv(name)[1]

    def _recv(self, name: str) -> Any:
        conn = self.conns[name]
        while not conn.poll(5):
            if not self.procs[name].is_alive():
                raise RuntimeError(f"the {name} worker died (exit code {self.procs[name].exitcode})")
        return conn.recv()

    def _ask(self, name: str, *msg: Any) -> Any:
        self.conns[name].send(msg)
        return self._recv(name)

    def run(self, name: str, steps: int) -> tuple[float, float, int]:
        return self._ask(name, "run", steps)

    def flops(self, name: str) -> float:
        return self._ask(name, "flops")

    def close(self) -> None:
        for conn in self.conns.values():
            with contextlib.suppress(OSError):
                conn.send(("quit",))
        for proc in self.procs.values():
            proc.join(30)
            if proc.is_alive():
                proc.kill()


def measure(arms: Arms, steps: dict[str, int], rounds: int, warmup: int
            ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """Per round, each arm's images per wall second and per CPU second of its process, and its minor
    page faults per step. The order rotates every round, so slow drift of the machine hits every arm
    alike; CPU seconds tell being descheduled (wall only) from doing more work (both)."""
    names = list(steps)
    for name in names:
        arms.run(name, warmup)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    faults: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            dt, dc, df = arms.run(name, steps[name])
            wall[name].append(steps[name] * BATCH / dt)
            cpu[name].append(steps[name] * BATCH / max(dc, 1e-9))
            faults[name].append(df / steps[name])
        line = "  ".join(f"{n} {wall[n][-1]:7.1f}" for n in names)
        print(f"  round {r + 1}/{rounds}: {line}  img/s", flush=True)
    return wall, cpu, faults


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


SETUPS = {"64x64": (64, 64), "28x28": None}
MIN_RATIO = 2.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start, load_start = time.perf_counter(), _load()
    peaks = matmul_peaks()
    print(f"matmul peaks (best of 2048^3 and 4096^3, {args.threads} threads): fp32 {peaks['fp32']} GFLOP/s, bf16 {peaks['bf16']} GFLOP/s",
          flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ganforge-speed-") as tmp:
        for setup, size in SETUPS.items():
            names = list(ARMS) + (["data"] if setup == "64x64" else [])
            print(f"{setup}: {len(names)} worker processes, {args.threads} threads each; "
                  f"{args.rounds} rounds x {args.steps} steps per arm", flush=True)
            arms = Arms(names, size, args.seed, args.threads, Path(tmp) / setup)
            try:
                speed_line = arms.lines["ganforge_default"]
                print(f"  ganforge default: {speed_line}", flush=True)
                steps = {n: (args.data_batches if n == "data" else args.steps) for n in names}
                wall, cpu, faults = measure(arms, steps, args.rounds, args.warmup)
                gflop = {} if args.no_flops else {n: arms.flops(n) for n in ARMS}
            finally:
                arms.close()
            med = {n: statistics.median(v) for n, v in wall.items()}
            achieved = {n: round(gflop[n] * med[n] / BATCH, 1) for n in gflop}
            ratios = {
                "ganforge_default_over_plain_fp32": ratio(wall, "ganforge_default", "plain_fp32"),
                "ganforge_default_over_plain_fp32_malloc": ratio(wall, "ganforge_default", "plain_fp32_malloc"),
                "ganforge_default_over_plain_bf16_cl": ratio(wall, "ganforge_default", "plain_bf16_cl"),
                "ganforge_fp32_over_plain_fp32": ratio(wall, "ganforge_fp32", "plain_fp32"),
                "plain_fp32_malloc_over_plain_fp32": ratio(wall, "plain_fp32_malloc", "plain_fp32"),
                "cpu_time_ganforge_default_over_plain_fp32": ratio(cpu, "ganforge_default", "plain_fp32"),
            }
            if "data" in med:
                ratios["data_over_ganforge_default"] = round(med["data"] / med["ganforge_default"], 2)
            results[setup] = {
                "image": [CHANNELS, *(size or (28, 28))], "ganforge_default": speed_line,
                "images_per_s": {n: spread(v) for n, v in wall.items()},
                "images_per_cpu_s": {n: spread(v) for n, v in cpu.items()},
                "minor_page_faults_per_step": {n: round(statistics.median(v), 1) for n, v in faults.items()},
                "gflop_per_step": gflop,
                "achieved_gflop_per_s": achieved,
                "ratios": ratios,
            }
    later = matmul_peaks()  # peaks again at the end: the best of both (a busy moment only lowers a peak)
    peaks = {k: max(v, later[k]) for k, v in peaks.items()}
    for r in results.values():
        r["fraction_of_matmul_peak"] = {n: round(v / peaks[PEAK_OF[n]], 3) for n, v in r["achieved_gflop_per_s"].items()}
    total_s = time.perf_counter() - t_start
    head = results["64x64"]["ratios"]["ganforge_default_over_plain_fp32"]
    # the median of the per-round paired ratios: a round slowed by a neighbour slows both arms of its pair
    headline = head["paired"]["median"]
    doc = {
        "bench": "speed",
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else f"speed.main({argv})",
        "quick": args.quick,
        "setup": {
            "model": f"DCGAN G/D from ganforge.nn, latent {LATENT}, width {WIDTH}, BatchNorm",
            "batch": BATCH, "data": "builtin:fashion-mnist (64x64 resized, and 28x28), 1 channel, uint8 in memory",
            "optimizer": "Adam(2e-4, betas=(0.5, 0.999))", "loss": "non-saturating (ns)",
            "steps_per_round": args.steps, "data_batches_per_round": args.data_batches,
            "rounds": args.rounds, "warmup_steps": args.warmup,
            "processes": "one spawned worker process per arm, driven one at a time by the parent",
            "plain_fp32": "canonical loop, fp32 eager, contiguous, the C library's malloc as it comes: the baseline",
            "plain_fp32_malloc": "the canonical fp32 loop after ganforge.train.memory.tune_malloc()",
            "plain_bf16_cl": "the canonical loop under torch.autocast(cpu, bfloat16) with channels_last",
            "ganforge_fp32": "build_run + Trainer.fit with train.precision=fp32, train.channels_last=false",
            "ganforge_default": "build_run + Trainer.fit with the default settings (precision auto, channels_last, "
                                "train.malloc auto)",
            "ganforge_callbacks": "EMA 0.999, grad-norm logs, HealthMonitor, JSONL log every 10 steps; no progress "
                                  "bar, TensorBoard, sample grids or checkpoints",
            "flops": "torch.utils.flop_counter.FlopCounterMode over one step of each arm",
        },
        "matmul_peak_gflop_per_s": peaks,
        "results": results,
        "acceptance": {"ganforge_default_over_plain_fp32_64x64": headline,
                       "statistic": "median over rounds of (ganforge_default / plain_fp32) measured in the same round",
                       "ratio_of_medians": head["of_medians"], "required": MIN_RATIO, "pass": headline >= MIN_RATIO},
        "seed": args.seed, "threads": args.threads, "total_wall_s": round(total_s, 1),
        "load_average_1min": {"start": load_start, "end": _load()},
        "machine": machine(args.threads), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")

    print()
    for setup, r in results.items():
        print(f"{setup}:")
        for arm, sp in r["images_per_s"].items():
            extra = (f"  {r['achieved_gflop_per_s'][arm]:7.1f} GFLOP/s ({r['gflop_per_step'][arm]} GFLOP/step, "
                     f"{100 * r['fraction_of_matmul_peak'][arm]:.0f}% of the {PEAK_OF[arm]} matmul peak)"
                     if arm in r["achieved_gflop_per_s"] else "")
            print(f"  {arm:<17} {sp['median']:8.1f} img/s  (min {sp['min']:.1f}, max {sp['max']:.1f}), "
                  f"{r['minor_page_faults_per_step'][arm]:.0f} page faults/step{extra}")
        for key, rr in r["ratios"].items():
            if isinstance(rr, dict):
                p = rr["paired"]
                print(f"  {key}: {rr['of_medians']:.3f} (per-round pairs min {p['min']:.3f}, median {p['median']:.3f}, "
                      f"max {p['max']:.3f})")
            else:
                print(f"  {key}: {rr}")
    print(f"acceptance: ganforge default / plain fp32 at 64x64 = {headline:.2f} (>= {MIN_RATIO}): "
          f"{doc['acceptance']['pass']}; total {total_s:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
