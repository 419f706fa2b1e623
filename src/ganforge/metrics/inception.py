"""The Inception-v3 network used for FID (Heusel et al., 2017) and its weights.

Architecture: Inception-v3 (Szegedy et al., 2016) exactly as in the TensorFlow graph
`inception-2015-12-05` that the reference FID code runs, which differs from the textbook network in
three places, all reproduced here:
- the pool branch of Mixed_5b..5d (type A) and Mixed_6b..6e (type C) and of Mixed_7b averages only over
  real pixels at the border (TF's SAME avg-pool; `count_include_pad=False` in torch);
- Mixed_7c's pool branch uses a 3x3 max-pool instead of an average;
- the classifier has 1008 outputs (1000 ImageNet classes + 8 unused), not 1000.

Input: (N, 3, 299, 299) floats in [-1, 1], fed to the first convolution as they are. The TF graph
takes pixels p in [0, 255] and computes (p - 128) / 128; the PyTorch port (pytorch-fid) computes
2 * p / 255 - 1. We follow the port: an image in ganforge's [-1, 1] convention is already that value,
so no normalisation happens here (the two conventions differ by at most 1/128 per pixel). Resizing to
299x299 is done by the extractor (features.py), not by this module.

Weights: the PyTorch port of the TF graph published by pytorch-fid, `FID_WEIGHTS_URL`. Its module and
parameter names are torchvision's Inception3 names, and this module uses the same names, so the port's
state dict loads with `load_state_dict(strict=True)` without renaming: `Conv2d_1a_3x3.conv.weight`,
`Conv2d_1a_3x3.bn.{weight,bias,running_mean,running_var,num_batches_tracked}`, ...,
`Mixed_7c.branch_pool.conv.weight`, `fc.weight`, `fc.bias` (no AuxLogits). The mapping is the
identity; `port_key_names()` lists it and a test checks it covers every parameter and buffer.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cache import cache_root, download, sha256_file

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
# torch.hub convention: the hex digits after the last "-" of the file name start its SHA-256.
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
FEATURE_DIM = 2048
N_CLASSES = 1008
INPUT_SIZE = (299, 299)


class ConvBN(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3, as in the TF graph) -> ReLU; `conv`/`bn` as in the port."""

    def __init__(self, c_in: int, c_out: int, kernel_size, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_same(x: Tensor) -> Tensor:
    """3x3/1 average over real pixels only (TF SAME padding)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    """Mixed_5b..5d (35x35): 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | avg-pool->1x1; out 224 + pool_features."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(c_in, 64, 1)
        self.branch5x5_1 = ConvBN(c_in, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(c_in, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_same(x)),
        ], 1)


