"""Run lightweight-gan's own code on a CPU-only torch: `python lwgan_cpu.py ARGS` == `lightweight_gan ARGS`.

lightweight-gan 1.2.1 is written for CUDA only: importing it asserts `torch.cuda.is_available()`, and its
trainer moves every model and batch with `.cuda(rank)` and builds its loss accumulators on
`torch.device('cuda:RANK')`. Its source is left untouched; before importing it this launcher redirects exactly
those CUDA entry points to the CPU:

  * `torch.cuda.is_available()` answers True only while `lightweight_gan` is being imported (its asserts), and
    is restored right after, so DataLoader, GradScaler and autocast still see a CPU-only machine;
  * `Tensor.cuda(...)` and `Module.cuda(...)` return the object unchanged (it is on the CPU already);
  * inside the `lightweight_gan.lightweight_gan` module only, `torch.device('cuda...')` gives the CPU device.

Everything else (models, losses, augmentation, optimiser, data pipeline, checkpointing, the fire CLI) is the
package's own. `--amp` stays off (its autocast is CUDA-only). Used only by bench/peer_lwgan.py, in the peer's
virtual environment.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def cpu_patches() -> None:
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    nn.Module.cuda = lambda self, *args, **kwargs: self

    real_available = torch.cuda.is_available
    torch.cuda.is_available = lambda: True
    try:  # both modules assert a GPU when imported; the CLI imports them both
        import lightweight_gan.cli  # noqa: F401
        import lightweight_gan.diff_augment_test  # noqa: F401
        import lightweight_gan.lightweight_gan as lw
    finally:
        torch.cuda.is_available = real_available

    real_device = torch.device

    def device(*args, **kwargs):
        if args and isinstance(args[0], str) and args[0].startswith("cuda"):
            return real_device("cpu")
        return real_device(*args, **kwargs)

    proxy = types.ModuleType("torch")
    proxy.__dict__.update({k: v for k, v in vars(torch).items() if not k.startswith("__")})
    proxy.__getattr__ = lambda name: getattr(torch, name)  # submodules imported later
    proxy.device = device
    lw.torch = proxy


def main() -> None:
    cpu_patches()
    from lightweight_gan.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
