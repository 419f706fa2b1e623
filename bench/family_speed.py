"""Training speed of the progan, stylegan and fastgan families: the ganforge trainer vs a plain PyTorch loop.

For each family, three arms train the same networks (built by the family from its default model settings,
seeded alike) on Fashion-MNIST at 32x32 grey, batch 64, Adam at the train defaults (2e-4, betas (0.5, 0.999)),
each in its own spawned worker process with the same number of torch threads, driven round by round by the
parent with the order rotating every round (bench/speed.py's design, whose helpers this script imports):

- `plain_fp32`: a hand-written loop, fp32, eager, contiguous, torch.optim.Adam as it comes and the C library's
  malloc as it comes, doing the work of one default trainer step of the family:
  a batch by indexing the uint8 store + float conversion; one G forward whose graph D's phase and G's phase
  share; D on the reals and on the detached fakes, D's loss, backward, Adam step; then G's loss through D with
  D's parameters frozen (the trainer skips D's weight gradients in G's phase), backward, Adam step; then the
  EMA of G (decay 0.999, warmed up as the trainer's). Per family:
  - progan at its last level fully faded in (model.stable_kimg = model.fade_kimg = 0 in the trainer, which
    trains the target level from the first step; the plain loop sets G to that level): WGAN-GP (lambda 10 on
    random interpolates, in its own double backward) + drift 0.001 E[D(x)^2] on the reals; n_critic 1;
  - stylegan: the non-saturating loss; style mixing (p 0.9: a second latent and a per-sample crossover layer),
    fresh noise maps, w_avg tracked; lazy R1 (gamma 0.01) as its own D step every 16 steps, weighted x16, D's
    Adam at lr x 16/17 and betas ** (16/17) (the trainer's lazy-regulariser setting);
  - fastgan: the hinge loss + D's L1 reconstruction of the reals (the whole image from D's smallest map, a
    random quadrant from the map before it), spectral norm and BatchNorm in D as the family builds them.
- `plain_fp32_tuned` (only with --arms): the plain loop with Adam(fused=True) and
  `ganforge.train.memory.tune_malloc()`, the two CPU settings the trainer applies at no cost: against it,
  ganforge_fp32 shows the trainer's bookkeeping alone.
- `ganforge_fp32`: `build_run` + `Trainer.fit` with train.precision=fp32, train.channels_last=false: the
  trainer's own overhead against plain_fp32 (acceptance: >= 0.95x, the median of the per-round paired ratios).
- `ganforge_default`: `build_run` + `Trainer.fit` with no speed settings (precision auto: bf16 autocast on a
  CPU with native bf16, channels_last): what a user gets; its speed-up over plain_fp32 is reported.

The ganforge arms run as bench/speed.py's do: EMA of G, grad-norm logs, D's accuracy / spread stats, the health
monitor and the JSONL logger (every 10 steps); no progress bar, TensorBoard, grids or checkpoints.

Equal work is checked, not assumed: torch's FlopCounterMode counts the convolution and matmul FLOPs of the
first two steps of every arm (step 0 runs stylegan's lazy R1, step 1 does not); the plain and ganforge arms
must agree, operator by operator (`flops_match`). Those two counted steps are also the first warm-up steps.
Every arm runs the same step indices in the same round. stylegan times 16 steps per round (its r1_every), so each
round holds exactly one lazy R1 step and measures the average step, R1 included (R1 adds ~45% of an ordinary
step's FLOPs every 16th step); progan times 2 steps and fastgan 8 per round (~1-3 s windows on 2 cores).

Why Fashion-MNIST at 32x32 grey and the train default batch 64: a power-of-two size runs every family's default
networks at full depth (progan's and stylegan's levels 4, 8, 16, 32; fastgan's two decoders) with steps of
~0.2-1 s on 2 quiet cores (fastgan, stylegan, progan in fp32), so 10 rounds of 3 arms x 3 families take a few
minutes. 64x64 RGB (builtin:clipart) has 4x the pixels and one more level: ~4-5x the time for the same comparison.

    .venv/bin/python bench/family_speed.py                                  # full (~6 min on 2 quiet cores)
    .venv/bin/python bench/family_speed.py --quick --families progan        # timing smoke check (batch 8)
    .venv/bin/python bench/family_speed.py --quick --flops-only --families progan   # FLOP check alone
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402  (bench/speed.py: Arms, serve_arm, ratio, spread, machine, _load)

from ganforge import config  # noqa: E402
from ganforge.data import TensorData, load_data  # noqa: E402
from ganforge.families import get_family  # noqa: E402
from ganforge.nn.fastgan import quadrant, resized  # noqa: E402
from ganforge.train import HealthMonitor, MetricsLogger, build_run  # noqa: E402
from ganforge.train.memory import tune_malloc  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
FAMILIES = ("progan", "stylegan", "fastgan")
SOURCE, SIZE, CHANNELS, BATCH = "builtin:fashion-mnist", (32, 32), 1, 64
LR, BETAS, EMA_DECAY = 2e-4, (0.5, 0.999), 0.999  # the train.* defaults the families keep
# model.* overrides: progan trains its last level, fully faded in, from the first step
MODEL = {"progan": {"stable_kimg": 0.0, "fade_kimg": 0.0}, "stylegan": {}, "fastgan": {}}
# steps per arm per round: ~1-3 s timing windows on 2 cores; stylegan's 16 = r1_every, so every round holds exactly
# one lazy R1 step (any 16 consecutive steps do) and times the average step, R1 included
STEPS = {"progan": 2, "stylegan": 16, "fastgan": 8}
ARMS = ("plain_fp32", "ganforge_fp32", "ganforge_default")
OPTIONAL_ARMS = ("plain_fp32_tuned",)
MIN_RATIO = 0.95


# -- the plain loops ------------------------------------------------------------------------------
def _nets(name: str, data: TensorData, seed: int) -> tuple[Any, nn.Module, nn.Module]:
    """(family config, G, D): the family's own networks from its default model settings, seeded as build_run
    seeds them (torch.manual_seed before any weight is drawn)."""
    torch.manual_seed(seed)
    cls = get_family(name)
    fam = cls(cls.make_config(MODEL[name]), data.spec)
    return fam.cfg, fam.G, fam.D


def plain_arm(name: str, data: TensorData, seed: int, tuned: bool, batch: int) -> tuple[Callable[[int], None], str]:
    """A closure running n steps of the family's plain loop (its own nets and optimizers, built once)."""
    cfg, G, D = _nets(name, data, seed)
    G.train()
    D.train()
    images = data.x
    # stylegan's lazy R1 steps D's Adam too: Karras et al. 2020's lr * c, betas ** c with c = k / (k + 1)
    lazy = name == "stylegan" and cfg.r1_weight > 0 and cfg.r1_every > 1
    c = cfg.r1_every / (cfg.r1_every + 1) if lazy else 1.0
    opt_g = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS, fused=tuned or None)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR * c, betas=(BETAS[0] ** c, BETAS[1] ** c), fused=tuned or None)
    ema = copy.deepcopy(G).eval().requires_grad_(False)
    state = {"step": 0, "ema_updates": 0}

    def real_batch() -> Tensor:
        return images[torch.randint(len(images), (batch,))].float().mul_(2 / 255).sub_(1)

    def update_ema() -> None:
        k = state["ema_updates"]
        d = min(EMA_DECAY, (1 + k) / (10 + k))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), G.parameters()):
                pe.lerp_(p, 1.0 - d)
            for be, b in zip(ema.buffers(), G.buffers()):
                be.copy_(b)
        state["ema_updates"] = k + 1

    def g_step(loss_of_fake: Callable[[], Tensor]) -> None:
        opt_g.zero_grad(set_to_none=True)
        D.requires_grad_(False)  # D has stepped: no weight gradients for it in G's phase
        try:
            loss_of_fake().backward()
        finally:
            D.requires_grad_(True)
        opt_g.step()

    if name == "progan":
        G.set_progress(G.top, 1.0)  # the target level, fully faded in

        def step() -> None:
            real = real_batch()
            fake = G(torch.randn(batch, cfg.latent_dim), full=False)  # graph kept for G's phase
            opt_d.zero_grad(set_to_none=True)
            real_logits, fake_logits = D(real), D(fake.detach())
            a = torch.rand(batch, 1, 1, 1)
            x_hat = (a * real + (1 - a) * fake.detach()).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
            loss_d = (fake_logits.mean() - real_logits.mean() + cfg.gp_weight * gp
                      + cfg.drift * real_logits.pow(2).mean())
            loss_d.backward()
            opt_d.step()
            g_step(lambda: -D(fake).mean())

    elif name == "stylegan":
        num_ws, shapes = G.num_ws, G.synthesis.noise_shapes

        def step() -> None:
            real = real_batch()
            z, z2 = torch.randn(batch, cfg.latent_dim), torch.randn(batch, cfg.latent_dim)
            cut = torch.randint(1, num_ws, (batch,))
            cutoff = torch.where(torch.rand(batch) < cfg.mixing, cut, torch.full_like(cut, num_ws))
            noise = [torch.randn(batch, 1, *s) for s in shapes]
            fake = G(z, 1.0, noise, z2=z2, cutoff=cutoff, track=True)  # graph kept for G's phase
            opt_d.zero_grad(set_to_none=True)
            loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
            loss_d.backward()
            opt_d.step()
            if lazy and state["step"] % cfg.r1_every == 0:  # lazy R1: its own D step, weighted x r1_every
                opt_d.zero_grad(set_to_none=True)
                x = real.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
                r1 = grad.flatten(1).pow(2).sum(1).mean()
                (cfg.r1_every * 0.5 * cfg.r1_weight * r1).backward()
                opt_d.step()
            g_step(lambda: F.softplus(-D(fake)).mean())

    elif name == "fastgan":

        def step() -> None:
            real = real_batch()
            fake = G(torch.randn(batch, cfg.latent_dim))  # graph kept for G's phase
            opt_d.zero_grad(set_to_none=True)
            real_logits, small, mid = D.forward_with_maps(real)
            fake_logits = D.forward_with_maps(fake.detach())[0]
            whole = D.decode_whole(small)
            q = int(torch.randint(4, ()))
            part = D.decode_part(quadrant(mid, q))
            recon = (F.l1_loss(whole, resized(real, tuple(whole.shape[-2:])))
                     + F.l1_loss(part, resized(quadrant(real, q), tuple(part.shape[-2:]))))
            loss_d = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean() + cfg.recon_weight * recon
            loss_d.backward()
            opt_d.step()
            g_step(lambda: -D.forward_with_maps(fake)[0].mean())

    else:
        raise ValueError(f"no plain loop for '{name}'; choose from {', '.join(FAMILIES)}")

    def run(n: int) -> None:
        for _ in range(n):
            step()
            update_ema()
            state["step"] += 1

    what = "fused Adam, tune_malloc" if tuned else "torch.optim.Adam, system malloc"
    return run, f"plain loop, fp32 eager, contiguous, {what}"


