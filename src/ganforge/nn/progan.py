"""Progressive GAN networks (Karras et al., 2018) for any H x W.

The paper's G and D, written for growing: G starts from a coarse grid and gains one block per level (nearest x2
upsampling, two 3x3 convs), each level with its own 1x1 toRGB; D mirrors it (a 1x1 fromRGB per level, two 3x3
convs, 2x2 average pooling). While a level fades in, G's output is (1 - alpha) * up(toRGB_{l-1}) + alpha *
toRGB_l and D's features at level l-1 are (1 - alpha) * fromRGB_{l-1}(pool(x)) + alpha * block_l(fromRGB_l(x)).
Every layer scales its N(0, 1) weights at run time by gain / sqrt(fan_in) (equalized learning rate; gain
sqrt(2), 1 for toRGB and D's output, sqrt(2)/4 for G's latent projection, as in the reference code); G
normalises the latent and every feature vector to unit mean square (pixel norm) and ends linearly (no tanh); D
appends the minibatch standard deviation as one feature map before its last conv. LeakyReLU(0.2) throughout.

Sizes (`progan_levels`): the paper grows powers of two from 4x4. Here level 0 is the target divided by 2^n
rounded up, n the most doublings that keep its shorter side >= 4 (100x100: 7, 13, 25, 50, 100; 96x64: 6x4 ...
96x64; 28x28: 7, 14, 28; 8x8: 4, 8), and every level is ceil(target / 2^(n - l)). G upsamples x2 and drops
the one extra trailing row/column where a level is odd; D pools 2x2 with ceil mode, whose edge windows average
the cells they cover. So each level is exactly the target pooled n - l times, and G's nearest upsampling of
level l back to the target (`to_target`, what sampling returns while growing) is its exact inverse in size.

Differences from the reference code: separate upsample/pool and conv (its fused versions compute the same
function), no conditioning labels, and channel widths set by `width` (at the target resolution, doubled per
coarser level, capped at `max_width`) instead of fmap_base / resolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["EqualizedConv2d", "EqualizedLinear", "MinibatchStd", "ProGANDiscriminator", "ProGANGenerator",
           "pixel_norm", "pool2", "progan_levels", "up2"]

SQRT2 = math.sqrt(2.0)


def _tracing() -> bool:
    """Inside torch.compile or torch.export tracing (the checks exist from torch 2.3 / 2.5 on)."""
    checks = (getattr(torch.compiler, "is_compiling", None), getattr(torch.compiler, "is_exporting", None))
    return any(check is not None and check() for check in checks)


def progan_levels(h: int, w: int) -> tuple[tuple[int, int], ...]:
    """The (height, width) of every level for an H x W target, coarsest first, the target last."""
    n = max(0, (min(h, w) // 4).bit_length() - 1)  # the most doublings with min(h, w) / 2^n >= 4
    return tuple((-(-h // 2 ** (n - lv)), -(-w // 2 ** (n - lv))) for lv in range(n + 1))


def pool2(x: Tensor) -> Tensor:
    """2x2 average pooling, ceil mode: an odd side keeps its last row/column as a half window (its own mean)."""
    return F.avg_pool2d(x, 2, ceil_mode=True)


def up2(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest x2 upsampling, cropped to `size` (drops the trailing row/column an odd level does not have)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")[:, :, : size[0], : size[1]]


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Each pixel's feature vector (dim 1) scaled to unit mean square (the paper's eq. 2), in fp32."""
    return x * torch.rsqrt(x.float().pow(2).mean(1, keepdim=True) + eps).to(x.dtype)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


class EqualizedLinear(nn.Module):
    """A linear layer with N(0, 1) weights scaled at run time by gain / sqrt(fan_in) (equalized learning rate)."""

    def __init__(self, c_in: int, c_out: int, gain: float = SQRT2, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.scale = gain / math.sqrt(c_in)

    @property
    def effective_weight(self) -> Tensor:
        return self.weight * self.scale

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Module):
    """A k x k conv (stride 1, 'same' padding) with N(0, 1) weights scaled at run time by gain / sqrt(fan_in),
    fan_in = c_in * k * k."""

    def __init__(self, c_in: int, c_out: int, kernel: int, gain: float = SQRT2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in * kernel * kernel)
        self.padding = kernel // 2

    @property
    def effective_weight(self) -> Tensor:
        return self.weight * self.scale

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class MinibatchStd(nn.Module):
    """Appends one feature map: the std of each feature over a group of samples, averaged over features and
    pixels (the paper's section 3). Groups of `group_size` (the reference code's 4): sample i is in group
    i mod (N / G); a batch that G does not divide is one group, as in the paper. 0 disables it."""

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size, self.eps = group_size, eps

    def forward(self, x: Tensor) -> Tensor:
        if self.group_size <= 0:
            return x
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            g = n
        y = x.float().reshape(g, n // g, c, h, w)
        y = (y - y.mean(0)).pow(2).mean(0).add(self.eps).sqrt()  # (M, C, H, W): the std over each group
        y = y.mean((1, 2, 3)).to(x.dtype)                          # (M,)
        y = y.repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w)        # sample i gets its group's (i mod M)
        return torch.cat([x, y], 1)


