"""Built-in datasets that need no user data: Fashion-MNIST, 8x8 digits, and the 2-D mixture testbeds.

The image-to-image sets (fmnist-edges2items, emoji-gray2color, ...) live in translation.py and are
registered here, in BUILTINS.

ring8 and grid25 are the standard mode-collapse testbeds (Metz et al. 2017; Srivastava et al. 2017):
8 Gaussians on a circle of radius 2 (std 0.02) and 25 Gaussians on {-4,-2,0,2,4}^2 (std 0.05).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

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


def cache_root() -> Path:
    """Where ganforge keeps downloads and decoded stores: $GANFORGE_CACHE or ~/.cache/ganforge."""
    return Path(os.environ.get("GANFORGE_CACHE", Path.home() / ".cache" / "ganforge"))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path, sha256: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
            shutil.copyfileobj(r, f)
        got = sha256_file(tmp)
        if got != sha256:
            raise ValueError(f"download of {url} has SHA-256 {got}, expected {sha256}; delete {dest.parent} and retry")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fashion_mnist_file(name: str) -> Path:
    """Path of one official Fashion-MNIST file: the Debian package's copy, else a checked download."""
    local = FASHION_DEBIAN_DIR / name
    if local.exists():
        return local
    cached = cache_root() / "fashion-mnist" / name
    if cached.exists() and sha256_file(cached) == FASHION_FILES[name]:
        return cached
    try:
        _download(FASHION_URL + name, cached, FASHION_FILES[name])
    except OSError as e:
        raise RuntimeError(
            f"Fashion-MNIST is not installed and could not be downloaded ({e}). Install the Debian package "
            f"'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist) or put the four official .gz "
            f"files into {cached.parent}"
        ) from None
    return cached


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


def _resize_uint8(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """(N, C, h, w) uint8 -> (N, C, H, W) uint8 with antialiased bilinear resizing."""
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    out = []
    for chunk in x.split(4096):
        y = F.interpolate(chunk.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def _set_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
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
    x = _set_channels(_resize_uint8(x, size), channels)
    spec = DataSpec("image", tuple(x.shape[1:]), 10, FASHION_CLASSES, "fashion-mnist" if split == "train" else "fashion-mnist-test")
    return TensorData(spec, x, torch.from_numpy(labels.astype(np.int64)), source="builtin:fashion-mnist")


def digits(size=None, channels=None, split: str = "train") -> TensorData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8)).unsqueeze(1)  # (1797, 1, 8, 8)
    x = _set_channels(_resize_uint8(x, size), channels)
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


def _mixture_data(name: str, n: int = 100_000, seed: int = 1234) -> TensorData:
    mix = MIXTURES[name]()
    x, k = mix.sample(n, torch.Generator().manual_seed(seed))
    spec = DataSpec("points", (2,), 0, (), name)
    return TensorData(spec, x, k, source=f"builtin:{name}")


def _points_only(fn):
    def load(size=None, channels=None, split: str = "train") -> TensorData:
        if size is not None or channels is not None:
            raise ValueError(f"builtin:{fn} holds 2-D points; drop --size/--channels")
        data = _mixture_data(fn, seed=1234 if split == "train" else 4321)
        # Mixture labels (which centre drew a point) are not class labels: keep the data unlabelled.
        return TensorData(data.spec, data.x, None, source=data.source)

    return load


BUILTINS: dict[str, Callable[..., TensorData]] = {
    "fashion-mnist": fashion_mnist,
    "digits": digits,
    "ring8": _points_only("ring8"),
    "grid25": _points_only("grid25"),
}
# Image-to-image sets (translation.py builds them from the loaders above; ganforge.data imports this
# module first, so the names translation.py takes from here already exist).
from .translation import PARAMETRISED_BUILTINS, TRANSLATION_BUILTINS  # noqa: E402

BUILTINS.update(TRANSLATION_BUILTINS)


def builtin_names() -> list[str]:
    """Every valid --data builtin:... spelling, e.g. builtin:fashion-mnist and builtin:fmnist-pair:P,Q."""
    return [f"builtin:{n}" for n in BUILTINS] + [f"builtin:{n}:{arg}" for n, (_, arg) in PARAMETRISED_BUILTINS.items()]


def load_builtin(name: str, size=None, channels=None, split: str = "train") -> TensorData:
    """builtin NAME (without the 'builtin:' prefix); NAME:ARG for the parametrised ones (fmnist-pair:7,9)."""
    base, _, arg = name.partition(":")
    if arg and base in PARAMETRISED_BUILTINS:
        return PARAMETRISED_BUILTINS[base][0](arg, size=size, channels=channels, split=split)
    if name not in BUILTINS:
        hint = f"; builtin:{base} needs an argument, e.g. builtin:{base}:7,9" if base in PARAMETRISED_BUILTINS else ""
        raise ValueError(f"unknown built-in dataset '{name}'{hint}; choose one of: " + ", ".join(builtin_names()))
    return BUILTINS[name](size=size, channels=channels, split=split)
