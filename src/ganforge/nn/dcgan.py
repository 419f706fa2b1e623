"""DCGAN generator and discriminator (Radford et al., 2015) for any H x W.

All-convolutional: strided transposed convs with BatchNorm + ReLU in G (tanh output), strided convs with
LeakyReLU(0.2) in D (BatchNorm on all but the first layer), no fully connected hidden layers. The latent
is projected to a (h0, w0) map by a transposed conv whose kernel is the whole map, and D ends with a conv
whose kernel covers the remaining map. Sizes that are not h0 * 2^n are produced a little larger and
centre-cropped (G) and reduced by flooring (D), so 28x28, 100x100 and 96x64 all work. The layers come
from `convs.py`: torch.nn's parameters and results, with matmul routes where oneDNN is slow on CPU.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from .convs import FastConv2d, FastConvTranspose2d, LatentProjection, WholeMapConv

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "LatentProjection", "WholeMapConv", "dcgan_stages", "dcgan_trunk"]


def dcgan_stages(h: int, w: int) -> tuple[int, int, int]:
    """(n_up, h0, w0): number of x2 stages and the base map size for an H x W image (base side >= 4)."""
    n = max(1, int(math.floor(math.log2(max(min(h, w), 8) / 4))))
    n = min(n, 7)
    return n, math.ceil(h / 2**n), math.ceil(w / 2**n)


def _init_dcgan(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), BatchNorm gamma ~ N(1, 0.02), as in the paper."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, out_shape: tuple[int, int, int], width: int = 64, max_width: int = 512) -> None:
        super().__init__()
        c_out, self.h, self.w = out_shape
        n, h0, w0 = dcgan_stages(self.h, self.w)
        chans = [min(width * 2 ** (n - 1 - i), max_width) for i in range(n)]  # widest first
        layers: list[nn.Module] = [
            LatentProjection(latent_dim, chans[0], (h0, w0), 1, 0, bias=False),  # (N, C0, h0, w0)
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(True),
        ]
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [FastConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [FastConvTranspose2d(chans[-1], c_out, 4, 2, 1), nn.Tanh()]  # (N, C, h0*2^n, w0*2^n)
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim
        _init_dcgan(self)

    def forward(self, z: Tensor) -> Tensor:
        x = self.net(z.view(z.shape[0], self.latent_dim, 1, 1))
        dh, dw = x.shape[2] - self.h, x.shape[3] - self.w
        if dh or dw:  # centre-crop the few extra rows/columns
            x = x[:, :, dh // 2 : dh // 2 + self.h, dw // 2 : dw // 2 + self.w]
        return x


def dcgan_trunk(in_shape: tuple[int, int, int], width: int = 64, max_width: int = 512,
                batchnorm: bool = True) -> tuple[nn.Sequential, int, tuple[int, int]]:
    """D's strided convs for an H x W input: (trunk, its output channels, its output map (h, w))."""
    c_in, h, w = in_shape
    n, _, _ = dcgan_stages(h, w)
    layers: list[nn.Module] = []
    prev = c_in
    for i in range(n):
        c = min(width * 2**i, max_width)
        layers.append(FastConv2d(prev, c, 4, 2, 1, bias=not (batchnorm and i > 0)))
        if batchnorm and i > 0:
            layers.append(nn.BatchNorm2d(c))
        layers.append(nn.LeakyReLU(0.2, True))
        prev = c
        h, w = h // 2, w // 2  # k=4, s=2, p=1 floors odd sizes
    return nn.Sequential(*layers), prev, (h, w)


class DCGANDiscriminator(nn.Module):
    """x (N, C, H, W) -> one logit per sample (N,). `features(x)` gives the last conv map, flattened."""

    def __init__(self, in_shape: tuple[int, int, int], width: int = 64, max_width: int = 512, batchnorm: bool = True) -> None:
        super().__init__()
        self.trunk, prev, hw = dcgan_trunk(in_shape, width, max_width, batchnorm)
        self.head = WholeMapConv(prev, 1, hw, 1, 0)  # kernel covers the whole remaining map
        _init_dcgan(self)

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x).flatten(1)

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (N,), features (N, F)) from one pass through the trunk."""
        h = self.trunk(x)
        return self.head(h).flatten(), h.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x)).flatten()
