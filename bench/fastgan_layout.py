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
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fastgan_steps import RECIPE, SIZE, SOURCE, alternate, recipe_trainer, seconds_per_step  # noqa: E402
from precision_auto import cpu_name, cpu_slug  # noqa: E402

ROOT = HERE.parent


def compare(policy: str | None, precision: str, rounds: int, steps: int, data, channels_last: bool = False) -> dict:
    from torch import nn

    import ganforge.nn.fastgan as fastgan_nn
    from ganforge import recipes

    train = {"channels_last": channels_last, **({"augment_policy": policy} if policy is not None else {})}
    tmp = tempfile.TemporaryDirectory()  # the runs' folders (nothing is written there but the config)
    trainers = {name: recipe_trainer(precision, Path(tmp.name) / name, data, **train)
                for name in ("chosen", "as_it_arrives")}

    def up_as_it_arrives(self, x):  # the route on whatever layout x has
        if not fastgan_nn.upsample_conv_routable(self[1], x):
            return nn.Sequential.forward(self, x)
        x = fastgan_nn.upsample_conv3x3(x, self[1])
        for layer in list(self)[2:]:
            x = layer(x)
        return x

    chosen = (fastgan_nn.channels_last, fastgan_nn.FastGANDecoder.forward, fastgan_nn.UpBlock.forward)
    arrives = (lambda t: t, nn.Sequential.forward, up_as_it_arrives)

    def run(which: str, n: int) -> float:
        fastgan_nn.channels_last, fastgan_nn.FastGANDecoder.forward, fastgan_nn.UpBlock.forward = \
            chosen if which == "chosen" else arrives
        try:
            return seconds_per_step(trainers[which], n)
        finally:
            fastgan_nn.channels_last, fastgan_nn.FastGANDecoder.forward, fastgan_nn.UpBlock.forward = chosen

    label = f"{policy or 'recipe'}{' channels_last' if channels_last else ''} "
    timing = alternate(run, "as_it_arrives", "chosen", rounds, steps, label)
    tmp.cleanup()
    return {"augment_policy": policy or recipes.get(RECIPE).settings["train"]["augment_policy"],
            "channels_last": channels_last, **timing}


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
