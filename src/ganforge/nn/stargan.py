"""StarGAN's networks (Choi et al. 2018): one generator for every domain, and a two-headed critic.

Generator (the paper's Table 4, after Johnson et al.'s transformer net): the image is concatenated with
the target domain's one-hot code broadcast to K constant maps, then c7s1-w, two stride-2 4x4
downsamplings (2w, 4w), residual blocks at 4w (six in the paper at 128 px), two stride-2 4x4 transposed
convolutions (2w, w) and c7s1-C with tanh. Instance normalisation (affine) and ReLU throughout. Images
must have sides divisible by 4 so the two upsamplings restore the input size.

Discriminator: a PatchGAN-like trunk of 4x4 stride-2 convolutions with LeakyReLU(0.01) and no
normalisation (the paper uses none in D), widths w, 2w, 4w, ... Two heads read the last map:
D_src, a 3x3 convolution giving one logit per patch (N, 1, h, w), and D_cls, a convolution whose kernel
covers the whole remaining h x w map, giving K domain logits (N, K).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .convs import WholeMapConv


def domain_maps(c: Tensor, n_domains: int, like: Tensor) -> Tensor:
    """Target domains as constant maps (N, K, H, W) shaped like `like`: c is (N,) indices or (N, K) codes."""
    code = F.one_hot(c, n_domains) if c.dim() == 1 else c
    return code.to(like.dtype)[:, :, None, None].expand(-1, -1, *like.shape[2:])


class ResidualBlock(nn.Module):
    """x + IN(conv3x3(ReLU(IN(conv3x3(x))))), channels unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class StarGenerator(nn.Module):
    """G(x, c): images (N, C, H, W) in [-1, 1] and target domains c ((N,) indices or (N, K) codes) ->
    images (N, C, H, W) in [-1, 1]."""

    def __init__(self, channels: int, n_domains: int, width: int = 64, n_res: int = 6) -> None:
        super().__init__()
        if n_domains < 2:
            raise ValueError(f"StarGAN needs >= 2 domains, got {n_domains}")
        if width < 1 or n_res < 0:
            raise ValueError(f"width must be >= 1 and n_res >= 0, got width={width}, n_res={n_res}")
        self.n_domains = n_domains
        w = width
        layers: list[nn.Module] = [
            nn.Conv2d(channels + n_domains, w, 7, 1, 3, bias=False), nn.InstanceNorm2d(w, affine=True),
            nn.ReLU(inplace=True),
        ]
        for mult in (1, 2):  # down: w -> 2w -> 4w, H -> H/4
            layers += [nn.Conv2d(w * mult, w * mult * 2, 4, 2, 1, bias=False),
                       nn.InstanceNorm2d(w * mult * 2, affine=True), nn.ReLU(inplace=True)]
        layers += [ResidualBlock(4 * w) for _ in range(n_res)]
        for mult in (4, 2):  # up: 4w -> 2w -> w, H/4 -> H
            layers += [nn.ConvTranspose2d(w * mult, w * mult // 2, 4, 2, 1, bias=False),
                       nn.InstanceNorm2d(w * mult // 2, affine=True), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(w, channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"StarGAN's generator needs image sides divisible by 4, got {tuple(x.shape[-2:])}; "
                             "resize the data (e.g. --size 32)")
        return self.net(torch.cat([x, domain_maps(c, self.n_domains, x)], 1))


def default_d_layers(size: tuple[int, int]) -> int:
    """Stride-2 layers for D: halve the shorter side while it stays >= 4 and the map is above 8 px
    (28 -> 7x7 with 2 layers; 128 -> 8x8 with 4; the paper's 6 at 128 px leave 2x2)."""
    side, n = min(size), 0
    while side > 8 and side // 2 >= 4:
        side //= 2
        n += 1
    return max(n, 1)


class StarDiscriminator(nn.Module):
    """D(x) -> (source logits (N, 1, h, w), domain logits (N, K)) for images (N, C, H, W)."""

    def __init__(self, channels: int, size: tuple[int, int], n_domains: int, width: int = 64,
                 n_layers: int = 0, max_width: int = 1024) -> None:
        super().__init__()
        n_layers = n_layers or default_d_layers(size)
        layers: list[nn.Module] = []
        c_in, c = channels, width
        h, w = size
        for i in range(n_layers):
            c = min(width * 2**i, max_width)
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.01, inplace=True)]
            c_in = c
            h, w = h // 2, w // 2  # 4x4, stride 2, padding 1 halves a side (rounding down)
        if h < 1 or w < 1:
            raise ValueError(f"{n_layers} stride-2 layers leave nothing of a {size[0]}x{size[1]} image; "
                             f"use model.d_layers <= {default_d_layers(size)}")
        self.trunk = nn.Sequential(*layers)
        self.src = nn.Conv2d(c, 1, 3, 1, 1, bias=False)
        self.cls = WholeMapConv(c, n_domains, (h, w), bias=False)  # one window over the whole h x w map: a matmul
        self.map_size = (h, w)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.trunk(x)
        return self.src(feats), self.cls(feats).flatten(1)
