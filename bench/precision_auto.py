"""Does train.precision=auto pick the faster precision on this CPU? Recipes' training speed at fp32 and bf16, side by side.

Why: auto used to take bf16 autocast wherever the CPU reports AVX512-BF16. On a 2-core AMD EPYC that paid off
(bench/family_speed.py: 1.4-2x), but on a 2-core Intel Xeon with the same flag and no AMX, bf16 convolutions ran
at about 0.6x fp32's speed, so every image recipe trained slower by default. auto now times one convolution in
each precision once per process (`ganforge.train.hardware.bf16_conv_speedup`) when the CPU has AVX512-BF16 but
no AMX. This bench checks that the one-layer timing predicts whole recipes: for each recipe, two trainers with
its settings (one fp32, one bf16), built in one process on the same data, train `--steps` steps in turn, the
order alternating every round, so load drift hits both. Reported per recipe: the median seconds per step of each,
the median of the per-round ratios fp32 / bf16 (bf16's speed-up; below 1: bf16 slower), what auto picks and
whether that is the faster arm. Writes bench/results/precision_auto-CPU.json, one file per CPU model (intel-xeon,
amd-epyc).

    .venv/bin/python bench/precision_auto.py [--rounds 4 --steps 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (recipe, data source, image size): the cars stand-in's two recipes at 100x100 and the Fashion-MNIST DCGAN
RECIPES = (("clipart-dcgan", "builtin:clipart:transportation", (100, 100)),
           ("clipart-fastgan", "builtin:clipart:transportation", (100, 100)),
           ("fashion-mnist-dcgan", "builtin:fashion-mnist", None))


def cpu_name() -> str:
    """The CPU's model name, with the vector ISA PyTorch dispatches to added when it is below AVX512, as in
    'AMD EPYC (AVX2)'. One model name has come on machines of different generations: every earlier 'AMD EPYC' row
    ran on one with AVX512-BF16, and an AVX2-only one (no AVX512, so no bf16) trains these recipes about 2.2x slower
    (fp32, 0.45-0.48 s against 0.21 s a FastGAN step), so its rows must not replace theirs. CPUs without x86 vector
    extensions (ARM) get "(DEFAULT)", PyTorch's name for their kernels."""
    name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch  # here, as in main(): importing this module for cpu_slug stays cheap

    isa = torch.backends.cpu.get_cpu_capability()
    return name if isa.startswith("AVX512") else f"{name} ({isa})"


def cpu_slug() -> str:
    """'intel-xeon' for 'Intel(R) Xeon(R) Processor', 'amd-epyc' for 'AMD EPYC', 'amd-epyc-avx2' for 'AMD EPYC
    (AVX2)': a file name part, so that each CPU model's results are kept side by side (these machines take turns)."""
    words = re.sub(r"\((r|tm)\)|\bprocessor\b|\bcpu\b", " ", cpu_name().lower())
    return "-".join(re.findall(r"[a-z0-9]+", words)) or "cpu"


def alternate(trainers: dict, rounds: int, steps: int, label: str = "", warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per step of each trainer in `trainers` ({"fp32": Trainer, "bf16": Trainer}) per round: `warmup` steps
    each first, then `rounds` rounds of `steps` steps each, the order alternating every round so that load drift
    hits both arms alike."""

    def run(precision: str, n: int) -> float:
        t = trainers[precision]
        t.cfg.train.steps = t.step + n
        start = time.perf_counter()
        t.fit()
        return (time.perf_counter() - start) / n

    for p in trainers:
        run(p, warmup)
    times: dict[str, list[float]] = {p: [] for p in trainers}
    for r in range(rounds):
        order = ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")
        got = {p: run(p, steps) for p in order}
        for p, s in got.items():
            times[p].append(s)
        print(f"{label + ' ' if label else ''}round {r}: fp32 {got['fp32']:.3f} s/step, bf16 {got['bf16']:.3f} s/step",
              flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="training steps per arm per round")
    ap.add_argument("--recipes", nargs="*", default=[r[0] for r in RECIPES])
    ap.add_argument("--out", type=Path, default=None,
                    help="default: bench/results/precision_auto-CPU.json, CPU the model (intel-xeon, amd-epyc)")
    args = ap.parse_args(argv)

    import torch

    from ganforge import config, recipes
    from ganforge.config import TrainConfig
    from ganforge.data import load_data
    from ganforge.train import build_run, hardware

    auto, auto_why = hardware.resolve_precision(TrainConfig(), torch.device("cpu"), "image")
    rows = []
    for name, source, size in RECIPES:
        if name not in args.recipes:
            continue
        recipe = recipes.get(name)
        data = load_data(source, size=size, quiet=True)
        trainers = {}
        for precision in ("fp32", "bf16"):
            settings = json.loads(json.dumps(recipe.settings))
            settings.setdefault("train", {}).update({"precision": precision, "time": 0, "steps": 0, "seed": 0,
                                                     "device": "cpu"})
            settings["log"] = {"log_every": 10, "sample_every": 0, "ckpt_every": 0, "tensorboard": False,
                               "progress": False}
            src = {**settings.get("data", {}), "source": source, **({"size": list(size)} if size else {})}
            cfg = config.from_dict({"family": recipe.family, **settings, "data": src})
            trainers[precision] = build_run(cfg, Path(tempfile.mkdtemp()), data=data)

        times = alternate(trainers, args.rounds, args.steps, name, warmup=2)
        speedups = [f / b for f, b in zip(times["fp32"], times["bf16"])]
        speedup = statistics.median(speedups)
        faster = "bf16" if speedup > 1 else "fp32"
        rows.append({"recipe": f"{name}@v{recipe.version}", "data": source, "size": size,
                     "batch_size": trainers["fp32"].cfg.train.batch_size,
                     "fp32_s_per_step": round(statistics.median(times["fp32"]), 4),
                     "bf16_s_per_step": round(statistics.median(times["bf16"]), 4),
                     "bf16_speedup": round(speedup, 3), "faster": faster, "auto": auto,
                     "auto_picks_faster": auto == faster})
    result = {
        "bench": "bench/precision_auto.py", "date": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds, "steps_per_round": args.steps,
        "native_bf16": hardware.native_bf16(torch.device("cpu")),
        "bf16_conv_speedup": round(hardware.bf16_conv_speedup(), 3), "auto": auto, "auto_reason": auto_why,
        "recipes": rows,
        "machine": {"cpu": cpu_name(), "platform": platform.platform(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
    }
    print(json.dumps(result, indent=1))
    out = args.out or ROOT / "bench" / "results" / f"precision_auto-{cpu_slug()}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
