"""Directory checkpoints, written atomically and checked when read.

    RUN/checkpoints/step_00001000/
        config.json        family, its options, the data spec, the run config
        model.safetensors  every weight and buffer of the family (G and D)
        ema.safetensors    the EMA generator
        optim.pt           optimizer states and the torch RNG state (loaded with weights_only=True)
        state.json         step, loader position, numpy/python RNG, callback state

A checkpoint is written under a temporary name and renamed into place, so a crash (even kill -9) leaves
either the previous checkpoint or the new one, never half of one. Pickled code is never loaded.

A checkpoint damaged later (a truncated copy, a full disk in a backup) is caught by a cheap check of every
file's structure (JSON parses, safetensors headers match the file sizes, optim.pt's zip directory is
there): a run directory resolves to its newest intact checkpoint, with a warning naming each damaged
newer one. Non-finite weights are never written, and refused when read.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import re
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

STEP_DIR = re.compile(r"^step_(\d{8})$")
_warned: set[str] = set()  # a damaged checkpoint is named once per process, however often the run is resolved


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: damaged, not ganforge's, or holding non-finite weights."""


class NonFiniteWeights(CheckpointError):
    """Weights with NaN or infinite values: such a checkpoint would poison resume, rollback and sampling."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


def count_nonfinite(tree: Any) -> int:
    """NaN and infinite values among the floating-point tensors of a (nested) state dict."""
    if isinstance(tree, torch.Tensor):
        return int((~torch.isfinite(tree)).sum()) if tree.is_floating_point() else 0
    if isinstance(tree, dict):
        return sum(count_nonfinite(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(count_nonfinite(v) for v in tree)
    return 0


def _state_to_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage: give it private contiguous copies
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def _write_file(path: Path, data: bytes | memoryview) -> None:
    """Write and fsync one file with Python's own I/O, so a full disk raises OSError (ENOSPC) rather than
    a safetensors or torch error that hides the cause."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


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
    """Write RUN/checkpoints/step_N atomically; then delete all but the newest `keep_last` up to step N (0
    keeps all). Raises NonFiniteWeights, writing nothing, when a weight or optimizer state is not finite;
    an OSError (read-only folder, full disk) names the checkpoint and leaves the earlier ones as they were."""
    bad = count_nonfinite(model) + count_nonfinite(ema or {}) + count_nonfinite(optim)
    if bad:
        raise NonFiniteWeights(f"step {step} holds {bad:,} non-finite weights or optimizer values", bad)
    root = Path(run_dir) / "checkpoints"
    final = root / f"step_{step:08d}"
    tmp: Path | None = None
    old: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step_{step:08d}-", dir=root))
        _write_file(tmp / "config.json", (json.dumps(config, indent=2) + "\n").encode())
        _write_file(tmp / "model.safetensors", safetensors_bytes(_state_to_tensors(model)))
        if ema is not None:
            _write_file(tmp / "ema.safetensors", safetensors_bytes(_state_to_tensors(ema)))
        buf = io.BytesIO()
        torch.save(optim, buf)
        _write_file(tmp / "optim.pt", buf.getbuffer())
        del buf
        _write_file(tmp / "state.json", (json.dumps(state) + "\n").encode())
        _fsync_dir(tmp)
        if final.exists():  # re-saving the same step (e.g. after a rollback): replace it
            old = root / f".old-{final.name}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not final.exists():  # put the replaced checkpoint back
            with contextlib.suppress(OSError):
                os.rename(old, final)
        if isinstance(e, OSError) and e.errno is not None:  # name what could not be written, not a temp file
            where = e.filename if e.filename is not None and not root.is_dir() else final
            raise OSError(e.errno, e.strerror, str(where)) from None
        raise
    if keep_last > 0:  # only older ones: a newer (damaged) leftover is replaced when training gets there
        older = [p for p in list_checkpoints(run_dir) if _step_of(p) < step]
        for p in older[:max(0, len(older) - (keep_last - 1))]:
            shutil.rmtree(p, ignore_errors=True)
    for stale in root.glob(".tmp-step_*"):  # left by a process killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _step_of(ckpt: Path) -> int:
    return int(STEP_DIR.match(ckpt.name).group(1))


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (complete: renamed into place; see check_checkpoint)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name) and (p / "state.json").exists()]
    return sorted(found, key=_step_of)


# bytes per element of the safetensors dtypes
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
                "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


def _safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file would not load, from its header and size alone (the tensors are not read)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 0 or n > size - 8:
            return f"{path.name} is truncated or not a safetensors file ({size:,} bytes)"
        try:
            header = json.loads(fh.read(n))
            end = 0
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                begin, stop = (int(v) for v in info["data_offsets"])
                width = _DTYPE_BYTES.get(info["dtype"])
                if stop < begin or (width is not None and stop - begin != width * math.prod(info["shape"])):
                    return f"{path.name} has an inconsistent header (tensor {name})"
                end = max(end, stop)
        except (ValueError, TypeError, KeyError, AttributeError):  # JSON, UTF-8 or layout errors
            return f"{path.name} has an unreadable header"
    expected = 8 + n + end
    if size < expected:
        return f"{path.name} is truncated ({size:,} of {expected:,} bytes)"
    if size > expected:
        return f"{path.name} has {size - expected:,} unexpected bytes after its tensors"
    return None


