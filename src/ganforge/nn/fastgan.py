"""FastGAN's generator and self-supervised discriminator (Liu et al., ICLR 2021) for any H x W.

What the paper builds (for 256 to 1024 pixels, 100 to 1,000 images, one GPU):
- G: the latent becomes a 4x4 map (a transposed conv, BatchNorm, GLU); each up-sampling block doubles the map
  (nearest upsample, 3x3 conv, BatchNorm, GLU); skip-layer excitation (SLE) lets a low-resolution map gate a
  map four doublings higher channel-wise: the low map is average-pooled to 4x4, a 4x4 conv takes it to 1x1,
  LeakyReLU(0.1), a 1x1 conv and a sigmoid give one factor in (0, 1) per channel of the high map, which is
  multiplied by it. The pairs are 4->64, 8->128, 16->256 and 32->512 (as many as the output size has); a
  3x3 conv and tanh give the image.
- D: down-sampling blocks whose two paths average: (4x4 stride-2 conv, BN, LeakyReLU(0.2), 3x3 conv, BN,
  LeakyReLU) and (2x2 average pool, 1x1 conv, BN, LeakyReLU); a head (1x1 conv, BN, LeakyReLU, 4x4 conv) gives
  a map of logits. Two small decoders (up-sampling blocks, then a 3x3 conv and tanh) make D a
  self-supervised auto-encoder on real images: one reconstructs the whole image at half resolution from D's
  8x8 map, the other a random quadrant of the image from the quadrant of D's 16x16 map.

How this implementation sizes it for any H x W (28x28, 100x100, 96x64, 8x8 ...):
- G starts from an h0 x w0 map (4x4 for power-of-two sizes, each side in [4, 8) in general) and doubles it n
  times (`dcgan_stages`, as DCGAN does); sizes that are not h0 * 2^n are drawn a little larger and
  centre-cropped (100x100: 7x7 -> 112x112, cropped by 6 a side; 96x64 and 28x28 come out exactly).
- G's SLE pairs are the paper's (map k gates map k + 4, for k = 0..3 while map k + 4 exists) when G has
  n >= 4 doublings; smaller G's (n < 4: 8x8 to 63x63 images) shrink the gap to max(1, n - 1), so the
  lowest map still gates the highest (`sle_pairs`). Adaptive average pooling takes any low map (7x7, 6x4 ...)
  to the 4x4 the gate's 4x4 conv reads.
- D keeps full resolution in its stem (a 3x3 conv; the reference code's choice at 256x256), then halves
  n_d = max(1, floor(log2(min(H, W) / 8))) times, so its smallest map has a side in [8, 16) where the image
  allows (256x256: 8x8, as the paper; 100x100: 12x12; 8x8: 4x4). The head's logit map is averaged to one
  logit per image, the (N,) every ganforge D returns (the reference code applies its hinge per map entry:
  `forward_with_maps(x, patches=True)` gives every entry, for the family's `patch_loss`).
- The decoders have m = max(1, min(4, n_d - 1)) up-sampling blocks (256x256: 4, the paper's 8x8 -> 128x128):
  the whole-image one reads D's smallest map, the part one a quadrant of the map one halving before it.
  Their channels start at a quarter of the map's and halve, not below `width` (fewer than the paper's, for
  CPU). Targets are the real image (or its quadrant) resized to the decoder's output size.

The reference code's second conv in alternate up-sampling blocks (its UpBlockComp) is an option
(`double_conv`), without the noise injection that comes with it there: G stays a function of z alone, so a
seed gives the same image in training, ONNX and serving.

Not here (the reference code has them, the paper does not describe them or they do not fit): noise injection,
SLE inside D, D's second branch on a 128x128 copy of the image and its third decoder. Spectral normalisation of
every conv (the reference code's) is an option of each network, on by default (the family's `spectral_norm`
picks G, D, both or neither; `sn_power_iterations` the power-method iterations per training forward, 1 as in
torch and the reference code).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .convs import FastConv2d, LatentProjection, upsample_conv3x3, upsample_conv_routable
from .dcgan import _init_dcgan, dcgan_stages

__all__ = ["FastGANDecoder", "FastGANDiscriminator", "FastGANGenerator", "SkipLayerExcitation", "UpBlock", "UpBlockComp",
           "discriminator_stages", "quadrant", "resized", "sle_pairs"]


def sle_pairs(n: int) -> tuple[tuple[int, int], ...]:
    """The (low, high) map indices SLE connects in a G with maps 0..n (map k is h0 * 2^k on a side)."""
    gap = 4 if n >= 4 else max(1, n - 1)
    return tuple((k, k + gap) for k in range(min(4, n - gap + 1)))


def discriminator_stages(h: int, w: int) -> int:
    """n_d: the number of halvings of D's trunk for an H x W image (smallest map side in [8, 16) where it can)."""
    return max(1, int(math.floor(math.log2(max(min(h, w), 8) / 8))))