class GBlock(nn.Module):
    """One level of G: nearest x2 upsampling (cropped to the level's size), then two 3x3 convs."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_out, 3)
        self.conv1 = EqualizedConv2d(c_out, c_out, 3)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        x = pixel_norm(_lrelu(self.conv0(up2(x, size))))
        return pixel_norm(_lrelu(self.conv1(x)))


class DBlock(nn.Module):
    """One level of D: two 3x3 convs, then 2x2 average pooling (ceil mode)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_in, 3)
        self.conv1 = EqualizedConv2d(c_in, c_out, 3)

    def forward(self, x: Tensor) -> Tensor:
        return pool2(_lrelu(self.conv1(_lrelu(self.conv0(x)))))


def _widths(n_levels: int, width: int, max_width: int) -> list[int]:
    """Channels per level, coarsest first: `width` at the target, doubled per coarser level, capped."""
    return [min(width * 2 ** (n_levels - 1 - lv), max_width) for lv in range(n_levels)]


class ProGANGenerator(nn.Module):
    """z (N, latent_dim) -> images. Its progress (level, alpha) is kept in buffers (`set_progress`), so checkpoints,
    the EMA copy and export carry it.

    `G(z)` is the full target size: the current level's images, nearest-upsampled by 2^(n - level) and cropped
    (what sampling, evaluation and ONNX export see while G is still growing). `G(z, full=False)` is the current
    level's own resolution, what D is trained on.
    """

    def __init__(self, latent_dim: int, out_shape: tuple[int, int, int], width: int = 32, max_width: int = 256,
                 normalize_latents: bool = True) -> None:
        super().__init__()
        c_out, self.h, self.w = out_shape
        self.levels = progan_levels(self.h, self.w)
        chans = _widths(len(self.levels), width, max_width)
        self.latent_dim, self.normalize_latents = latent_dim, normalize_latents
        (h0, w0), c0 = self.levels[0], chans[0]
        self.base_shape = (c0, h0, w0)
        self.project = EqualizedLinear(latent_dim, c0 * h0 * w0, gain=SQRT2 / 4, bias=False)  # the reference's gain
        self.project_bias = nn.Parameter(torch.zeros(c0))
        self.base_conv = EqualizedConv2d(c0, c0, 3)
        self.blocks = nn.ModuleList(GBlock(chans[lv - 1], chans[lv]) for lv in range(1, len(self.levels)))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, c_out, 1, gain=1.0) for c in chans)
        self.register_buffer("level", torch.zeros((), dtype=torch.int64))
        self.register_buffer("alpha", torch.ones((), dtype=torch.float32))
        self._level, self._alpha = 0, 1.0  # Python copies of the buffers (see progress())

    @property
    def top(self) -> int:
        return len(self.levels) - 1

    @torch.no_grad()
    def set_progress(self, level: int, alpha: float) -> None:
        """Train level `level`, fading it in with weight `alpha` (1: fully in)."""
        if not 0 <= level <= self.top:
            raise ValueError(f"level must be in 0..{self.top}, got {level}")
        if not 0.0 <= alpha <= 1.0 or (level == 0 and alpha != 1.0):
            raise ValueError(f"alpha must be in [0, 1] (1 at level 0), got {alpha} at level {level}")
        self.level.fill_(level)
        self.alpha.fill_(alpha)
        self._level, self._alpha = level, float(self.alpha)  # alpha as the fp32 buffer holds it

    def progress(self) -> tuple[int, float]:
        """(level, alpha) from the buffers, which a checkpoint load or the EMA's buffer copy may have changed.
        Traced code (torch.compile, torch.export) cannot read a buffer's value: it uses the Python copies, which
        set_progress, loading and the last eager forward keep equal to the buffers."""
        if not _tracing():
            self._level, self._alpha = int(self.level), float(self.alpha)
        return self._level, self._alpha

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._level, self._alpha = int(self.level), float(self.alpha)

    def to_target(self, x: Tensor, level: int) -> Tensor:
        """Images of `level` nearest-upsampled to the target size (the exact size inverse of D's pooling)."""
        k = self.top - level
        if k:
            x = F.interpolate(x, scale_factor=2**k, mode="nearest")
        return x[:, :, : self.h, : self.w]

    def forward(self, z: Tensor, full: bool = True) -> Tensor:
        level, alpha = self.progress() if full else (self._level, self._alpha)
        if self.normalize_latents:
            z = pixel_norm(z)
        x = self.project(z).view(z.shape[0], *self.base_shape) + self.project_bias.view(1, -1, 1, 1)
        x = pixel_norm(_lrelu(x))
        x = pixel_norm(_lrelu(self.base_conv(x)))
        prev = x
        for lv in range(1, level + 1):
            prev, x = x, self.blocks[lv - 1](x, self.levels[lv])
        img = self.to_rgb[level](x)
        if alpha < 1.0:  # fading in: blend with the previous level's image, upsampled
            old = up2(self.to_rgb[level - 1](prev), self.levels[level])
            img = old + self.alpha.to(img.dtype) * (img - old)
        return self.to_target(img, level) if full else img

    def inactive_parameters(self) -> list[nn.Parameter]:
        """The parameters the current progress does not use (the blocks above it, the unused toRGBs)."""
        level, alpha = self._level, self._alpha
        used = {level, level - 1} if alpha < 1.0 else {level}
        out = [p for lv in range(level + 1, self.top + 1) for p in self.blocks[lv - 1].parameters()]
        return out + [p for lv, m in enumerate(self.to_rgb) if lv not in used for p in m.parameters()]


