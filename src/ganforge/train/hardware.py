"""Where and at what precision a run trains: the device (CUDA ranks take cuda:LOCAL_RANK) and train.precision
resolved against what the hardware runs natively."""

from __future__ import annotations

from typing import Any

import torch

from ..config import CHOICES


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """train.device as a torch.device; in a torchrun run CUDA ranks take cuda:LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
    if name == "cuda" and local_rank is not None:
        return torch.device("cuda", local_rank)
    return torch.device(name)


PRECISIONS = CHOICES["train.precision"]


def native_bf16(device: torch.device) -> str | None:
    """Why `device` runs bf16 natively (a short reason), or None when bf16 would be emulated (slow)."""
    if device.type == "cuda":
        return "CUDA bf16" if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        for flag, name in (("_is_amx_tile_supported", "AMX"), ("_is_avx512_bf16_supported", "AVX512-BF16")):
            check = getattr(torch.cpu, flag, None)
            if check is not None and check():
                return f"CPU {name}"
    return None


def resolve_precision(tc: Any, device: torch.device, kind: str) -> tuple[str, str]:
    """(fp32 | bf16, why) for train.precision on `device` with data of `kind` (image | points).

    auto picks bf16 autocast for image and audio data on hardware with native bf16 (the convolutions and matmuls
    run ~2x faster; wavegan 1.45x on a 2-core AMX CPU; weights, optimizer state, losses and penalties stay fp32) and fp32 otherwise: point
    and tabular data train small MLPs, where bf16 gains nothing and its 3 significant digits would blur
    the coordinates. The old spelling train.amp (none | bf16) still works.
    """
    name = tc.precision
    if tc.amp:
        legacy = {"none": "fp32", "bf16": "bf16"}
        if tc.amp not in legacy:
            raise ValueError(f"train.amp must be 'none' or 'bf16' (better: train.precision=fp32|bf16|auto), got '{tc.amp}'")
        if name == "auto":
            return legacy[tc.amp], f"train.amp={tc.amp}"
    if name not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got '{name}'")
    if name != "auto":
        return name, "asked for"
    if kind not in ("image", "audio"):
        return "fp32", f"auto: {kind} data"
    why = native_bf16(device)
    return ("bf16", f"auto: {why}") if why else ("fp32", f"auto: no native bf16 on {device.type}")
