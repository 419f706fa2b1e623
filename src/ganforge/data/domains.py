"""Target domains for domain adaptation (the `dann` family): Fashion-MNIST moved to another look, labels kept so that
the adapted classifier can be measured on them (training reads their images only).

- builtin:fashion-mnist-m: "Fashion-MNIST-M", after Ganin et al.'s MNIST-M: each item blended with a colour patch,
  out = |patch - item| per channel, the patch a random 28x28 crop of a colour emoji (Debian's
  fonts-noto-color-emoji as the emoji built-ins render them, downscaled to 56x56; training items take patches from
  the emoji of the training split, test items from the held-out emoji). RGB. A real shift: colour, texture and
  inverted contrast where the patch is light.
- builtin:fashion-mnist-inverted: 255 - x. A real shift: every pixel's contrast flips.
- builtin:fashion-mnist-blurred: a Gaussian blur (sigma 1.5 pixels). A mild shift.
Each is deterministic (seeded by split) and follows --size / --channels like the other built-ins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .builtin import FASHION_CLASSES, fashion_mnist, resize_uint8, set_channels
from .spec import DataSpec
from .store import TensorData
from .translation import EMOJI_TEST_EVERY, emoji_images

PATCH_SOURCE_SIDE = 56  # the emoji are downscaled to this side before the 28x28 patches are cut
BLUR_SIGMA = 1.5


def _domain(name: str, x: torch.Tensor, y: torch.Tensor, size, channels, split: str) -> TensorData:
    x = set_channels(resize_uint8(x, tuple(size) if size else None), channels)
    spec = DataSpec("image", tuple(x.shape[1:]), 10, FASHION_CLASSES, name if split == "train" else f"{name}-test")
    return TensorData(spec, x, y, source=f"builtin:{name}")


def emoji_patches(n: int, side: int, split: str, seed: int) -> torch.Tensor:
    """n random side x side RGB crops (uint8, (n, 3, side, side)) of the emoji of a split, seeded."""
    x, _ = emoji_images()
    test = torch.arange(len(x)) % EMOJI_TEST_EVERY == EMOJI_TEST_EVERY - 1
    glyphs = resize_uint8(x[test if split == "test" else ~test], (PATCH_SOURCE_SIDE, PATCH_SOURCE_SIDE))
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(len(glyphs), (n,), generator=g)
    top = torch.randint(PATCH_SOURCE_SIDE - side + 1, (n,), generator=g)
    left = torch.randint(PATCH_SOURCE_SIDE - side + 1, (n,), generator=g)
    rows = (top[:, None] + torch.arange(side))[:, :, None]          # (n, side, 1)
    cols = (left[:, None] + torch.arange(side))[:, None, :]         # (n, 1, side)
    hwc = glyphs.permute(0, 2, 3, 1)                                 # (G, S, S, 3), a view
    return hwc[which[:, None, None], rows, cols].permute(0, 3, 1, 2).contiguous()  # only the crops are gathered


def fashion_mnist_m(size=None, channels=None, split: str = "train") -> TensorData:
    src = fashion_mnist(split=split)
    item = src.x.expand(-1, 3, -1, -1).to(torch.int16)
    patch = emoji_patches(len(item), 28, split, seed=0 if split == "train" else 1).to(torch.int16)
    x = (patch - item).abs().to(torch.uint8)
    return _domain("fashion-mnist-m", x, src.y, size, channels, split)


def fashion_mnist_inverted(size=None, channels=None, split: str = "train") -> TensorData:
    src = fashion_mnist(split=split)
    return _domain("fashion-mnist-inverted", 255 - src.x, src.y, size, channels, split)


def gaussian_blur_uint8(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, C, H, W) uint8 blurred by a separable Gaussian (radius 3 sigma, reflected borders)."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t**2 / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    out = []
    for chunk in x.split(4096):
        f = F.pad(chunk.float(), (r, r, r, r), mode="reflect")
        f = F.conv2d(f, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        f = F.conv2d(f, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
        out.append(f.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def fashion_mnist_blurred(size=None, channels=None, split: str = "train") -> TensorData:
    src = fashion_mnist(split=split)
    return _domain("fashion-mnist-blurred", gaussian_blur_uint8(src.x, BLUR_SIGMA), src.y, size, channels, split)