# -- the ganforge trainer -------------------------------------------------------------------------
def ganforge_arm(name: str, data: TensorData, train: dict[str, Any], seed: int, batch: int, out: Path
                 ) -> tuple[Callable[[int], None], str]:
    cfg = config.from_dict({
        "family": name,
        "model": dict(MODEL[name]),
        "data": {"source": SOURCE, "size": list(SIZE), "channels": CHANNELS},
        "train": {"steps": 0, "batch_size": batch, "seed": seed, "device": "cpu", **train},
        "log": {"log_every": 10, "sample_every": 0, "ckpt_every": 0, "tensorboard": False, "progress": False},
    })
    # the default callbacks minus Checkpointer and SampleGrid (they write files at fit start/end)
    callbacks = [HealthMonitor(cfg.health), MetricsLogger(cfg.log.log_every, tensorboard=False)]
    trainer = build_run(cfg, out, data=data, callbacks=callbacks)
    fam = trainer.family
    line = trainer.describe_speed()
    if name == "progan":
        top = len(fam.levels) - 1
        if fam.schedule(0) != (top, 1.0):
            raise RuntimeError(f"progan does not start at its last level: schedule(0) = {fam.schedule(0)}")
        h, w = fam.levels[top]
        line += f"; progan level {top} ({h}x{w}) fully faded in from step 0"

    def run(n: int) -> None:
        trainer.cfg.train.steps = trainer.step + n
        trainer.fit()

    return run, line