class ProGANDiscriminator(nn.Module):
    """x (N, C, h, w) at any level's size -> one score per sample (N,). The level is read from x's size;
    `alpha` (a number or a 0-dim tensor) fades that level in, None: fully in."""

    def __init__(self, in_shape: tuple[int, int, int], width: int = 32, max_width: int = 256,
                 mbstd_group: int = 4) -> None:
        super().__init__()
        c_in, h, w = in_shape
        self.levels = progan_levels(h, w)
        chans = _widths(len(self.levels), width, max_width)
        self.from_rgb = nn.ModuleList(EqualizedConv2d(c_in, c, 1) for c in chans)
        self.blocks = nn.ModuleList(DBlock(chans[lv], chans[lv - 1]) for lv in range(1, len(self.levels)))
        (h0, w0), c0 = self.levels[0], chans[0]
        self.mbstd = MinibatchStd(mbstd_group)
        self.final_conv = EqualizedConv2d(c0 + (1 if mbstd_group > 0 else 0), c0, 3)
        self.final_dense = EqualizedLinear(c0 * h0 * w0, c0)
        self.out = EqualizedLinear(c0, 1, gain=1.0)
        self._level_of = {size: lv for lv, size in enumerate(self.levels)}

    def level_of(self, x: Tensor) -> int:
        size = (int(x.shape[-2]), int(x.shape[-1]))
        if size not in self._level_of:
            raise ValueError(f"the discriminator takes images of its levels' sizes "
                             f"{', '.join(f'{a}x{b}' for a, b in self.levels)}, not {size[0]}x{size[1]}")
        return self._level_of[size]

    def forward(self, x: Tensor, alpha: Tensor | float | None = None) -> Tensor:
        level = self.level_of(x)
        h = _lrelu(self.from_rgb[level](x))
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha is not None:  # fading in: blend with the previous level's fromRGB of the pooled image
                old = _lrelu(self.from_rgb[level - 1](pool2(x)))
                a = alpha.to(h.dtype) if isinstance(alpha, Tensor) else alpha
                h = old + a * (h - old)
            for lv in range(level - 1, 0, -1):
                h = self.blocks[lv - 1](h)
        h = _lrelu(self.final_conv(self.mbstd(h)))
        h = _lrelu(self.final_dense(h.flatten(1)))
        return self.out(h).flatten()

    def inactive_parameters(self, level: int, fading: bool) -> list[nn.Parameter]:
        """The parameters that images of `level` (fading in or not) do not reach."""
        used = {level, level - 1} if fading else {level}
        out = [p for lv in range(level + 1, len(self.levels)) for p in self.blocks[lv - 1].parameters()]
        return out + [p for lv, m in enumerate(self.from_rgb) if lv not in used for p in m.parameters()]
