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
import functools
import platform
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# blocks below the mmap threshold come from the heap: 1 GiB, or glibc's documented maximum (4 MiB x
# sizeof(long) = 32 MiB on 64-bit) where an older glibc refuses more
MMAP_CHOICES = (1 << 30, 32 << 20)
TRIM = 1 << 30       # free memory at the top of the heap is kept up to this much


@functools.cache
def tune_malloc() -> str | None:
    """Raise glibc's mmap and trim thresholds for this process (once); a short description, or None
    where the C library is not glibc or refuses the setting."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap = next((size for size in MMAP_CHOICES if mallopt(M_MMAP_THRESHOLD, size) == 1), None)
    if mmap is None or mallopt(M_TRIM_THRESHOLD, TRIM) != 1:
        return None
    return f"malloc keeps freed blocks (mmap threshold {mmap >> 20} MiB, trim {TRIM >> 20} MiB)"