def build_arm(family: str, arm: str, data: TensorData, seed: int, batch: int, out: Path
              ) -> tuple[Callable[[int], None], str]:
    if arm.startswith("plain_"):
        tuned = arm == "plain_fp32_tuned"
        if tuned:
            tune_malloc()
        return plain_arm(family, data, seed, tuned, batch)
    train = {"precision": "fp32", "channels_last": False} if arm == "ganforge_fp32" else {}
    return ganforge_arm(family, data, train, seed, batch, out)


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker: its backward hooks on module inputs fail inside
    autograd.grad on a leaf (WGAN-GP's and R1's double backward: "A leaf node was passed to
    _will_engine_execute_node"), and only the global count is wanted here."""

    parents = ("Global",)

    def __enter__(self) -> "_GlobalOnly":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def gflop_by_op(run: Callable[[int], None]) -> dict[str, float]:
    """GFLOP of the next step per operator (convolutions and matmuls, torch's FlopCounterMode), with "total"."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()  # global counts only (see _GlobalOnly)
    with counter:
        run(1)
    by_op = {str(op): round(n / 1e9, 3) for op, n in sorted(counter.get_flop_counts().get("Global", {}).items(),
                                                             key=lambda kv: str(kv[0]))}
    return {"total": round(counter.get_total_flops() / 1e9, 3), **by_op}


def flop_counts(run: Callable[[int], None]) -> dict[str, dict[str, float]]:
    """GFLOP per operator of each of the next two steps (step 0 runs stylegan's lazy R1, step 1 does not)."""
    return {"step_0": gflop_by_op(run), "step_1": gflop_by_op(run)}


def worker(conn: Any, family: str, arm: str, seed: int, batch: int, threads: int, out: str) -> None:
    """One arm in its own process: build it, then answer ('run', n) / ('flops',) / ('quit',)."""
    torch.set_num_threads(threads)
    data = load_data(SOURCE, size=SIZE, channels=CHANNELS)  # uint8 in memory
    run, line = build_arm(family, arm, data, seed, batch, Path(out))
    speed.serve_arm(conn, run, line, flop_counts)


class FamilyArms(speed.Arms):
    """bench/speed.py's Arms (one spawned worker per arm, driven one at a time) for one family's arms."""

    def __init__(self, family: str, names: list[str], seed: int, batch: int, threads: int, tmp: Path) -> None:
        ctx = mp.get_context("spawn")
        self.conns, self.procs, self.lines = {}, {}, {}
        for name in names:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child, family, name, seed, batch, threads, str(tmp / name)),
                               daemon=True)
            proc.start()
            self.conns[name], self.procs[name] = parent, proc
        for name in self.conns:
            self.lines[name] = self._recv(name)[1]


