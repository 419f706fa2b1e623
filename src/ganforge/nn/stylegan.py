"""StyleGAN2 generator and discriminator (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN") in plain PyTorch: no custom C++/CUDA ops.

What the paper's networks do, and what this module keeps:
- a mapping network z -> w: z normalised to unit mean square (PixelNorm), then fully connected layers with
  leaky ReLU whose learning rate is scaled by 0.01; it tracks the running average of w (`w_avg`, a buffer, so
  it is in checkpoints and in the EMA copy of G) for the truncation trick w' = w_avg + psi (w - w_avg);
- equalized learning rate everywhere: weights are drawn N(0, 1) (N(0, 1/lr_mul^2) with a learning-rate
  multiplier) and scaled at run time by lr_mul / sqrt(fan_in);
- modulated and demodulated 3x3 convolutions: a per-sample style s = A(w) scales the input channels, and each
  output channel is divided by the norm of its scaled weights, sqrt(sum_{i,k} (s_i w_oik)^2 + 1e-8), so unit-
  variance inputs give unit-variance outputs (the paper's eq. 1-3);
- per-pixel noise after each convolution, scaled by a learned per-layer strength (initialised to 0; the
  paper's "per-channel" B scaling has one scalar per layer in the official code, as here);
- a learned constant as G's input, and the "skip" generator: a modulated 1x1 toRGB (no demodulation) at every
  resolution, upsampled and summed;
- a residual discriminator: 1x1 fromRGB, blocks of two 3x3 convs with a 1x1 skip, both branches scaled by
  sqrt(1/2), and an epilogue with minibatch standard deviation (groups of 4, one feature), a 3x3 conv and two
  fully connected layers.

Where this implementation differs, and why:
- resampling: the paper low-pass filters with a [1, 3, 3, 1] FIR kernel (upfirdn2d, a custom CUDA op). Here G
  upsamples by bilinear interpolation (x2, F.interpolate) before its 3x3 convolution and for the skip image,
  and D downsamples by 2x2 average pooling (which is bilinear downsampling by 2) before its second 3x3
  convolution and on the skip branch. Torch-only ops run on any device and export to ONNX.
- modulation is applied as "scale the input channels, shared convolution, scale the output channels" (the
  reference code's non-fused path) rather than one grouped convolution with per-sample weights: the same
  numbers, and no grouped convolution whose group count is the batch size (slow on CPU, and a dynamic batch
  axis would not export).
- any H x W: G's constant is a (h0, w0) grid with n doublings chosen as in DCGAN (`dcgan_stages`: h0 =
  ceil(H / 2^n), w0 = ceil(W / 2^n)), so 96x64 grows from a 6x4 constant, 28x28 from 7x7 and 8x8 from 4x4
  exactly, while 100x100 grows from 7x7 to 112x112 and is centre-cropped. D reads the image at its own size and
  halves it n times with flooring (100 -> 50 -> 25 -> 12 -> 6); its last fully connected layer covers the
  remaining map.
- channels are `width` at the output resolution, doubled per halving up to `max_width` (the paper: 32768 /
  resolution, at most 512); the family's defaults are small for CPU training.
- no output clamping of activations (the reference's conv_clamp is for fp16). G's image is linear while
  training (as in the paper); in eval mode (sampling, export) it is clamped to [-1, 1], the data's range.
- noise inputs: training draws them at random (the family draws them, so a multi-process run shards them like
  its latents); in eval mode G uses `noise_mode`: "const", fixed maps drawn at construction and kept as buffers
  (in the checkpoint, so a seed gives the same image everywhere and the ONNX graph is a function of z alone),
  or "none".
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dcgan import dcgan_stages

__all__ = ["EqualConv2d", "EqualLinear", "MappingNetwork", "ModulatedConv2d", "StyleGAN2Discriminator",
           "StyleGAN2Generator", "SynthesisNetwork", "minibatch_std", "pixel_norm"]

LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' second moment through leaky ReLU(0.2) (He et al.)
NOISE_MODES = ("const", "none")


def pixel_norm(z: Tensor, eps: float = 1e-8) -> Tensor:
    """z scaled to unit mean square over dim 1 (the mapping network's input normalisation)."""
    return z * torch.rsqrt(z.square().mean(1, keepdim=True) + eps)


def lrelu(x: Tensor, gain: float = 1.0) -> Tensor:
    return F.leaky_relu(x, 0.2) * (LRELU_GAIN * gain)


def upsample(x: Tensor) -> Tensor:
    """x2 bilinear upsampling (in place of the paper's FIR-filtered upsampling)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def downsample(x: Tensor) -> Tensor:
    """/2 by 2x2 averaging = bilinear downsampling by 2 (odd sizes floor)."""
    return F.avg_pool2d(x, 2)


class EqualLinear(nn.Module):
    """A fully connected layer with equalized learning rate: W ~ N(0, 1/lr_mul^2) stored, W * lr_mul / sqrt(fan_in)
    used; the bias is stored / lr_mul and used * lr_mul, so its initial value is `bias_init`."""

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.w_gain, self.lr_mul, self.activate = lr_mul / math.sqrt(in_features), lr_mul, activate

    def forward(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.weight * self.w_gain, self.bias * self.lr_mul)
        return lrelu(y) if self.activate else y


class EqualConv2d(nn.Module):
    """A same-padded conv with equalized learning rate (D's layers); leaky ReLU when `activate`. `gain` scales
    the output (the residual blocks' sqrt(1/2))."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, bias: bool = True,
                 activate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.w_gain, self.pad, self.activate = 1.0 / math.sqrt(in_channels * kernel * kernel), kernel // 2, activate

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        y = F.conv2d(x, self.weight * self.w_gain, self.bias, padding=self.pad)
        return lrelu(y, gain) if self.activate else (y * gain if gain != 1.0 else y)


class ModulatedConv2d(nn.Module):
    """A conv whose input channels are scaled per sample by a style s = A(w) (A: a fully connected layer with
    bias 1 at init), then, when `demodulate`, each output channel divided by sqrt(sum_{i,k} (s_i W_oik)^2 + eps).
    `up`: bilinear x2 upsampling of the input first. Returns the conv output (no bias, noise or activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, w_dim: int, *, demodulate: bool = True,
                 up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.w_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.pad, self.demodulate, self.up = kernel // 2, demodulate, up

    def demodulation(self, styles: Tensor) -> Tensor:
        """(N, C_out): 1 / sqrt(sum_{i,k} (s_i W_oik)^2 + 1e-8), in fp32 even under autocast."""
        with torch.autocast(styles.device.type, enabled=False):
            w2 = (self.weight.float() * self.w_gain).square().sum((2, 3))  # (C_out, C_in)
            return torch.rsqrt(styles.float().square() @ w2.t() + 1e-8)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w)  # (N, C_in)
        x = x * styles.to(x.dtype).reshape(*styles.shape, 1, 1)  # modulation commutes with the upsampling
        if self.up:
            x = upsample(x)
        x = F.conv2d(x, self.weight * self.w_gain, padding=self.pad)
        if self.demodulate:
            x = x * self.demodulation(styles).to(x.dtype).reshape(x.shape[0], -1, 1, 1)
        return x


class StyleLayer(nn.Module):
    """A modulated 3x3 conv, per-pixel noise with a learned strength, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, size: tuple[int, int], up: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", torch.randn(1, 1, *size))  # the eval-mode noise ("const")
        self.size = size

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | str) -> Tensor:
        x = self.conv(x, w)
        if isinstance(noise, str):
            if noise == "random":
                noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            elif noise == "const":
                noise = self.noise_const
            elif noise == "none":
                noise = None
            else:
                raise ValueError(f"noise must be random, const, none or a tensor, got {noise!r}")
        if noise is not None:
            x = x + noise.to(x.dtype) * self.noise_strength.to(x.dtype)
        return lrelu(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1))


class ToRGB(nn.Module):
    """A modulated 1x1 conv to the image channels, without demodulation, plus a bias."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        y = self.conv(x, w)
        return y + self.bias.to(y.dtype).reshape(1, -1, 1, 1)


class MappingNetwork(nn.Module):
    """z (N, z_dim) -> w (N, w_dim): PixelNorm, then `depth` fully connected layers with leaky ReLU at learning
    rate x `lr_mul`. `w_avg` is the running average of w that `track` updates (decay `w_avg_beta`)."""

    def __init__(self, z_dim: int, w_dim: int, depth: int, lr_mul: float = 0.01, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * depth
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activate=True) for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    def forward(self, z: Tensor) -> Tensor:
        return self.net(pixel_norm(z))

    @torch.no_grad()
    def track(self, w: Tensor) -> None:
        """w_avg <- beta w_avg + (1 - beta) mean(w) (during training)."""
        self.w_avg.copy_(torch.lerp(w.detach().float().mean(0), self.w_avg, self.w_avg_beta))

    def truncate(self, w: Tensor, psi: float | Tensor) -> Tensor:
        """The truncation trick: w_avg + psi (w - w_avg). psi: a float, or a tensor () or (N,)."""
        if isinstance(psi, Tensor):
            psi = psi.to(w.dtype).reshape(-1, 1)
        elif psi == 1:
            return w
        avg = self.w_avg.to(w.dtype)
        return avg + psi * (w - avg)


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, C, h0 * 2^n, w0 * 2^n): the skip generator from a learned constant.

    Layer j of `layers` reads ws[:, j]; toRGB k reads ws[:, 2k + 1] (the w of the next resolution's first conv,
    as in the paper's code), so num_ws = 2n + 2.
    """

    def __init__(self, w_dim: int, out_shape: tuple[int, int, int], width: int, max_width: int) -> None:
        super().__init__()
        c_img, h, w = out_shape
        n, h0, w0 = dcgan_stages(h, w)
        chans = [min(width * 2 ** (n - i), max_width) for i in range(n + 1)]  # per resolution, coarsest first
        self.base = (h0, w0)
        self.const = nn.Parameter(torch.randn(chans[0], h0, w0))
        layers = [StyleLayer(chans[0], chans[0], w_dim, (h0, w0), up=False)]
        torgb = [ToRGB(chans[0], c_img, w_dim)]
        for i in range(1, n + 1):
            size = (h0 * 2**i, w0 * 2**i)
            layers += [StyleLayer(chans[i - 1], chans[i], w_dim, size, up=True),
                       StyleLayer(chans[i], chans[i], w_dim, size, up=False)]
            torgb.append(ToRGB(chans[i], c_img, w_dim))
        self.layers, self.torgb = nn.ModuleList(layers), nn.ModuleList(torgb)
        self.num_ws = 2 * n + 2

    @property
    def noise_shapes(self) -> list[tuple[int, int]]:
        """(h, w) of each layer's noise map, in layer order."""
        return [layer.size for layer in self.layers]

    def forward(self, ws: Tensor, noise: str | Sequence[Tensor] = "random") -> Tensor:
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be (N, {self.num_ws}, w_dim), got {tuple(ws.shape)}")
        per_layer = [noise] * len(self.layers) if isinstance(noise, str) else list(noise)
        if len(per_layer) != len(self.layers):
            raise ValueError(f"noise: one map per layer ({len(self.layers)}), got {len(per_layer)}")
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], per_layer[0])
        img = self.torgb[0](x, ws[:, 1]).float()
        for k in range(1, len(self.torgb)):
            x = self.layers[2 * k - 1](x, ws[:, 2 * k - 1], per_layer[2 * k - 1])
            x = self.layers[2 * k](x, ws[:, 2 * k], per_layer[2 * k])
            y = self.torgb[k](x, ws[:, 2 * k + 1])
            img = upsample(img) + y.float()  # the image sums in fp32
        return img


