"""The DiscoGAN generator (Kim et al. 2017): a convolutional encoder-decoder without skip connections.

Encoder: 4x4 stride-2 convs with LeakyReLU(0.2), BatchNorm on all but the first; decoder: the mirror
image, 4x4 stride-2 transposed convs with BatchNorm + ReLU, the last one to C channels with tanh (the
paper's code ends in a sigmoid on [0, 1] images; ganforge's images are in [-1, 1]). At 64x64 that is
the paper's 64-128-256-512 encoder down to 4x4; smaller images get fewer stages (`dcgan_stages`: 2 at
28x28, to 7x7). The decoder is given the encoder's sizes, so odd sides come back exactly.

DiscoGAN's discriminator is the DCGAN one (`DCGANDiscriminator`): the same 4x4 stride-2 convs with
LeakyReLU and BatchNorm, then one conv over the remaining map to a logit.
"""

from __future__ import annotations

from torch import Tensor, nn

from .dcgan import _init_dcgan, dcgan_stages


class EncoderDecoderGenerator(nn.Module):
    """Images (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, size: tuple[int, int], width: int = 64,
                 max_width: int = 512) -> None:
        super().__init__()
        n, _, _ = dcgan_stages(*size)
        chans = [min(width * 2**i, max_width) for i in range(n)]  # e.g. 64, 128, 256, 512 at 64x64
        self.down = nn.ModuleList()
        prev = in_channels
        for i, c in enumerate(chans):
            layers: list[nn.Module] = [nn.Conv2d(prev, c, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2, True))
            self.down.append(nn.Sequential(*layers))
            prev = c
        outs = list(reversed(chans[:-1])) + [out_channels]  # mirrored: 256, 128, 64, C
        self.up = nn.ModuleList()
        self.up_post = nn.ModuleList()
        for i, c in enumerate(outs):
            last = i == len(outs) - 1
            self.up.append(nn.ConvTranspose2d(prev, c, 4, 2, 1, bias=last))
            self.up_post.append(nn.Tanh() if last else nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(True)))
            prev = c
        _init_dcgan(self)

    def forward(self, x: Tensor) -> Tensor:
        sizes = []
        h = x
        for down in self.down:
            sizes.append(h.shape[-2:])
            h = down(h)
        for up, post, size in zip(self.up, self.up_post, reversed(sizes)):
            h = post(up(h, output_size=list(size)))
        return h
