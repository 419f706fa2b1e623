"""SRResNet generator and the SRGAN discriminator (Ledig et al., 2017, "Photo-Realistic Single Image
Super-Resolution Using a Generative Adversarial Network", figure 4).

Generator: a 9x9 conv + PReLU, B residual blocks (conv3x3-BN-PReLU-conv3x3-BN plus the block's input),
a conv3x3-BN whose output is added to the first conv's (the global skip), log2(scale) upsampling stages
(conv3x3 to 4C channels, pixel shuffle x2 (Shi et al., 2016), PReLU), and a final 9x9 conv. All but the
upsampling run at the low resolution, so the cost grows with B at the input's size. The paper has no
output activation (its images are in [0, 1] or [-1, 1] by convention); ours ends in tanh, since every
ganforge image is in [-1, 1].

Discriminator: eight 3x3 convs k3n64s1, k3n64s2, k3n128s1, k3n128s2, ..., k3n512s2 (BN on all but the
first, LeakyReLU 0.2), dense 1024, LeakyReLU, dense 1 (a logit). The paper's 96x96 crops leave a 6x6 map
before the dense layers; for other sizes an adaptive average pool brings the map to `pool` x `pool` first.
"""

from __future__ import annotations

import math

from torch import Tensor, nn


def upscale_factor(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> int:
    """The super-resolution factor s of low-res images (C, H, W) -> high-res (C', sH, sW): s a power of 2 >= 2."""
    (_, ha, wa), (_, hb, wb) = shape_a, shape_b
    if hb % ha or wb % wa:
        raise ValueError(f"super-resolution needs the target size to be a multiple of the input size; got "
                         f"{ha}x{wa} -> {hb}x{wb}: resize the high-res images to scale * input size "
                         f"(e.g. {ha * 4}x{wa * 4} for x4)")
    sh, sw = hb // ha, wb // wa
    if sh != sw:
        raise ValueError(f"super-resolution needs one scale in height and width; got {ha}x{wa} -> {hb}x{wb} "
                         f"(x{sh} in height, x{sw} in width): resize one side so that both scales match")
    if sh < 2 or sh & (sh - 1):
        near = 2 ** max(1, round(math.log2(sh)))
        raise ValueError(f"super-resolution upsamples in pixel-shuffle x2 stages, so the scale must be a power of 2 "
                         f">= 2 (2, 4, 8); got x{sh} ({ha}x{wa} -> {hb}x{wb}): resize the targets to "
                         f"{ha * near}x{wa * near} (x{near}), or use pix2pix for same-size translation")
    return sh


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN, plus the input (He et al., 2016; no ReLU after the sum, as in SRResNet)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class UpsampleStage(nn.Module):
    """x2: conv3x3 (C -> 4C), pixel shuffle ((N, 4C, H, W) -> (N, C, 2H, 2W)), PReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4 * channels, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, scale H, scale W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, width: int = 64, n_blocks: int = 16) -> None:
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"scale must be a power of 2 >= 2, got {scale}")
        if n_blocks < 0 or width < 1:
            raise ValueError(f"need n_blocks >= 0 and width >= 1, got {n_blocks} and {width}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(n_blocks)])
        self.body_out = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(*[UpsampleStage(width) for _ in range(int(math.log2(scale)))])
        self.tail = nn.Conv2d(width, out_channels, 9, 1, 4)

    def forward(self, x: Tensor) -> Tensor:
        h = self.head(x)                             # (N, width, H, W)
        h = h + self.body_out(self.blocks(h))        # the global skip
        return self.tail(self.upsample(h)).tanh()    # (N, out_channels, sH, sW)


class SRDiscriminator(nn.Module):
    """Images (N, C, H, W) -> logits (N,): the paper's conv stack, adaptive pool, dense 1024, dense 1."""

    def __init__(self, in_channels: int, width: int = 64, max_width: int = 512, pool: int = 2,
                 hidden: int = 1024, size: int | None = None) -> None:
        """size: the shorter side of the input, when known: a stride-2 layer that would meet a 1-pixel map
        keeps stride 1 (a strided 3x3 conv there reads only padding; on CPU in bf16 its weight gradient
        is also unreliable in torch 2.13)."""
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
        c, out = width, width
        for i in range(8 - 1):  # k3n64s2, k3n128s1, k3n128s2, ..., k3n512s2
            out = min(width * 2 ** ((i + 1) // 2), max_width)
            stride = 2 if i % 2 == 0 and (size is None or size > 1) else 1
            if size is not None and stride == 2:
                size = (size + 1) // 2
            layers += [nn.Conv2d(c, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, inplace=True)]
            c = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * pool * pool, hidden), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.features(x))).squeeze(1)
