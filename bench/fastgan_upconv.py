"""FastGAN's up-sampling blocks as one transposed conv (`ganforge.nn.convs.upsample_conv3x3`) against the plain
nearest upsample + 3x3 conv, side by side in one process.

Two measurements, each alternating the two routes round by round so that load drift hits both alike:

- `layers`: forward + backward of each up-sampling conv of the cars recipe's G (100x100, width 12, batch 8)
  alone (fp32, or bf16 autocast with `--precision bf16`), NCHW; the median ms per call of each route, and their
  ratio.
- `trainer`: one Trainer with the `clipart-fastgan` recipe's settings on builtin:clipart:transportation at
  100x100 (the README's cars command, in `--precision`), trained `--steps` steps per route per
  round (`Trainer.train_step`, the loop of `fit` without the checkpoint and samples it ends with); the route is
  switched off by patching `ganforge.nn.fastgan.upsample_conv_routable`. The median seconds
  per step of each, and the median of the per-round ratios (plain / route: the step's speed-up).

    .venv/bin/python bench/fastgan_upconv.py [--rounds 4 --steps 10 --precision fp32|bf16]

Writes bench/results/fastgan_upconv-CPU.json (CPU as in `amd-epyc-avx2`, `intel-xeon`), or
fastgan_upconv-bf16-CPU.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fastgan_steps import RECIPE, SIZE, alternate, recipe_trainer, seconds_per_step  # noqa: E402
from precision_auto import cpu_name, cpu_slug  # noqa: E402

ROOT = HERE.parent


def layer_times(rounds: int, precision: str, calls: int = 3) -> list[dict]:
    import contextlib

    import torch
    import torch.nn.functional as F

    from ganforge.nn.convs import upsample_conv3x3
    from ganforge.nn.fastgan import FastGANGenerator

    torch.manual_seed(0)
    g = FastGANGenerator(128, (3, *SIZE), width=12, spectral_norm=False)
    with torch.no_grad():
        shapes = [tuple(m.shape) for m in g.eval().maps(torch.randn(8, 128))[:-1]]  # each up block's input
    g.train()
    rows = []
    for k, up in enumerate(g.ups):
        conv = up[1]
        # under autocast an up block's input is bf16, the GLU before it gives that
        x = torch.randn(*shapes[k], dtype=torch.bfloat16 if precision == "bf16" else torch.float32, requires_grad=True)
        routes = {"plain": lambda x: conv(F.interpolate(x, scale_factor=2, mode="nearest")),
                  "transposed": lambda x: upsample_conv3x3(x, conv)}
        cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
        with cast():
            grad = torch.randn_like(routes["plain"](x))
        best: dict[str, list[float]] = {r: [] for r in routes}
        for r in range(rounds + 1):  # round 0 warms both up
            for name in (("plain", "transposed") if r % 2 else ("transposed", "plain")):
                t0 = time.perf_counter()
                for _ in range(calls):
                    with cast():
                        y = routes[name](x)
                    y.backward(grad)
                if r:
                    best[name].append((time.perf_counter() - t0) / calls * 1e3)
        plain, tr = statistics.median(best["plain"]), statistics.median(best["transposed"])
        rows.append({"layer": f"G up {k + 1}", "in": list(x.shape), "out_channels": conv.out_channels,
                     "plain_ms": round(plain, 2), "transposed_ms": round(tr, 2), "speedup": round(plain / tr, 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def trainer_times(rounds: int, steps: int, precision: str) -> dict:
    import ganforge.nn.fastgan as fastgan_nn
    from ganforge import recipes

    trainer = recipe_trainer(precision, Path(tempfile.mkdtemp()))
    routable = fastgan_nn.upsample_conv_routable

    def run(route: str, n: int) -> float:
        fastgan_nn.upsample_conv_routable = routable if route == "transposed" else (lambda conv, x: False)
        try:
            return seconds_per_step(trainer, n)
        finally:
            fastgan_nn.upsample_conv_routable = routable

    return {"recipe": f"{RECIPE}@v{recipes.get(RECIPE).version}", "precision": precision,
            "batch_size": trainer.cfg.train.batch_size, **alternate(run, "plain", "transposed", rounds, steps)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10, help="training steps per route per round")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: both routes under bf16 autocast")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: bench/results/fastgan_upconv-CPU.json (fastgan_upconv-bf16-CPU.json for bf16)")
    args = ap.parse_args(argv)

    import platform

    import torch

    import ganforge.nn.convs as convs

    convs.UPSAMPLE_ROUTE_DTYPES = (torch.float32, torch.bfloat16)  # measured in either, whatever the setting
    layers = layer_times(args.rounds, args.precision)
    step = trainer_times(args.rounds, args.steps, args.precision)
    print(json.dumps(step))
    tag = "" if args.precision == "fp32" else f"{args.precision}-"
    out = args.out or ROOT / "bench" / "results" / f"fastgan_upconv-{tag}{cpu_slug()}.json"
    out.write_text(json.dumps({
        "bench": "bench/fastgan_upconv.py", "precision": args.precision, "date": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "steps_per_round": args.steps, "layers": layers, "trainer": step,
        "machine": {"cpu": cpu_name(), "platform": platform.platform(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__}}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