class StyleGAN2Generator(nn.Module):
    """z (N, latent_dim) -> images (N, C, H, W): mapping, (optional) truncation, synthesis, centre crop.

    `G(z)` is what sampling and export call: truncation `self.truncation` (1 = none; or pass `truncation=psi`, a
    float or a tensor () / (N,)), noise "random" in training and `self.noise_mode` in eval mode, image clamped
    to [-1, 1] in eval mode. Training passes its own noise maps, a second latent `z2` with per-sample crossover
    layers `cutoff` (style mixing: ws[:, j] = w(z) for j < cutoff, w(z2) from there), and `track=True` to update
    w_avg from w(z).
    """

    def __init__(self, latent_dim: int, out_shape: tuple[int, int, int], *, w_dim: int = 128, mapping_layers: int = 2,
                 width: int = 32, max_width: int = 256, lr_mul: float = 0.01, w_avg_beta: float = 0.995,
                 truncation: float = 1.0, noise_mode: str = "const") -> None:
        super().__init__()
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        self.out_hw = tuple(out_shape[1:])
        self.latent_dim, self.w_dim = latent_dim, w_dim
        self.mapping = MappingNetwork(latent_dim, w_dim, mapping_layers, lr_mul, w_avg_beta)
        self.synthesis = SynthesisNetwork(w_dim, out_shape, width, max_width)
        self.truncation, self.noise_mode = truncation, noise_mode

    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    def styles(self, z: Tensor, *, z2: Tensor | None = None, cutoff: Tensor | None = None, track: bool = False,
               truncation: float | Tensor | None = None) -> Tensor:
        """ws (N, num_ws, w_dim) for latents z (and z2 mixed in from layer `cutoff` on, per sample)."""
        n = z.shape[0]
        w = self.mapping(z if z2 is None else torch.cat([z, z2]))
        w1, w2 = (w, None) if z2 is None else (w[:n], w[n:])
        if track:
            self.mapping.track(w1)
        psi = self.truncation if truncation is None else truncation
        w1 = self.mapping.truncate(w1, psi)
        ws = w1.unsqueeze(1).expand(-1, self.num_ws, -1)
        if w2 is not None:
            if cutoff is None:
                raise ValueError("style mixing needs the crossover layers `cutoff` (N,) with z2")
            w2 = self.mapping.truncate(w2, psi)
            first = torch.arange(self.num_ws, device=z.device).reshape(1, -1, 1) < cutoff.reshape(-1, 1, 1)
            ws = torch.where(first, ws, w2.unsqueeze(1))
        return ws

    def synthesize(self, ws: Tensor, noise: str | Sequence[Tensor] | None = None) -> Tensor:
        """ws -> images at the data's size; noise None: random in training, `noise_mode` in eval mode."""
        if noise is None:
            noise = "random" if self.training else self.noise_mode
        x = self.synthesis(ws, noise)
        dh, dw = x.shape[2] - self.out_hw[0], x.shape[3] - self.out_hw[1]
        if dh or dw:  # centre-crop the few extra rows/columns
            x = x[:, :, dh // 2 : dh // 2 + self.out_hw[0], dw // 2 : dw // 2 + self.out_hw[1]]
        return x if self.training else x.clamp(-1.0, 1.0)

    def forward(self, z: Tensor, truncation: float | Tensor | None = None, noise: str | Sequence[Tensor] | None = None,
                *, z2: Tensor | None = None, cutoff: Tensor | None = None, track: bool = False) -> Tensor:
        ws = self.styles(z, z2=z2, cutoff=cutoff, track=track, truncation=truncation)
        return self.synthesize(ws, noise)


def minibatch_std(x: Tensor, group: int = 4) -> Tensor:
    """x with one more channel: the std of each feature over groups of `group` samples (the largest group size
    <= `group` that divides the batch), averaged over channels and pixels, repeated over the map.
    Sample i is in group i mod (N / g), as in the paper's code."""
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.float().reshape(g, -1, c, h, w)
    y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean((1, 2, 3))  # (N / g,)
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], 1)