class MixedB(nn.Module):
    """Mixed_6a, grid reduction 35 -> 17: 3x3/2 | 1x1->3x3->3x3/2 | max-pool/2; out 480 + c_in."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class MixedC(nn.Module):
    """Mixed_6b..6e (17x17), factorised 7x7 convs (1x7 then 7x1) with `c7` inner channels; out 768."""

    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        row, col = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.branch1x1 = ConvBN(c_in, 192, 1)
        self.branch7x7_1 = ConvBN(c_in, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, **row)
        self.branch7x7_3 = ConvBN(c7, 192, **col)
        self.branch7x7dbl_1 = ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, **col)
        self.branch7x7dbl_3 = ConvBN(c7, c7, **row)
        self.branch7x7dbl_4 = ConvBN(c7, c7, **col)
        self.branch7x7dbl_5 = ConvBN(c7, 192, **row)
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            self.branch7x7dbl_5(self.branch7x7dbl_4(dbl)),
            self.branch_pool(_avg_pool_same(x)),
        ], 1)


class MixedD(nn.Module):
    """Mixed_7a, grid reduction 17 -> 8: 1x1->3x3/2 | 1x1->1x7->7x1->3x3/2 | max-pool/2; out 512 + c_in."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(c_in, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            self.branch7x7x3_4(self.branch7x7x3_3(b7)),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class MixedE(nn.Module):
    """Mixed_7b/7c (8x8), expanded filter bank: 1x3 and 3x1 side by side; out 2048.

    `pool="avg"` (Mixed_7b, padding excluded) or `pool="max"` (Mixed_7c in the FID graph).
    """

    def __init__(self, c_in: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = ConvBN(c_in, 320, 1)
        self.branch3x3_1 = ConvBN(c_in, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = _avg_pool_same(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
            self.branch_pool(pooled),
        ], 1)


class FIDInceptionV3(nn.Module):
    """(N, 3, 299, 299) in [-1, 1] -> (pool3 features (N, 2048), logits (N, 1008))."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)   # 149x149
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)            # 147x147
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)  # 147x147, then max-pool -> 73x73
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)           # 71x71, then max-pool -> 35x35
        self.Mixed_5b = MixedA(192, pool_features=32)     # 256
        self.Mixed_5c = MixedA(256, pool_features=64)     # 288
        self.Mixed_5d = MixedA(288, pool_features=64)     # 288
        self.Mixed_6a = MixedB(288)                       # 768 @ 17x17
        self.Mixed_6b = MixedC(768, c7=128)
        self.Mixed_6c = MixedC(768, c7=160)
        self.Mixed_6d = MixedC(768, c7=160)
        self.Mixed_6e = MixedC(768, c7=192)
        self.Mixed_7a = MixedD(768)                       # 1280 @ 8x8
        self.Mixed_7b = MixedE(1280, pool="avg")          # 2048
        self.Mixed_7c = MixedE(2048, pool="max")          # 2048
        self.fc = nn.Linear(FEATURE_DIM, N_CLASSES)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random weights that keep activations O(1) through the depth (He et al., 2015).

        Only for tests and architecture checks; real use loads the ported weights.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) -> (N, 2048): the global average of Mixed_7c ("pool3" in the TF graph)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pool = self.features(x)
        return pool, self.fc(pool)


def port_key_names(model: FIDInceptionV3 | None = None) -> list[str]:
    """State-dict keys of the pytorch-fid port that this module loads (identity mapping onto our names)."""
    return list((model or FIDInceptionV3()).state_dict().keys())


# ---- weights: explicit path, user cache, or a checked download ----------------------------------------

def weights_cache_dir() -> Path:
    """cache_root()/weights: $GANFORGE_CACHE/weights, else ~/.cache/ganforge/weights."""
    return cache_root() / "weights"


def hash_prefix_from_url(url: str) -> str:
    """'.../name-6726825d.pth' -> '6726825d' (the torch.hub naming convention); '' if there is none."""
    match = re.search(r"-([a-f0-9]{8,})\.[^./]+$", url.rsplit("/", 1)[-1])
    return match.group(1) if match else ""


def _bad_hash_error(path: Path, got: str, prefix: str) -> ValueError:
    return ValueError(
        f"{path} has SHA-256 {got[:16]}..., expected one starting with {prefix}: the file is corrupt or not "
        f"the FID Inception weights. Delete it to download again, or pass --inception-weights PATH"
    )


def fid_weights_path(url: str | None = None, cache_dir: str | Path | None = None) -> Path:
    """The cached FID weights file, downloaded (and SHA-256 checked) on first use.

    The hash prefix in the URL's file name is checked both for a fresh download and for a cached copy.
    """
    url = url or FID_WEIGHTS_URL
    cache_dir = Path(cache_dir) if cache_dir is not None else weights_cache_dir()
    dest = cache_dir / url.rsplit("/", 1)[-1]
    prefix = hash_prefix_from_url(url)
    if not prefix:
        raise ValueError(f"cannot check the weights at {url}: the file name carries no SHA-256 prefix "
                         f"(NAME-<8+ hex digits>.pth); download it yourself and pass --inception-weights PATH")
    if dest.exists():
        got = sha256_file(dest)
        if not got.startswith(prefix):
            raise _bad_hash_error(dest, got, prefix)
        return dest
    fix = (f"on a machine without internet, download that file elsewhere and pass --inception-weights PATH "
           f"(Python: features.load('inception', weights=PATH)), or copy it into {cache_dir}")
    return download(url, dest, prefix, what="the FID Inception weights", fix=fix)


def load_port_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read the port's .pth (tensors only: weights_only=True) and add BatchNorm counters if absent."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors; give the FID .pth file")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    for key in [k for k in state if k.endswith(".bn.running_mean")]:
        # files written before torch 0.4.1 have no num_batches_tracked; it is unused in eval mode
        state.setdefault(key.replace("running_mean", "num_batches_tracked"), torch.tensor(0, dtype=torch.long))
    return state
