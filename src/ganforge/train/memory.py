"""Host memory: keep glibc malloc from handing big tensors back to the kernel between steps.

A training step on CPU allocates and frees the same activations every step. With glibc's default
settings, blocks of more than a few MiB are mmap'd and unmapped each time, and freed memory at the top
of the heap is trimmed: every step then touches fresh pages, and the kernel zero-fills each one on its
first write. For the 64x64 DCGAN at batch 64 that is ~6,000 minor page faults and about a tenth of the
step time in bf16 (bench/speed.py measures it). Raising malloc's mmap and trim thresholds lets the freed
blocks be reused, as a caching allocator would (the same advice as Intel's for PyTorch on CPU, which
preloads jemalloc or tcmalloc; `mallopt` gets the gain without another library).

The cost: the process keeps up to `TRIM` bytes it freed at the top of its heap instead of returning
them, that is, its resident size stays near its peak. Only glibc on Linux is touched; elsewhere this
is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP = 1 << 30       # blocks below this come from the heap; an older glibc that refuses it gets its documented maximum:
MMAP_FALLBACK = 32 << 20  # (4 MiB x sizeof(long) on 64-bit)
TRIM = 1 << 30       # free memory at the top of the heap is kept up to this much

_state: str | None = None


def tune_malloc() -> str | None:
    """Raise glibc's mmap and trim thresholds for this process (once); a short description, or None
    where the C library is not glibc or refuses the setting."""
    global _state
    if _state is not None:
        return _state or None
    _state = ""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap = MMAP if mallopt(M_MMAP_THRESHOLD, MMAP) == 1 else MMAP_FALLBACK
    if mmap == MMAP_FALLBACK and mallopt(M_MMAP_THRESHOLD, MMAP_FALLBACK) != 1:
        return None
    if mallopt(M_TRIM_THRESHOLD, TRIM) != 1:
        return None
    _state = f"malloc keeps freed blocks (mmap threshold {mmap >> 20} MiB, trim {TRIM >> 20} MiB)"
    return _state