def _norm(c: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(c) if on else nn.Identity()


def _spectral(module: nn.Module, power_iterations: int = 1) -> None:
    """Spectral normalisation on every conv of `module` (after _init_dcgan: the parametrization keeps the weight),
    with `power_iterations` iterations of the power method per training forward (torch's default and the reference
    code's: 1)."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and not nn.utils.parametrize.is_parametrized(m):
            nn.utils.parametrizations.spectral_norm(m, n_power_iterations=power_iterations)


class UpBlock(nn.Sequential):
    """x2 nearest upsample, 3x3 conv to 2 * c_out, BatchNorm, GLU: (N, c_in, h, w) -> (N, c_out, 2h, 2w).
    While training on CPU in fp32 or bf16 the upsample and the conv run as one transposed conv (`upsample_conv3x3`:
    the same numbers to rounding, 4/9 of the multiply-adds)."""

    def __init__(self, c_in: int, c_out: int, batchnorm: bool = True) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"),
                         FastConv2d(c_in, 2 * c_out, 3, 1, 1, bias=not batchnorm), _norm(2 * c_out, batchnorm),
                         nn.GLU(dim=1))

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if not upsample_conv_routable(self[1], x):
            return super().forward(x)
        x = upsample_conv3x3(x.contiguous(), self[1])  # on NCHW, where it runs faster (see channels_last)
        for layer in list(self)[2:]:  # BatchNorm, GLU (and UpBlockComp's second conv)
            x = layer(x)
        return x


class UpBlockComp(UpBlock):
    """UpBlock with a second 3x3 conv, BatchNorm and GLU at the doubled size (the reference code's UpBlockComp,
    without its noise injection, so G stays a function of z): (N, c_in, h, w) -> (N, c_out, 2h, 2w)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(c_in, c_out)
        self.extend([FastConv2d(c_out, 2 * c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * c_out), nn.GLU(dim=1)])


class SkipLayerExcitation(nn.Module):
    """SLE: high * sigmoid(conv1x1(LeakyReLU(conv4x4(pool4(low))))), one factor per channel of `high`."""

    def __init__(self, c_low: int, c_high: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(4), FastConv2d(c_low, c_high, 4, 1, 0, bias=False),
                                  nn.LeakyReLU(0.1), FastConv2d(c_high, c_high, 1, 1, 0, bias=False), nn.Sigmoid())

    def factors(self, low: Tensor) -> Tensor:
        """(N, c_high, 1, 1) gates in (0, 1)."""
        return self.gate(low)

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return high * self.factors(low)


class FastGANGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, C, H, W) in [-1, 1]: init block, up-sampling blocks with SLE, 3x3 conv, tanh."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, int, int], width: int = 32, max_width: int = 256,
                 spectral_norm: bool = True, double_conv: bool = False, sn_power_iterations: int = 1) -> None:
        super().__init__()
        c_out, self.h, self.w = out_shape
        n, h0, w0 = dcgan_stages(self.h, self.w)
        self.latent_dim = latent_dim
        chans = [min(width * 2 ** (n - k), max_width) for k in range(n + 1)]  # map k's channels, widest first
        self.init = nn.Sequential(LatentProjection(latent_dim, 2 * chans[0], (h0, w0), 1, 0, bias=False),
                                  nn.BatchNorm2d(2 * chans[0]), nn.GLU(dim=1))  # (N, C0, h0, w0)
        # double_conv: the 1st, 3rd, 5th ... up-sampling blocks get a second conv, as the reference code's
        self.ups = nn.ModuleList((UpBlockComp if double_conv and k % 2 == 0 else UpBlock)(a, b)
                                 for k, (a, b) in enumerate(zip(chans[:-1], chans[1:])))
        self.pairs = sle_pairs(n)
        self.low_of = {hi: lo for lo, hi in self.pairs}  # the map that gates map `hi`
        self.sle = nn.ModuleDict({str(hi): SkipLayerExcitation(chans[lo], chans[hi]) for lo, hi in self.pairs})
        self.to_image = nn.Sequential(FastConv2d(chans[-1], c_out, 3, 1, 1), nn.Tanh())
        _init_dcgan(self)  # N(0, 0.02) weights, N(1, 0.02) BatchNorm gamma, as the reference code
        if spectral_norm:
            _spectral(self, sn_power_iterations)

    def maps(self, z: Tensor) -> list[Tensor]:
        """G's feature maps 0..n (after SLE), before the image layer and the crop."""
        x = self.init(z.view(z.shape[0], self.latent_dim, 1, 1))
        maps = [x]
        for k, up in enumerate(self.ups, start=1):
            x = up(x)
            if k in self.low_of:
                x = self.sle[str(k)](maps[self.low_of[k]], x)
            maps.append(x)
        return maps

    def forward(self, z: Tensor) -> Tensor:
        x = self.to_image(channels_last(self.maps(z)[-1]))
        dh, dw = x.shape[2] - self.h, x.shape[3] - self.w
        if dh or dw:  # centre-crop the few extra rows/columns
            x = x[:, :, dh // 2 : dh // 2 + self.h, dw // 2 : dw // 2 + self.w]
        return x


class DownBlock(nn.Module):
    """Halves the map: the mean of (4x4 s2 conv, BN, LReLU, 3x3 conv, BN, LReLU) and (2x2 avg pool, 1x1 conv, BN,
    LReLU)."""

    def __init__(self, c_in: int, c_out: int, batchnorm: bool = True) -> None:
        super().__init__()
        b = not batchnorm
        self.main = nn.Sequential(FastConv2d(c_in, c_out, 4, 2, 1, bias=b), _norm(c_out, batchnorm), nn.LeakyReLU(0.2),
                                  FastConv2d(c_out, c_out, 3, 1, 1, bias=b), _norm(c_out, batchnorm), nn.LeakyReLU(0.2))
        self.direct = nn.Sequential(nn.AvgPool2d(2, 2), FastConv2d(c_in, c_out, 1, 1, 0, bias=b),
                                    _norm(c_out, batchnorm), nn.LeakyReLU(0.2))

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (self.main(x) + self.direct(x))


class FastGANDecoder(nn.Sequential):
    """D's reconstruction decoder: `ups` up-sampling blocks, a 3x3 conv to the image channels, tanh."""

    def __init__(self, c_in: int, c_img: int, ups: int, width: int, batchnorm: bool = True) -> None:
        chans = [c_in] + [max(width, c_in >> (k + 2)) for k in range(ups)]
        layers: list[nn.Module] = [UpBlock(a, b, batchnorm) for a, b in zip(chans[:-1], chans[1:])]
        super().__init__(*layers, FastConv2d(chans[-1], c_img, 3, 1, 1), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        for layer in list(self)[:-2]:  # the up-sampling blocks (on NCHW maps while training on CPU)
            x = layer(x)
        return self[-1](self[-2](channels_last(x)))  # the image layer on a channels-last map


class FastGANDiscriminator(nn.Module):
    """x (N, C, H, W) -> one logit per image (N,); `forward_with_maps` also gives the maps the decoders read."""

    def __init__(self, in_shape: tuple[int, int, int], width: int = 32, max_width: int = 256, batchnorm: bool = True,
                 spectral_norm: bool = True, decoders: bool = True, sn_power_iterations: int = 1) -> None:
        super().__init__()
        c_in, h, w = in_shape
        n = discriminator_stages(h, w)
        chans = [min(width * 2**k, max_width) for k in range(n + 1)]
        self.stem = nn.Sequential(FastConv2d(c_in, chans[0], 3, 1, 1), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList(DownBlock(a, b, batchnorm) for a, b in zip(chans[:-1], chans[1:]))
        for _ in range(n):
            h, w = h // 2, w // 2
        c_head = min(2 * chans[-1], max_width)
        self.head = nn.Sequential(FastConv2d(chans[-1], c_head, 1, 1, 0, bias=not batchnorm), _norm(c_head, batchnorm),
                                  nn.LeakyReLU(0.2), FastConv2d(c_head, 1, (min(4, h), min(4, w)), 1, 0))
        self.recon_ups = max(1, min(4, n - 1))
        self.decode_whole = self.decode_part = None
        if decoders:
            self.decode_whole = FastGANDecoder(chans[-1], c_in, self.recon_ups, width, batchnorm)
            self.decode_part = FastGANDecoder(chans[-2], c_in, self.recon_ups, width, batchnorm)
        _init_dcgan(self)  # N(0, 0.02) weights, N(1, 0.02) BatchNorm gamma, as the reference code
        if spectral_norm:
            _spectral(self, sn_power_iterations)

    def forward_with_maps(self, x: Tensor, patches: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """(logits, D's smallest map, the map one halving before it). The logits are one per image (N,), the
        mean of the head's logit map, or with `patches` every entry of that map, (N * h * w,) image by image."""
        maps = [channels_last(self.stem(channels_last(x)))]
        for down in self.downs:
            maps.append(down(maps[-1]))
        logits = self.head(maps[-1])
        return (logits.flatten() if patches else logits.mean((1, 2, 3))), maps[-1], maps[-2]

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_maps(x)[0]


def channels_last(x: Tensor) -> Tensor:
    """x (N, C, H, W) in channels-last memory order on CPU (a no-op when it already is, and on other devices,
    where this was not measured).

    Where FastGAN's layers run faster so on CPU: G's 3x3 conv to the image and D's convs. G's up-sampling blocks,
    and the decoders', run faster on NCHW maps, so their transposed-conv route (training on CPU) takes NCHW
    whatever the trainer's `channels_last`. Before, every layer ran in the layout its input came in: D
    channels-last only when DiffAugment's translation (a gather in channels-last order) came before it, G's
    up-sampling blocks channels-last with the trainer's `channels_last` (its default). A training step against
    that (bench/fastgan_layout.py, 2 cores of an AVX512-BF16 AMD EPYC, median of 6 alternating rounds): the cars
    recipe 1.08x in bf16, no measurable change in fp32; with colour-only augmentation 1.19x and 1.15x; the cars
    recipe with the trainer's `channels_last` on 1.19x and 1.08x. Other CPUs not measured.
    """
    if x.device.type != "cpu":
        return x
    return x.contiguous(memory_format=torch.channels_last)


def quadrant(x: Tensor, q: int) -> Tensor:
    """Quadrant q of x's last two dims: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right (floor halves)."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    top, left = (0 if q < 2 else x.shape[-2] - h), (0 if q % 2 == 0 else x.shape[-1] - w)
    return x[..., top : top + h, left : left + w]


def resized(x: Tensor, size: tuple[int, int]) -> Tensor:
    """x resized to `size` (antialiased bilinear; the identity when it already has that size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
