"""glibc malloc tuning (train/memory.py): freed activations are reused instead of page-faulting afresh."""

import platform
import subprocess
import sys
import textwrap

import pytest

from ganforge.train import memory

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                           reason="mallopt tuning is glibc-only")

# allocate and fill a 64 MiB tensor 20 times: 16,384 pages each; print minor page faults per round
PROBE = textwrap.dedent("""
    import resource, sys, torch
    if sys.argv[1] == "tuned":
        from ganforge.train.memory import tune_malloc
        assert tune_malloc()
    for _ in range(3):  # warm-up: the heap's first growth faults in any case
        torch.ones(16 << 20)
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        t = torch.ones(16 << 20)
        del t
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 20)
""")


def _faults_per_round(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


@glibc
def test_tuned_malloc_reuses_freed_blocks_without_page_faults():
    pages = (64 << 20) // 4096
    system, tuned = _faults_per_round("system"), _faults_per_round("tuned")
    assert system > 0.5 * pages  # glibc's default: a block this size is mmap'd and unmapped every time
    assert tuned < 0.01 * pages  # tuned: the same heap block is reused


@glibc
def test_tune_malloc_is_idempotent_and_described():
    first = memory.tune_malloc()
    assert first is not None and "malloc keeps freed blocks" in first
    assert memory.tune_malloc() == first


def test_trainer_rejects_an_unknown_malloc_setting(tmp_path):
    from ganforge import config
    from ganforge.train import build_run

    cfg = config.from_dict({"family": "gan", "data": {"source": "builtin:ring8"},
                            "train": {"steps": 0, "batch_size": 8, "device": "cpu", "malloc": "jemalloc"},
                            "log": {"tensorboard": False, "progress": False}})
    with pytest.raises(ValueError, match="train.malloc must be 'auto' or 'system'"):
        build_run(cfg, tmp_path)
