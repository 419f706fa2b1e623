"""Shared by fastgan_upconv.py and fastgan_layout.py: Trainers with the `clipart-fastgan` recipe's settings on
builtin:clipart:transportation at 100x100 (the README's cars command), and the median seconds of their training
step measured in alternating rounds, so that load drift hits every variant alike."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SOURCE, SIZE, RECIPE = "builtin:clipart:transportation", (100, 100), "clipart-fastgan"


def recipe_trainer(precision: str, out_dir: Path, data: Any = None, **train: Any):
    """A Trainer with the recipe's settings in `precision` (train.* overridden by `train`), no checkpoints,
    samples or logs to disk beyond its config."""
    from ganforge import config, recipes
    from ganforge.data import load_data
    from ganforge.train import build_run

    recipe = recipes.get(RECIPE)
    settings = json.loads(json.dumps(recipe.settings))
    settings.setdefault("train", {}).update({"precision": precision, "time": 0, "steps": 0, "seed": 0,
                                             "device": "cpu", **train})
    settings["log"] = {"log_every": 10, "sample_every": 0, "ckpt_every": 0, "tensorboard": False, "progress": False}
    cfg = config.from_dict({"family": recipe.family, **settings,
                            "data": {**settings.get("data", {}), "source": SOURCE, "size": list(SIZE)}})
    return build_run(cfg, out_dir, data=data if data is not None else load_data(SOURCE, size=SIZE, quiet=True))


def seconds_per_step(trainer, n: int) -> float:
    """The steps of Trainer.fit's loop, without its start and end (a checkpoint, sample grids)."""
    t0 = time.perf_counter()
    for _ in range(n):
        trainer.family.train()
        trainer.train_step()
    return (time.perf_counter() - t0) / n


def alternate(run: Callable[[str, int], float], base: str, new: str, rounds: int, steps: int,
              label: str = "") -> dict[str, Any]:
    """run(variant, n) -> seconds per step; 3 warm-up steps each, then `rounds` rounds of `steps` steps each,
    the order flipping every round. Medians and the per-round speed-ups (base / new)."""
    run(base, 3), run(new, 3)
    times: dict[str, list[float]] = {base: [], new: []}
    for r in range(rounds):
        for which in ((base, new) if r % 2 == 0 else (new, base)):
            times[which].append(run(which, steps))
        print(f"{label}round {r}: {base} {times[base][-1]:.3f} s/step, {new} {times[new][-1]:.3f} s/step", flush=True)
    ratios = [b / n for b, n in zip(times[base], times[new])]
    return {f"{base}_s_per_step": round(statistics.median(times[base]), 4),
            f"{new}_s_per_step": round(statistics.median(times[new]), 4),
            "speedup": round(statistics.median(ratios), 3), "speedups": [round(x, 3) for x in ratios]}
