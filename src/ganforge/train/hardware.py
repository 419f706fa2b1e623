"""Where and at what precision a run trains: the device (CUDA ranks take cuda:LOCAL_RANK) and train.precision
resolved against what the hardware runs natively."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

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


# The threshold auto asks of a measured bf16 speed-up before it gives up fp32's precision for it.
BF16_MIN_SPEEDUP = 1.1
_speedup_cache: dict[str, float] = {}


def bf16_conv_speedup(rounds: int = 4) -> float:
    """fp32 time / bf16-autocast time of one 3x3 convolution's forward and backward on this CPU (channels_last,
    16 x 64 x 32 x 32 images, 64 filters), measured once per process (about 0.3 s), best of `rounds` alternated
    rounds per arm, so a busy moment penalises neither arm.

    Why measure: AVX512-BF16 without AMX is no promise of speed. On a 2-core AMD EPYC, bf16 convolutions ran about
    1.5-2x faster than fp32; on a 2-core Intel Xeon with the same flag they ran at 0.6x (oneDNN's bf16 kernels
    there convert more than they gain). A GAN step is mostly convolutions, so this one layer predicts the step:
    DCGAN at 100x100 trained at 0.74x in bf16 on that Xeon, FastGAN at 0.89x (bench/precision_auto.py).
    What it does not see: recipes whose maps are all tiny (8x8 and below take a matmul route in bf16,
    nn/convs.py) and runs with train.channels_last=false; cached per thread count.
    """
    key = f"cpu/{torch.get_num_threads()}"
    if key not in _speedup_cache:
        # the global RNG is left as it was: a run seeded before this timing draws the same noise as one after it
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(0)
            conv = nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)
            x = torch.randn(16, 64, 32, 32).to(memory_format=torch.channels_last).requires_grad_(True)
            best = {"fp32": float("inf"), "bf16": float("inf")}
            for r in range(rounds + 1):  # round 0 warms both arms up (oneDNN builds its kernels on first use)
                for arm in ("fp32", "bf16"):
                    t0 = time.perf_counter()
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=arm == "bf16"):
                        y = conv(x)
                    y.float().square().mean().backward()
                    dt = time.perf_counter() - t0
                    if r:
                        best[arm] = min(best[arm], dt)
        _speedup_cache[key] = best["fp32"] / best["bf16"]
    return _speedup_cache[key]


def resolve_precision(tc: Any, device: torch.device, kind: str) -> tuple[str, str]:
    """(fp32 | bf16, why) for train.precision on `device` with data of `kind` (image | points).

    auto picks bf16 autocast for image and audio data where bf16 is fast: CUDA with bf16, a CPU with AMX (the
    convolutions and matmuls run ~2x faster; wavegan 1.45x on a 2-core AMX CPU), or a CPU with AVX512-BF16 alone
    when a measured convolution runs at least BF16_MIN_SPEEDUP x faster in bf16 (`bf16_conv_speedup`: the flag
    alone has been measured both 1.5-2x faster and 0.6x slower on 2-core machines). Weights, optimizer state,
    losses and penalties stay fp32. Otherwise fp32: point and tabular data train small MLPs, where bf16 gains
    nothing and its 3 significant digits would blur the coordinates. A resumed run keeps the precision it
    started with (Trainer.load_checkpoint), so resume stays bit-exact. The old spelling train.amp (none | bf16)
    still works.
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
    if not why:
        return "fp32", f"auto: no native bf16 on {device.type}"
    if why == "CPU AVX512-BF16":
        speedup = bf16_conv_speedup()
        if speedup < BF16_MIN_SPEEDUP:
            return "fp32", f"auto: {why}, but a bf16 convolution measured {speedup:.2f}x fp32's speed here"
        return "bf16", f"auto: {why}, a bf16 convolution measured {speedup:.2f}x fp32's speed here"
    return "bf16", f"auto: {why}"
