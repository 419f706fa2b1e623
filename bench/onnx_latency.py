"""Generation latency: the onnxruntime sampler (what Lambda and the static site's model run) vs torch eager.

One process, one checkpoint (default runs/demo, the Fashion-MNIST DCGAN of `make demo`; with no checkpoint
there a width-64 DCGAN is trained for a few steps first, as latency does not depend on quality). Both
sides do the whole job from a seed: latents from `ganforge.latent`, the generator, float32 images out.

  torch eager  Sampler.generate(n, seed)                        (torch.no_grad, eval mode)
               and, for reference, G(z) alone on ready latents        (torch_forward_only)
  onnxruntime  OnnxGenerator(model.onnx).generate(n, seed)      (the Lambda handler's generator)

Batches 1 and 16; the two sides alternate within each repeat so drift hits both alike; medians of
`--repeats` timed calls after warm-up. Threads: both use `--threads` (default: all cores).
Writes bench/results/onnx_latency.json.

    .venv/bin/python bench/onnx_latency.py [--ckpt runs/demo] [--repeats 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import demo_checkpoint, shown
from ganforge.artifacts import Sampler
from ganforge.artifacts.onnx import export_onnx
from ganforge.serve.aws_lambda import OnnxGenerator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--out", default=str(HERE / "results" / "onnx_latency.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ganforge-latency-"))
    ckpt = demo_checkpoint(args.ckpt, tmp)
    torch.set_num_threads(args.threads)
    sampler = Sampler.from_checkpoint(ckpt)
    exported = export_onnx(sampler, tmp / "model.onnx")
    onnx_gen = OnnxGenerator(tmp / "model.onnx", intra_op_threads=args.threads)

    rows = {}
    for n in (int(b) for b in args.batches.split(",")):
        np.testing.assert_allclose(onnx_gen.generate(n, 0), sampler.generate(n, 0).numpy(), atol=1e-4, rtol=0)
        for _ in range(10):  # warm-up: first calls allocate buffers and pick kernels
            sampler.generate(n, 0)
            onnx_gen.generate(n, 0)
        z = sampler.latents(n, 0)

        def forward_only(n, seed):  # G alone on ready latents: what eager costs without the sampler around it
            with torch.no_grad():
                return sampler.G(z)

        times = {"torch_eager": [], "onnxruntime": [], "torch_forward_only": []}
        for r in range(args.repeats):
            for name, fn in (("torch_eager", sampler.generate), ("onnxruntime", onnx_gen.generate),
                             ("torch_forward_only", forward_only)):
                t0 = time.perf_counter()
                fn(n, r)
                times[name].append((time.perf_counter() - t0) * 1000)
        med = {k: float(np.median(v)) for k, v in times.items()}
        rows[f"batch_{n}"] = {
            "torch_eager_ms": {"median": round(med["torch_eager"], 3), "p90": round(float(np.percentile(times["torch_eager"], 90)), 3)},
            "onnxruntime_ms": {"median": round(med["onnxruntime"], 3), "p90": round(float(np.percentile(times["onnxruntime"], 90)), 3)},
            "torch_forward_only_ms": {"median": round(med["torch_forward_only"], 3)},
            "speedup_onnxruntime_vs_eager": round(med["torch_eager"] / med["onnxruntime"], 2),
            "speedup_onnxruntime_vs_forward_only": round(med["torch_forward_only"] / med["onnxruntime"], 2),
            "images_per_s": {"torch_eager": round(n * 1000 / med["torch_eager"], 1),
                             "onnxruntime": round(n * 1000 / med["onnxruntime"], 1)},
        }
        print(f"batch {n:3d}: torch eager {med['torch_eager']:.2f} ms, onnxruntime {med['onnxruntime']:.2f} ms, "
              f"ratio {med['torch_eager'] / med['onnxruntime']:.2f}x (G forward alone {med['torch_forward_only']:.2f} ms)",
              flush=True)
    result = {
        "benchmark": "onnx_latency",
        "command": " ".join([Path(sys.executable).name, "bench/onnx_latency.py"] + sys.argv[1:]),
        "checkpoint": shown(ckpt), "family": sampler.family.name, "shape": list(sampler.spec.shape),
        "generator_parameters": sum(p.numel() for p in sampler.G.parameters()),
        "export": {**exported.as_dict(), "onnx": shown(exported.path)}, "threads": args.threads, "repeats": args.repeats, "results": rows,
        "versions": {"torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
