"""Training speed of the spoken-digits cwavegan recipe at fp32 and with bf16 autocast, side by side.

Why: train.precision=auto picks bf16 autocast wherever the CPU has native bf16, and that paid off for the image
families and, on a 2-core CPU with AMX, for wavegan (1.45x). The cwavegan recipe (v2) names fp32 instead, because
on a CPU with AVX512-BF16 but no AMX, bf16 made its 1-D nets' training slower. This bench is that measurement: two
trainers with the recipe's settings (one fp32, one bf16), built in one process on the same data, train `--steps`
steps in turn, the order alternating every round, so load drift hits both. Reported: the median seconds per step
of each and the median of the per-round ratios bf16 / fp32 (above 1: bf16 slower). Writes
bench/results/audio_precision.json.

    .venv/bin/python bench/audio_precision.py [--rounds 8 --steps 10]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from precision_auto import alternate  # noqa: E402  (the alternating fp32 / bf16 timing loop)
RECIPE = "spoken-digits-cwavegan"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10, help="training steps per arm per round")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "audio_precision.json")
    args = ap.parse_args(argv)

    import torch

    from ganforge import config, recipes
    from ganforge.data import load_data
    from ganforge.train import build_run
    from ganforge.train.hardware import native_bf16

    recipe = recipes.get(RECIPE)
    data = load_data(recipe.data, quiet=True)
    trainers = {}
    for precision in ("fp32", "bf16"):
        settings = json.loads(json.dumps(recipe.settings))
        settings["train"].update({"precision": precision, "time": 0, "steps": 0, "seed": 0, "device": "cpu"})
        settings["log"] = {"log_every": 10, "sample_every": 0, "ckpt_every": 0, "tensorboard": False,
                           "progress": False}
        cfg = config.from_dict({"family": recipe.family, "data": {"source": recipe.data}, **settings})
        trainers[precision] = build_run(cfg, Path(tempfile.mkdtemp()), data=data)

    times = alternate(trainers, args.rounds, args.steps, warmup=3)
    ratios = [b / f for f, b in zip(times["fp32"], times["bf16"])]
    result = {
        "bench": "bench/audio_precision.py", "date": time.strftime("%Y-%m-%d"), "recipe": f"{RECIPE}@v{recipe.version}",
        "rounds": args.rounds, "steps_per_round": args.steps,
        "fp32_s_per_step": round(statistics.median(times["fp32"]), 4),
        "bf16_s_per_step": round(statistics.median(times["bf16"]), 4),
        "median_ratio_bf16_over_fp32": round(statistics.median(ratios), 3),
        "native_bf16": native_bf16(torch.device("cpu")),
        "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(), "torch": torch.__version__},
    }
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
