"""Directory checkpoints, written atomically.

    RUN/checkpoints/step_00001000/
        config.json        family, its options, the data spec, the run config
        model.safetensors  every weight and buffer of the family (G and D)
        ema.safetensors    the EMA generator
        optim.pt           optimizer states and the torch RNG state (loaded with weights_only=True)
        state.json         step, loader position, numpy/python RNG, callback state

A checkpoint is written under a temporary name and renamed into place, so a crash (even kill -9) leaves
either the previous checkpoint or the new one, never half of one. Pickled code is never loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

STEP_DIR = re.compile(r"^step_(\d{8})$")


def _state_to_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage: give it private contiguous copies
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(
    run_dir: str | Path,
    step: int,
    *,
    config: dict[str, Any],
    model: dict[str, torch.Tensor],
    ema: dict[str, torch.Tensor] | None,
    optim: dict[str, Any],
    state: dict[str, Any],
    keep_last: int = 0,
) -> Path:
    """Write RUN/checkpoints/step_N atomically; then delete all but the newest `keep_last` (0 keeps all)."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step_{step:08d}-", dir=root))
    try:
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(_state_to_tensors(model), str(tmp / "model.safetensors"))
        if ema is not None:
            save_file(_state_to_tensors(ema), str(tmp / "ema.safetensors"))
        torch.save(optim, tmp / "optim.pt")
        (tmp / "state.json").write_text(json.dumps(state) + "\n")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if final.exists():  # re-saving the same step (e.g. after a rollback): replace it
            old = root / f".old-{final.name}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_last > 0:
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-step_*"):  # left by a process killed mid-write
        if stale != tmp:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name) and (p / "state.json").exists()]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or a run directory (its latest checkpoint)."""
    p = Path(path)
    if (p / "state.json").exists() and (p / "model.safetensors").exists():
        return p
    latest = latest_checkpoint(p)
    if latest is None:
        raise ValueError(f"'{path}' holds no checkpoint; give --ckpt a run directory written by 'ganforge train'")
    return latest


def read_checkpoint(path: str | Path, *, with_optim: bool = True) -> dict[str, Any]:
    """Load a checkpoint directory into plain dicts (tensors on CPU)."""
    p = resolve_checkpoint(path)
    out: dict[str, Any] = {
        "path": p,
        "config": json.loads((p / "config.json").read_text()),
        "state": json.loads((p / "state.json").read_text()),
        "model": load_file(str(p / "model.safetensors")),
        "ema": load_file(str(p / "ema.safetensors")) if (p / "ema.safetensors").exists() else None,
    }
    if with_optim:
        out["optim"] = torch.load(p / "optim.pt", map_location="cpu", weights_only=True)
    return out
