"""U-Net generator (Ronneberger et al. 2015) as used by pix2pix (Isola et al. 2017), sized from the image.

Encoder C64 - C128 - C256 - C512 - C512 ...: 4x4 convs with stride 2, LeakyReLU(0.2), BatchNorm on all
but the first layer (and, as in the authors' code, the 1-px bottleneck, where batch statistics of a
single image would be undefined). Decoder: 4x4 transposed convs with stride 2, ReLU, BatchNorm, dropout
0.5 in the first (innermost) three blocks; each block's output is concatenated with the encoder's
activation of the same resolution (the skip), and the last block maps to the output channels + tanh.

The depth follows the image: levels are added until the shorter side reaches 1 px (at most
`max_depth`, 8 as for 256x256 in the paper), so 8x8 has 3 levels, 28x28 has 4 (28-14-7-3-1), 64x64 has
6 and 256x256 has 8. Odd sides need no padding: a 4x4/stride-2/pad-1 conv maps n to floor(n/2), and the
matching transposed conv gets output_padding = n mod 2, so every skip meets an activation of its own size.
Input and output channels may differ (grey -> colour); input and output sizes are the same. The convs
are `FastConv2d` / `FastConvTranspose2d` (torch.nn's, with matmul routes on CPU where oneDNN is slow):
pix2pix on builtin:fmnist-edges2items trains 1.04x faster with them (8 paired rounds, min 1.01x).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .convs import FastConv2d, FastConvTranspose2d
from .patchgan import norm_layer


def unet_sizes(height: int, width: int, max_depth: int = 8) -> list[tuple[int, int]]:
    """The (H, W) of every level from the input down to the bottleneck, e.g. 28x28 -> 28, 14, 7, 3, 1."""
    if min(height, width) < 2:
        raise ValueError(f"a U-Net needs images of at least 2x2 px, got {height}x{width}")
    if max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    sizes = [(height, width)]
    while min(sizes[-1]) >= 2 and len(sizes) <= max_depth:
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))
    return sizes


class Down(nn.Module):
    """C_k of the encoder: LeakyReLU(0.2)-activated 4x4 stride-2 conv (+ norm)."""

    def __init__(self, c_in: int, c_out: int, norm: str) -> None:
        super().__init__()
        self.conv = FastConv2d(c_in, c_out, 4, 2, 1, bias=norm == "none")
        self.norm = norm_layer(norm, c_out)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class Up(nn.Module):
    """CD_k / C_k of the decoder: 4x4 stride-2 transposed conv, norm, dropout (CD only), ReLU."""

    def __init__(self, c_in: int, c_out: int, norm: str, dropout: float, output_padding: tuple[int, int]) -> None:
        super().__init__()
        self.conv = FastConvTranspose2d(c_in, c_out, 4, 2, 1, output_padding=output_padding, bias=norm == "none")
        self.norm = norm_layer(norm, c_out)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.drop(self.norm(self.conv(x))))


class UNetGenerator(nn.Module):
    """Images (N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1] through a skip-connected U-Net.

    width      channels of the first encoder layer (64 in the paper), doubled per level up to max_width
    depth      stride-2 levels; 0 = down to a 1-px bottleneck (capped at 8, the paper's 256x256 depth)
    dropout    rate of the paper's dropout-as-noise in the `dropout_blocks` innermost decoder blocks
    norm       "batch" (pix2pix), "instance" or "none"
    """

    def __init__(self, in_channels: int, out_channels: int, size: tuple[int, int], width: int = 64,
                 max_width: int = 512, depth: int = 0, dropout: float = 0.5, dropout_blocks: int = 3,
                 norm: str = "batch") -> None:
        super().__init__()
        if depth < 0:
            raise ValueError(f"depth must be >= 0 (0 = down to a 1-px bottleneck), got {depth}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        h, w = int(size[0]), int(size[1])
        sizes = unet_sizes(h, w, depth or 8)
        if depth and len(sizes) - 1 < depth:
            raise ValueError(f"a {h}x{w} image allows at most {len(sizes) - 1} U-Net levels, got depth={depth}; "
                             f"use depth=0 to choose automatically")
        self.size, self.sizes = (h, w), sizes
        n = len(sizes) - 1
        chans = [min(width * 2**i, max_width) for i in range(n)]  # encoder outputs, (N, chans[i], *sizes[i + 1])
        downs = [Down(in_channels, chans[0], "none")]
        for i in range(1, n):
            downs.append(Down(chans[i - 1], chans[i], "none" if i == n - 1 else norm))
        self.downs = nn.ModuleList(downs)
        # decoder block j (innermost first) maps level n-j to level n-j-1; its input is the bottleneck
        # (j = 0) or the previous block's output concatenated with the encoder's skip of that level
        ups = []
        for j in range(n - 1):
            level = n - 1 - j                       # output resolution sizes[level]
            c_in = chans[level] if j == 0 else 2 * chans[level]
            pad = (sizes[level][0] % 2, sizes[level][1] % 2)
            ups.append(Up(c_in, chans[level - 1], norm, dropout if j < dropout_blocks else 0.0, pad))
        self.ups = nn.ModuleList(ups)
        c_last = chans[0] if n == 1 else 2 * chans[0]
        self.out = nn.Sequential(
            FastConvTranspose2d(c_last, out_channels, 4, 2, 1, output_padding=(h % 2, w % 2)), nn.Tanh())
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def depth(self) -> int:
        return len(self.downs)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.size:
            raise ValueError(f"this U-Net was built for {self.size[0]}x{self.size[1]} images, got "
                             f"{x.shape[-2]}x{x.shape[-1]}")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        h = skips.pop()  # the bottleneck
        for up in self.ups:
            h = torch.cat([up(h), skips.pop()], dim=1)
        return self.out(h)