class DiscriminatorBlock(nn.Module):
    """conv 3x3 -> downsample -> conv 3x3, plus a 1x1 skip of the downsampled input; both scaled by sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activate=False)

    def forward(self, x: Tensor) -> Tensor:
        half = math.sqrt(0.5)
        skip = self.skip(downsample(x), gain=half)
        return skip + self.conv1(downsample(self.conv0(x)), gain=half)


class StyleGAN2Discriminator(nn.Module):
    """x (N, C, H, W) -> one logit per sample (N,): fromRGB, n residual blocks (halving the map), then minibatch
    std, a 3x3 conv, a fully connected layer over the remaining map and the output layer."""

    def __init__(self, in_shape: tuple[int, int, int], width: int = 32, max_width: int = 256, mbstd_group: int = 4) -> None:
        super().__init__()
        c_img, h, w = in_shape
        n, _, _ = dcgan_stages(h, w)
        chans = [min(width * 2**i, max_width) for i in range(n + 1)]
        self.from_rgb = EqualConv2d(c_img, chans[0], 1)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(a, b) for a, b in zip(chans[:-1], chans[1:])])
        for _ in range(n):
            h, w = h // 2, w // 2
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(chans[-1] + 1, chans[-1], 3)
        self.fc = EqualLinear(chans[-1] * h * w, chans[-1], activate=True)
        self.out = EqualLinear(chans[-1], 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.from_rgb(x))
        x = self.conv(minibatch_std(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1))).flatten()
