"""Built-in datasets that need no user data: Fashion-MNIST, 8x8 digits, and the 2-D mixture testbeds.

The image-to-image sets (fmnist-edges2items, emoji-gray2color, ...) live in translation.py; both are
named in registry.py (BUILTINS), which is where `builtin:NAME` is looked up.

ring8 and grid25 are the standard mode-collapse testbeds (Metz et al. 2017; Srivastava et al. 2017):
8 Gaussians on a circle of radius 2 (std 0.02) and 25 Gaussians on {-4,-2,0,2,4}^2 (std 0.05).
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..cache import cache_root, download, sha256_file
from .spec import DataSpec
from .store import TensorData

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_FILES = {  # file name -> SHA-256 of the official gzip
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
FASHION_CLASSES = (
    "t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
)


def fashion_mnist_file(name: str) -> Path:
    """Path of one official Fashion-MNIST file: the Debian package's copy, else a checked download."""
    local = FASHION_DEBIAN_DIR / name
    if local.exists():
        return local
    cached = cache_root() / "fashion-mnist" / name
    if cached.exists() and sha256_file(cached) == FASHION_FILES[name]:
        return cached
    fix = (f"install the Debian package 'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist) or put "
           f"the four official .gz files into {cached.parent}")
    return download(FASHION_URL + name, cached, FASHION_FILES[name], what=f"Fashion-MNIST's {name}", fix=fix)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def resize_uint8(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """(N, C, h, w) uint8 -> (N, C, H, W) uint8 with antialiased bilinear resizing."""
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    out = []
    for chunk in x.split(4096):
        y = F.interpolate(chunk.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def set_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): unchanged, or grey repeated to RGB; anything else is an error."""
    if channels is None or channels == x.shape[1]:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    raise ValueError(f"cannot convert {x.shape[1]}-channel images to {channels} channels; use --channels 1 or 3")


def fashion_mnist(size=None, channels=None, split: str = "train") -> TensorData:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(fashion_mnist_file(f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(fashion_mnist_file(f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28)
    x = set_channels(resize_uint8(x, size), channels)
    spec = DataSpec("image", tuple(x.shape[1:]), 10, FASHION_CLASSES, "fashion-mnist" if split == "train" else "fashion-mnist-test")
    return TensorData(spec, x, torch.from_numpy(labels.astype(np.int64)), source="builtin:fashion-mnist")


def digits(size=None, channels=None, split: str = "train") -> TensorData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8)).unsqueeze(1)  # (1797, 1, 8, 8)
    x = set_channels(resize_uint8(x, size), channels)
    spec = DataSpec("image", tuple(x.shape[1:]), 10, tuple(str(i) for i in range(10)), "digits")
    return TensorData(spec, x, torch.from_numpy(d.target.astype(np.int64)), source="builtin:digits")


@dataclass(frozen=True)
class Mixture:
    """A 2-D Gaussian mixture with equal weights: the centres and the common std."""

    centers: torch.Tensor  # (K, 2)
    std: float

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        k = torch.randint(len(self.centers), (n,), generator=generator)
        return self.centers[k] + self.std * torch.randn(n, 2, generator=generator), k


def ring8() -> Mixture:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return Mixture(torch.stack([2 * angles.cos(), 2 * angles.sin()], 1).float(), 0.02)


def grid25() -> Mixture:
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return Mixture(torch.cartesian_prod(v, v), 0.05)


MIXTURES: dict[str, Callable[[], Mixture]] = {"ring8": ring8, "grid25": grid25}


def mixture_data(name: str, n: int = 100_000, seed: int = 1234) -> TensorData:
    """n points of MIXTURES[name] with the centre each was drawn from as y."""
    mix = MIXTURES[name]()
    x, k = mix.sample(n, torch.Generator().manual_seed(seed))
    spec = DataSpec("points", (2,), 0, (), name)
    return TensorData(spec, x, k, source=f"builtin:{name}")


def mixture_loader(name: str) -> Callable[..., TensorData]:
    """The built-in loader of mixture `name`: 100k unlabelled points, seed 1234 (train) or 4321 (test)."""

    def load(size=None, channels=None, split: str = "train") -> TensorData:
        if size is not None or channels is not None:
            raise ValueError(f"builtin:{name} holds 2-D points; drop --size/--channels")
        data = mixture_data(name, seed=1234 if split == "train" else 4321)
        # Mixture labels (which centre drew a point) are not class labels: keep the data unlabelled.
        return TensorData(data.spec, data.x, None, source=data.source)

    return load
