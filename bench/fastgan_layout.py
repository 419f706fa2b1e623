"""FastGAN's memory layout, chosen per layer (`ganforge.nn.fastgan.channels_last`), against every layer running in
the layout its input arrives in (what ganforge did before), side by side in one process.

The chosen layout: G's up-sampling blocks on NCHW maps, its image layer on a channels-last map; all of D on
channels-last maps, its decoders' up-sampling blocks on NCHW ones. "As it arrives": every layer in the layout
its input has: G NCHW (channels-last with the trainer's `channels_last`); D channels-last only by accident, when
DiffAugment's translation (a gather in channels-last order) ran before it, and NCHW with no augmentation, colour
only, or ADA.

For each configuration, two Trainers with the `clipart-fastgan` recipe's settings on
builtin:clipart:transportation at 100x100 (the README's cars command), trained `--steps` steps each per round,
alternating round by round (`Trainer.train_step`, the loop of `fit` without its checkpoint and samples); the
median seconds per step of each and the median of the per-round ratios (as it arrives / chosen: the speed-up).
Configurations, in `--precision`: the recipe as it is (colour + translation, `channels_last: false`), the recipe
with colour only, and the recipe with the trainer's `channels_last: true` (the trainer's default, which
folder-fastgan and runs without a recipe keep: weights and batches channels-last).

    .venv/bin/python bench/fastgan_layout.py [--rounds 6 --steps 15 --precision bf16|fp32]

Writes bench/results/fastgan_layout-PRECISION-CPU.json (CPU as in `amd-epyc`, `amd-epyc-avx2`, `intel-xeon`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from precision_auto import cpu_name, cpu_slug  # noqa: E402

ROOT = HERE.parent
SOURCE, SIZE, RECIPE = "builtin:clipart:transportation", (100, 100), "clipart-fastgan"


def compare(policy: str | None, precision: str, rounds: int, steps: int, data, channels_last: bool = False) -> dict:
    import torch  # noqa: F401
    from torch import nn

    import ganforge.nn.fastgan as fastgan_nn
    from ganforge import config, recipes
    from ganforge.train import build_run

    recipe = recipes.get(RECIPE)
    tmp = tempfile.TemporaryDirectory()  # the runs' folders (nothing is written there but the config)

    def trainer(name: str):
        settings = json.loads(json.dumps(recipe.settings))
        settings.setdefault("train", {}).update({"precision": precision, "time": 0, "steps": 0, "seed": 0,
                                                 "device": "cpu"})
        if policy is not None:
            settings["train"]["augment_policy"] = policy
        settings["train"]["channels_last"] = channels_last
        settings["log"] = {"log_every": 10, "sample_every": 0, "ckpt_every": 0, "tensorboard": False,
                           "progress": False}
        cfg = config.from_dict({"family": recipe.family, **settings,
                                "data": {**settings.get("data", {}), "source": SOURCE, "size": list(SIZE)}})
        return build_run(cfg, Path(tmp.name) / name, data=data)

    up_route = fastgan_nn.UpBlock.forward

    def up_as_it_arrives(self, x):  # the route on whatever layout x has
        if not fastgan_nn.upsample_conv_routable(self[1], x):
            return nn.Sequential.forward(self, x)
        x = fastgan_nn.upsample_conv3x3(x, self[1])
        for layer in list(self)[2:]:
            x = layer(x)
        return x

    chosen = (fastgan_nn.channels_last, fastgan_nn.FastGANDecoder.forward, up_route)
    arrives = (lambda t: t, nn.Sequential.forward, up_as_it_arrives)
    trainers = {"chosen": trainer("chosen"), "as_it_arrives": trainer("as_it_arrives")}

    def run(which: str, n: int) -> float:
        fastgan_nn.channels_last, fastgan_nn.FastGANDecoder.forward, fastgan_nn.UpBlock.forward = \
            chosen if which == "chosen" else arrives
        try:
            tr = trainers[which]
            t0 = time.perf_counter()
            for _ in range(n):
                tr.family.train()
                tr.train_step()
            return (time.perf_counter() - t0) / n
        finally:
            fastgan_nn.channels_last, fastgan_nn.FastGANDecoder.forward, fastgan_nn.UpBlock.forward = chosen

    run("chosen", 3), run("as_it_arrives", 3)  # warm-up
    times: dict[str, list[float]] = {"chosen": [], "as_it_arrives": []}
    for r in range(rounds):
        for which in (("as_it_arrives", "chosen") if r % 2 == 0 else ("chosen", "as_it_arrives")):
            times[which].append(run(which, steps))
        print(f"{policy or 'recipe'}{' channels_last' if channels_last else ''} round {r}: as it arrives {times['as_it_arrives'][-1]:.3f} s/step, "
              f"chosen {times['chosen'][-1]:.3f} s/step", flush=True)
    tmp.cleanup()
    ratios = [a / c for a, c in zip(times["as_it_arrives"], times["chosen"])]
    return {"augment_policy": policy or recipe.settings["train"]["augment_policy"], "channels_last": channels_last,
            "as_it_arrives_s_per_step": round(statistics.median(times["as_it_arrives"]), 4),
            "chosen_s_per_step": round(statistics.median(times["chosen"]), 4),
            "speedup": round(statistics.median(ratios), 3), "speedups": [round(x, 3) for x in ratios]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=15, help="training steps per layout per round")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: bench/results/fastgan_layout-PRECISION-CPU.json")
    args = ap.parse_args(argv)

    import torch

    from ganforge import recipes
    from ganforge.data import load_data

    data = load_data(SOURCE, size=SIZE, quiet=True)
    rows = [compare(policy, args.precision, args.rounds, args.steps, data, cl)
            for policy, cl in ((None, False), ("color", False), (None, True))]
    print(json.dumps(rows))
    out = args.out or ROOT / "bench" / "results" / f"fastgan_layout-{args.precision}-{cpu_slug()}.json"
    out.write_text(json.dumps({
        "bench": "bench/fastgan_layout.py", "command": "python bench/fastgan_layout.py " + " ".join(argv or sys.argv[1:]),
        "recipe": f"{RECIPE}@v{recipes.get(RECIPE).version}", "precision": args.precision,
        "date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "steps_per_round": args.steps, "rows": rows,
        "machine": {"cpu": cpu_name(), "platform": platform.platform(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__}}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
