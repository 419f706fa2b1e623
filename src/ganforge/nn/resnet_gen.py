"""The CycleGAN ResNet generator (Zhu et al. 2017, appendix 7.2; after Johnson et al. 2016).

c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-C: a 7x7 stride-1 conv, two 3x3 stride-2 convs,
residual blocks of two 3x3 convs, two 3x3 stride-1/2 transposed convs and a 7x7 conv to C channels with
tanh. Every conv but the last is followed by InstanceNorm and ReLU (none after a block's second conv,
before the addition); the 7x7 and 3x3 stride-1 convs use reflection padding. The paper uses 6 blocks at
128x128 and 9 at 256x256; `resnet_blocks_for` picks fewer for small images.

Any H x W works: the upsampling convs are given the sizes the downsampling ones started from, so odd
sides (e.g. 7 after 28 -> 14 -> 7, or 25 after 100 -> 50 -> 25) come back exactly.
"""

from __future__ import annotations

from torch import Tensor, nn


def resnet_blocks_for(size: int) -> int:
    """Residual blocks for an image side: 9 at >= 256 px, 6 at >= 128 (the paper), 4 at >= 48, else 3."""
    return 9 if size >= 256 else 6 if size >= 128 else 4 if size >= 48 else 3


def _init_normal(module: nn.Module) -> None:
    """Conv weights ~ N(0, 0.02), biases 0 (the CycleGAN reference initialisation)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualBlock(nn.Module):
    """x + (pad-conv3x3-IN-ReLU-pad-conv3x3-IN)(x), same channels and size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Images (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, n_blocks: int = 9,
                 n_down: int = 2) -> None:
        super().__init__()
        if n_blocks < 0 or n_down < 0:
            raise ValueError(f"n_blocks and n_down must be >= 0, got {n_blocks} and {n_down}")
        self.stem = nn.Sequential(  # c7s1-width
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7), nn.InstanceNorm2d(width, affine=True),
            nn.ReLU(True),
        )
        self.down = nn.ModuleList()
        c = width
        for _ in range(n_down):  # d(2c): 3x3 stride-2 conv
            self.down.append(nn.Sequential(nn.Conv2d(c, 2 * c, 3, 2, 1), nn.InstanceNorm2d(2 * c, affine=True),
                                           nn.ReLU(True)))
            c *= 2
        self.blocks = nn.Sequential(*[ResidualBlock(c) for _ in range(n_blocks)])
        self.up = nn.ModuleList()
        self.up_post = nn.ModuleList()
        for _ in range(n_down):  # u(c/2): 3x3 stride-1/2 transposed conv, sized in forward
            self.up.append(nn.ConvTranspose2d(c, c // 2, 3, 2, 1))
            self.up_post.append(nn.Sequential(nn.InstanceNorm2d(c // 2, affine=True), nn.ReLU(True)))
            c //= 2
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c, out_channels, 7), nn.Tanh())  # c7s1-C
        _init_normal(self)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        sizes = []
        for down in self.down:
            sizes.append(h.shape[-2:])
            h = down(h)
        h = self.blocks(h)
        for up, post, size in zip(self.up, self.up_post, reversed(sizes)):
            h = post(up(h, output_size=list(size)))
        return self.head(h)