def check_checkpoint(ckpt: str | Path, *, optim: bool = True) -> str | None:
    """Why the checkpoint directory `ckpt` is damaged (a file missing, truncated or unparseable), or None.

    Cheap: reads the two JSON files, the safetensors headers and optim.pt's zip directory, not the tensors.
    optim=False skips optim.pt (sampling needs the weights alone).
    """
    p = Path(ckpt)
    name = ""
    try:
        for name in ("config.json", "state.json", "model.safetensors", *(("optim.pt",) if optim else ())):
            if not (p / name).is_file():
                return f"{name} is missing"
        docs = {}
        for name in ("config.json", "state.json"):
            try:
                docs[name] = json.loads((p / name).read_bytes())
            except ValueError as e:  # JSON and UTF-8 errors
                return f"{name} is not valid JSON ({e})"
            if not isinstance(docs[name], dict):
                return f"{name} is not a JSON object"
        run = docs["config.json"].get("run")
        train = run.get("train") if isinstance(run, dict) else None
        ema_decay = train.get("ema_decay") if isinstance(train, dict) else None
        if isinstance(ema_decay, (int, float)) and ema_decay > 0 and not (p / "ema.safetensors").is_file():
            return "ema.safetensors is missing"
        for name in ("model.safetensors", "ema.safetensors"):
            if (p / name).is_file():
                problem = _safetensors_problem(p / name)
                if problem:
                    return problem
        if optim:
            name = "optim.pt"
            try:
                zipfile.ZipFile(p / name).close()  # reads the central directory at the end of the file
            except (zipfile.BadZipFile, ValueError, EOFError):
                return "optim.pt is truncated or not a torch file"
    except OSError as e:
        return f"{name or p.name} cannot be read ({e.strerror})"
    return None


def latest_checkpoint(run_dir: str | Path, *, optim: bool = True) -> Path | None:
    """The newest intact checkpoint of a run, None when it has none. Each damaged newer one is skipped with
    a warning that names it; CheckpointError when every checkpoint is damaged."""
    damaged: list[str] = []
    for ckpt in reversed(list_checkpoints(run_dir)):
        problem = check_checkpoint(ckpt, optim=optim)
        if problem is None:
            for text in damaged:
                if text not in _warned:
                    _warned.add(text)
                    warnings.warn(f"skipped damaged checkpoint {text}; using {ckpt.name}")
            return ckpt
        damaged.append(f"{ckpt}: {problem}")
    if damaged:
        listed = "; ".join(damaged[:3]) + (f"; and {len(damaged) - 3} older ones" if len(damaged) > 3 else "")
        raise CheckpointError(f"'{run_dir}' holds no intact checkpoint: {listed}. Restore them from a backup, or "
                              f"train a new run")
    return None


def resolve_checkpoint(path: str | Path, *, optim: bool = True) -> Path:
    """A checkpoint directory (checked), or a run directory (its newest intact checkpoint)."""
    p = Path(path)
    if (p / "state.json").exists() or (p / "model.safetensors").exists():
        problem = check_checkpoint(p, optim=optim)
        if problem:
            raise CheckpointError(f"checkpoint {p} is damaged: {problem}; give its run directory to use the newest "
                                  f"intact checkpoint")
        return p
    latest = latest_checkpoint(p, optim=optim)
    if latest is None:
        raise ValueError(f"'{path}' holds no checkpoint; give --ckpt a run directory written by 'ganforge train'")
    return latest


def load_tensors(ckpt: Path, name: str) -> dict[str, torch.Tensor]:
    """One .safetensors file of a checkpoint; CheckpointError (naming it) when it does not parse."""
    try:
        return load_file(str(ckpt / name))
    except SafetensorError as e:
        raise CheckpointError(f"{ckpt / name} is damaged ({e}); use another checkpoint of the run") from None


def refuse_nonfinite(ckpt: Path, weights: Any) -> None:
    """Raise NonFiniteWeights, naming the checkpoint, when any weight (of a state dict, or a list of them)
    is NaN or infinite."""
    bad = count_nonfinite(weights)
    if bad:
        raise NonFiniteWeights(f"checkpoint {ckpt} holds {bad:,} non-finite weights (training diverged before it "
                               f"was saved) and will not be used; give --ckpt an earlier checkpoint of the run, or "
                               f"delete this one", bad)


def read_checkpoint(path: str | Path, *, with_optim: bool = True) -> dict[str, Any]:
    """Load a checkpoint directory (or a run's newest intact one) into plain dicts (tensors on CPU).
    CheckpointError when it is damaged, holds non-finite weights, or its optim.pt is not ganforge's."""
    p = resolve_checkpoint(path, optim=with_optim)
    out: dict[str, Any] = {
        "path": p,
        "config": json.loads((p / "config.json").read_text()),
        "state": json.loads((p / "state.json").read_text()),
        "model": load_tensors(p, "model.safetensors"),
        "ema": load_tensors(p, "ema.safetensors") if (p / "ema.safetensors").exists() else None,
    }
    refuse_nonfinite(p, [out["model"], out["ema"] or {}])
    if with_optim:
        try:
            out["optim"] = torch.load(p / "optim.pt", map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # holds objects a weights-only load refuses; its advice is never taken
            raise CheckpointError(f"{p / 'optim.pt'} is not a ganforge optimizer state and will not be "
                                  f"loaded") from None
        except (RuntimeError, EOFError) as e:
            raise CheckpointError(f"{p / 'optim.pt'} is damaged ({str(e).splitlines()[0]}); use another "
                                  f"checkpoint of the run") from None
    return out