def measure(arms: FamilyArms, names: list[str], steps: int, rounds: int, warmup: int, batch: int
            ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """Per round, each arm's images per wall second and per CPU second, and minor page faults per step; the
    order rotates every round (as bench/speed.py's measure, at this script's batch size)."""
    if warmup:
        for name in names:
            arms.run(name, warmup)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    faults: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            dt, dc, df = arms.run(name, steps)
            wall[name].append(steps * batch / dt)
            cpu[name].append(steps * batch / max(dc, 1e-9))
            faults[name].append(df / steps)
        line = "  ".join(f"{n} {wall[n][-1]:6.1f}" for n in names)
        print(f"    round {r + 1}/{rounds}: {line}  img/s", flush=True)
    return wall, cpu, faults


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, from " + ", ".join(FAMILIES))
    p.add_argument("--arms", default=",".join(ARMS),
                   help=f"comma-separated, from {', '.join(ARMS + OPTIONAL_ARMS)} (plain_fp32 is required)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per arm per round (default per family: "
                        + ", ".join(f"{f} {n}" for f, n in STEPS.items()) + "; --quick: 1)")
    p.add_argument("--rounds", type=int, default=10, help="interleaved timed rounds per family")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per arm after the two FLOP-counted steps")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for every arm")
    p.add_argument("--batch", type=int, default=None, help=f"batch size (default {BATCH}; --quick: 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-flops", action="store_true", help="skip counting FLOPs (then --warmup is all the warm-up)")
    p.add_argument("--flops-only", action="store_true", help="only count and compare the FLOPs of steps 0 and 1")
    p.add_argument("--quick", action="store_true",
                   help="smoke check of the timing: batch 8, no FLOP count, 1 warm-up step, 2 rounds x 1 step "
                        "(an explicit --batch / --steps is kept)")
    p.add_argument("--out", type=Path, default=RESULTS / "family_speed.json")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.warmup = args.steps or 1, 2, 1
        args.no_flops = args.no_flops or not args.flops_only
    if args.flops_only and args.no_flops:
        p.error("--flops-only counts FLOPs: drop --no-flops")
    if args.batch is None:
        args.batch = 8 if args.quick else BATCH
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for f in args.families:
        if f not in FAMILIES:
            p.error(f"unknown family '{f}'; choose from {', '.join(FAMILIES)}")
    for a in args.arms:
        if a not in ARMS + OPTIONAL_ARMS:
            p.error(f"unknown arm '{a}'; choose from {', '.join(ARMS + OPTIONAL_ARMS)}")
    if "plain_fp32" not in args.arms:
        p.error("--arms must include plain_fp32 (every ratio is against it)")
    return args


