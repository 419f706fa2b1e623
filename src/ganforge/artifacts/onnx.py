"""ONNX export of a generator, checked against the eager model.

The ONNX graph maps G's whole input to its output: `z` (N, width) float32 (noise, then any latent codes)
and, for conditional families, `y` (N,) int64 class indices, to `images` (N, C, H, W) in [-1, 1] (or
`points` (N, F)). The batch axis is dynamic. Latents come from `ganforge.latent` outside the graph, so
every runtime turns a seed into the same input. `model_info` is stored in the model's metadata
(`ganforge` key) so the file describes itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .card import model_info

TOLERANCE = 1e-4


class ExportError(RuntimeError):
    """The exported model does not reproduce the eager one (or could not be written)."""


class _GeneratorGraph(nn.Module):
    """G as one function of (z[, y]) -> output, the way the family samples it."""

    def __init__(self, family, conditional: bool) -> None:
        super().__init__()
        self.family, self.G, self.conditional = family, family.G, conditional

    def forward(self, z, y=None):
        return self.G(z, y) if self.conditional else self.G(z)


@dataclass
class ExportResult:
    path: Path
    seconds: float
    max_abs_diff: float
    batches_checked: tuple[int, ...]
    size_bytes: int

    def as_dict(self) -> dict:
        return {"onnx": str(self.path), "export_seconds": round(self.seconds, 3),
                "parity_max_abs_diff": self.max_abs_diff, "parity_tolerance": TOLERANCE,
                "parity_batches": list(self.batches_checked), "onnx_bytes": self.size_bytes}


def _inputs(sampler, n: int, seed: int) -> dict[str, np.ndarray]:
    feeds = {"z": sampler.latents(n, seed).cpu().numpy()}
    if sampler.conditional:
        feeds["y"] = (np.arange(n, dtype=np.int64) * 7 + seed) % int(sampler.spec.n_classes)
    return feeds


def parity(sampler, path: str | Path, batches: tuple[int, ...] = (1, 5, 16)) -> float:
    """Max abs difference between onnxruntime and the eager generator over a few batch sizes."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the ONNX check needs onnxruntime: pip install 'ganforge[onnx]'") from e
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, n in enumerate(batches):
        feeds = _inputs(sampler, n, seed=100 + i)
        got = session.run(None, feeds)[0]
        with torch.inference_mode():
            z = torch.from_numpy(feeds["z"]).to(sampler.family.device)
            y = torch.from_numpy(feeds["y"]).to(z.device) if "y" in feeds else None
            want = (sampler.G(z, y) if y is not None else sampler.G(z)).float().cpu().numpy()
        if got.shape != want.shape:
            raise ExportError(f"ONNX output shape {got.shape} != eager {want.shape} at batch {n}")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def export_onnx(sampler, path: str | Path, *, opset: int | None = None, check: bool = True,
                tolerance: float = TOLERANCE) -> ExportResult:
    """Write the generator of `sampler` to `path` (ONNX, dynamic batch) and check it against eager.

    Raises ExportError when onnxruntime's output differs from the eager model's by more than `tolerance`
    (max abs) on batches of 1, 5 and 16; the file is then removed, so a bad model never ships.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = _GeneratorGraph(sampler.family, sampler.conditional).eval()
    feeds = _inputs(sampler, 2, seed=0)
    args = tuple(torch.from_numpy(feeds[k]).to(sampler.family.device) for k in ("z", "y") if k in feeds)
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = {"z": {0: batch}, **({"y": {0: batch}} if sampler.conditional else {})}
    out_name = "images" if sampler.spec.kind == "image" else "points"
    start = time.perf_counter()
    quiet = io.StringIO()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, args, input_names=list(feeds), output_names=[out_name],
                                        dynamic_shapes=shapes, dynamo=True, opset_version=opset,
                                        external_data=False, verbose=False)
            program.model.metadata_props["ganforge"] = json.dumps(model_info(sampler))
            program.save(str(path), external_data=False)
    except Exception as e:
        raise ExportError(f"torch.onnx.export failed for {sampler.family.name}: {e}") from e
    seconds = time.perf_counter() - start
    diff = float("nan")
    if check:
        diff = parity(sampler, path)
        if not diff <= tolerance:
            path.unlink(missing_ok=True)
            raise ExportError(f"ONNX output differs from the eager generator by {diff:.3g} (max abs) > {tolerance}; "
                              f"the model was not written. Try another --opset, or report the family.")
    return ExportResult(path, seconds, diff, (1, 5, 16) if check else (), path.stat().st_size)


def read_info(path: str | Path) -> dict:
    """The `ganforge` metadata of an exported model (needs only the onnx package)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == "ganforge":
            return json.loads(prop.value)
    raise ValueError(f"{path} has no ganforge metadata; export it with `ganforge export --onnx`")
