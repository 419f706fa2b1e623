"""ONNX export of every family at its default size on Fashion-MNIST: export time and parity with eager.

For each family a run with the family's default networks is trained for a few steps (parity and export
time do not depend on how well it is trained), then `ganforge export --ckpt RUN --onnx OUT.onnx` runs
as a user runs it; the model card it writes holds the export time, the max abs difference between
onnxruntime and the eager generator on batches of 1, 5 and 16, and the file size.
Writes bench/results/onnx_export.json.

    .venv/bin/python bench/onnx_export.py [--families gan,dcgan,cgan,acgan,infogan,sgan] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GANFORGE = [sys.executable, "-m", "ganforge"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="gan,dcgan,cgan,acgan,infogan,sgan")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "results" / "onnx_export.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ganforge-onnx-"))
    rows = {}
    for family in args.families.split(","):
        run = tmp / family
        extra = ["--labels-per-class", "10"] if family == "sgan" else []
        subprocess.run(GANFORGE + ["train", "--data", "builtin:fashion-mnist", "--family", family, "--steps",
                                   str(args.steps), "--out", str(run), "--quiet"] + extra,
                       check=True, stdout=subprocess.DEVNULL)
        t0 = time.perf_counter()
        subprocess.run(GANFORGE + ["export", "--ckpt", str(run), "--onnx", str(tmp / f"{family}.onnx")], check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        card = json.loads((tmp / f"{family}.card.json").read_text())
        exp = card["export"]
        rows[family] = {"export_seconds": exp["export_seconds"], "command_wall_seconds": round(wall, 2),
                        "parity_max_abs_diff": exp["parity_max_abs_diff"], "parity_batches": exp["parity_batches"],
                        "onnx_mb": round(exp["onnx_bytes"] / 1e6, 3),
                        "generator_parameters": card["size"]["generator_parameters"]}
        print(f"{family:8s} export {exp['export_seconds']:.2f} s (command {wall:.1f} s), "
              f"max abs diff {exp['parity_max_abs_diff']:.2g}, {exp['onnx_bytes'] / 1e6:.2f} MB", flush=True)
    result = {
        "benchmark": "onnx_export",
        "command": " ".join([Path(sys.executable).name, "bench/onnx_export.py"] + sys.argv[1:]),
        "data": "builtin:fashion-mnist (1x28x28)", "tolerance": 1e-4, "results": rows,
        "pass": all(r["parity_max_abs_diff"] <= 1e-4 for r in rows.values()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