def _relative(path: Path) -> str:
    """A path as the JSON records it: relative to the repository when inside it, else its name only."""
    path = path.resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return path.name


def _clean_argv(argv: list[str]) -> list[str]:
    """The command line as the JSON records it: absolute paths made relative to the repository (see _relative)."""
    out = []
    for a in argv:
        if a.startswith("--out="):
            a = "--out=" + _relative(Path(a[len("--out="):]))
        elif a.startswith("/"):
            a = _relative(Path(a))
        out.append(a)
    return out


def run_family(family: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    names = list(args.arms)
    steps = args.steps or STEPS[family]
    plan = "FLOPs only" if args.flops_only else f"{args.rounds} rounds x {steps} steps per arm"
    print(f"{family}: {len(names)} worker processes, {args.threads} threads each; {plan}, batch {args.batch}",
          flush=True)
    t0 = time.perf_counter()
    arms = FamilyArms(family, names, args.seed, args.batch, args.threads, tmp / family)
    try:
        for n in names:
            print(f"  {n}: {arms.lines[n]}", flush=True)
        gflop = {}
        if not args.no_flops:
            t = time.perf_counter()
            gflop = {n: arms._ask(n, "flops") for n in names}
            print(f"  FLOPs of steps 0 and 1 counted in {time.perf_counter() - t:.0f} s: "
                  + ", ".join(f"{n} {g['step_0']['total']}/{g['step_1']['total']}" for n, g in gflop.items())
                  + " GFLOP", flush=True)
        if not args.flops_only:
            wall, cpu, faults = measure(arms, names, steps, args.rounds, args.warmup, args.batch)
    finally:
        arms.close()
    flops_match = None
    if gflop:
        ref = gflop["plain_fp32"]  # every arm's per-operator counts within 0.5% of the plain loop's, both steps
        flops_match = all(set(g[s]) == set(ref[s]) and all(abs(g[s][k] - v) <= 0.005 * max(v, 1e-3)
                                                            for k, v in ref[s].items())
                          for g in gflop.values() for s in ref)
        print(f"  FLOPs per operator equal across arms (steps 0 and 1): {flops_match}", flush=True)
    if args.flops_only:
        return {"arms": {n: arms.lines[n] for n in names}, "gflop_per_step": gflop, "flops_match": flops_match,
                "acceptance": None, "wall_s": round(time.perf_counter() - t0, 1)}
    med = {n: statistics.median(v) for n, v in wall.items()}
    ratios: dict[str, Any] = {f"{n}_over_plain_fp32": speed.ratio(wall, n, "plain_fp32") for n in names
                              if n != "plain_fp32"}
    if "ganforge_default" in names:
        ratios["cpu_time_ganforge_default_over_plain_fp32"] = speed.ratio(cpu, "ganforge_default", "plain_fp32")
    if {"ganforge_fp32", "plain_fp32_tuned"} <= set(names):
        ratios["ganforge_fp32_over_plain_fp32_tuned"] = speed.ratio(wall, "ganforge_fp32", "plain_fp32_tuned")
    achieved = {n: round(gflop[n]["step_1"]["total"] * med[n] / args.batch, 1) for n in gflop}
    head = None  # the acceptance statistic unrounded (speed.spread rounds the pairs to 2 decimals)
    if "ganforge_fp32" in names:
        head = round(statistics.median(a / b for a, b in zip(wall["ganforge_fp32"], wall["plain_fp32"])), 4)
    return {
        "arms": {n: arms.lines[n] for n in names},
        "images_per_s": {n: speed.spread(v) for n, v in wall.items()},
        "images_per_cpu_s": {n: speed.spread(v) for n, v in cpu.items()},
        "minor_page_faults_per_step": {n: round(statistics.median(v), 1) for n, v in faults.items()},
        "gflop_per_step": gflop, "flops_match": flops_match,
        "achieved_gflop_per_s": achieved,
        "ratios": ratios,
        "acceptance": None if head is None else {
            "ganforge_fp32_over_plain_fp32": head, "required": MIN_RATIO, "pass": head >= MIN_RATIO},
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start, load_start = time.perf_counter(), speed._load()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ganforge-family-speed-") as tmp:
        for family in args.families:
            results[family] = run_family(family, args, Path(tmp))
    total_s = time.perf_counter() - t_start
    accept = {f: r["acceptance"] for f, r in results.items()}
    doc = {
        "bench": "family_speed",
        "command": " ".join(["python", "bench/family_speed.py", *_clean_argv(sys.argv[1:] if argv is None else argv)]),
        "quick": args.quick, "flops_only": args.flops_only,
        "setup": {
            "data": f"{SOURCE} at {SIZE[0]}x{SIZE[1]}, {CHANNELS} channel, uint8 in memory", "batch": args.batch,
            "models": {f: f"the family's default model settings{' + ' + json.dumps(MODEL[f]) if MODEL[f] else ''}"
                       for f in args.families},
            "optimizer": f"Adam({LR}, betas={BETAS}); stylegan's D at lr x 16/17, betas ** (16/17) (lazy R1)",
            "ema": f"EMA of G, decay {EMA_DECAY} (warm-up (1 + k) / (10 + k)), in every arm",
            "steps_per_round": {f: args.steps or STEPS[f] for f in args.families}, "rounds": args.rounds,
            "warmup_steps": args.warmup,
            "flop_counted_steps": 0 if args.no_flops else 2,
            "processes": "one spawned worker process per arm, driven one at a time by the parent; order rotates",
            "plain_fp32": "hand-written loop of the family's step (see the script's docstring), fp32 eager, "
                          "contiguous, torch.optim.Adam defaults, system malloc: the baseline",
            "plain_fp32_tuned": "the plain loop with Adam(fused=True) and tune_malloc()",
            "ganforge_fp32": "build_run + Trainer.fit with train.precision=fp32, train.channels_last=false",
            "ganforge_default": "build_run + Trainer.fit with the default settings (precision auto, channels_last, "
                                "train.malloc auto)",
            "ganforge_callbacks": "EMA, grad-norm logs, HealthMonitor, JSONL log every 10 steps; no progress bar, "
                                  "TensorBoard, sample grids or checkpoints",
            "flops": "torch.utils.flop_counter.FlopCounterMode over steps 0 and 1 of each arm (stylegan's lazy R1 "
                     "runs at step 0), per operator; flops_match: every arm's counts within 0.5% of plain_fp32's; "
                     "achieved GFLOP/s from step 1's total",
            "statistic": "images/s per arm: median (min, max) over rounds; ratios: median over rounds of the "
                         "per-round pair (and the ratio of medians)",
        },
        "results": results,
        "acceptance": {"statistic": "median over rounds of (ganforge_fp32 / plain_fp32) measured in the same round",
                       "required": MIN_RATIO, "per_family": accept,
                       "pass": None if args.flops_only else all(a is not None and a["pass"] for a in accept.values())},
        "seed": args.seed, "threads": args.threads, "total_wall_s": round(total_s, 1),
        "load_average_1min": {"start": load_start, "end": speed._load()},
        "machine": speed.machine(args.threads), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")

    print()
    for family, r in results.items():
        print(f"{family}:")
        for arm, sp in r.get("images_per_s", {}).items():
            g = r["gflop_per_step"].get(arm)
            extra = (f"  {g['step_0']['total']}/{g['step_1']['total']} GFLOP (steps 0/1), "
                     f"{r['achieved_gflop_per_s'][arm]} GFLOP/s" if g else "")
            print(f"  {arm:<17} {sp['median']:7.1f} img/s (min {sp['min']:.1f}, max {sp['max']:.1f}){extra}")
        for arm, g in r["gflop_per_step"].items() if "images_per_s" not in r else ():
            print(f"  {arm:<17} {g['step_0']['total']}/{g['step_1']['total']} GFLOP (steps 0/1)")
        if r["flops_match"] is not None:
            print(f"  FLOPs per operator equal across arms: {r['flops_match']}")
        for key, rr in r.get("ratios", {}).items():
            p = rr["paired"]
            print(f"  {key}: {rr['of_medians']:.3f} (per-round pairs min {p['min']:.3f}, median {p['median']:.3f}, "
                  f"max {p['max']:.3f})")
    line = ", ".join(f"{f} {a['ganforge_fp32_over_plain_fp32']:.3f}" for f, a in accept.items() if a)
    print(f"acceptance: ganforge_fp32 / plain_fp32 >= {MIN_RATIO}: {line}: {doc['acceptance']['pass']}; "
          f"total {total_s:.0f} s; wrote {_relative(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
