"""Convolutions that train faster on CPU: torch.nn's layers with the parts oneDNN runs slowly done as matmuls.

Every class here has the parameters, state_dict and results (to rounding) of the torch.nn layer it subclasses (old
checkpoints load, ONNX export sees the plain layer); only the route to the numbers differs, and only where
it was measured to be faster (64x64 and 28x28 DCGAN, batch 64, 2 cores of an AVX512-BF16 CPU without AMX,
bf16 autocast unless said; times are forward + backward of one layer):

- `LatentProjection`: a transposed conv from a 1x1 map (G's first layer) is one matmul (7.3 ms -> 2.0 ms).
- `WholeMapConv`: a conv whose kernel covers its whole input (D's head) is one matmul (2.25 ms -> 0.55 ms).
- `FastConv2d` / `FastConvTranspose2d`, while training on CPU:
  - one image channel: oneDNN's transposed conv to 1 channel (G's last layer, and the input gradient of
    D's first layer, which is the same computation) runs at ~20 GFLOP/s; a matmul and a col2im (F.fold)
    are faster in bf16 and in fp32 (64x64, bf16: G's last layer 10.7 -> 7.7 ms, D's first with an input
    gradient 8.3 -> 4.8 ms; fp32: 14.2 -> 9.5 ms and 14.7 -> 6.6 ms).
    With 3 channels oneDNN is faster, so RGB keeps it.
  - bf16 weight gradients of layers whose small map (the output of a conv, the input of a transposed conv)
    is at most 8x8: oneDNN has no brgemm weight-gradient kernel without AMX and its older one reaches
    ~210-330 GFLOP/s; an im2col copy plus one matmul runs near the bf16 matmul peak (~400): 17.5 -> 11 ms
    for 512 <-> 256 channels at 4x4 <-> 8x8. Larger maps lose (the im2col copy grows), fp32 loses, NCHW
    tensors lose half the time (the copy gathers across channels; channels_last, the default, wins at every
    layer), and CPUs with AMX keep oneDNN's AMX kernels.
- `upsample_conv3x3`: nearest x2 upsampling followed by a 3x3 conv (FastGAN's up-sampling blocks) is one
  stride-2 transposed conv with a 4x4 kernel, each tap a sum of 3x3 taps: every output pixel sees only 2x2
  input pixels, so it does 4/9 of the multiply-adds and never writes the upsampled map. fp32, NCHW, forward +
  backward, batch 8, 2 cores of an AVX2-only AMD EPYC: the four up-sampling layers of the cars recipe's G ran
  1.48-2.81x faster (the last, 24 -> 24 channels at 56x56 -> 112x112: 68.6 -> 27.6 ms), its training step 1.19x
  (bench/fastgan_upconv.py). Under bf16 autocast on an AVX512-BF16 AMD EPYC the step ran 1.09x faster, so the
  route runs in both (UPSAMPLE_ROUTE_DTYPES).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GEMM_WGRAD_MAX_MAP = 64  # rows per sample of the im2col matrix (the small map, H x W) up to which it pays


@functools.cache
def _has_amx() -> bool:
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check is not None and check())


def _hwc_rows(t: Tensor) -> Tensor:
    """(A, B, H, W) -> (A, H * W * B) in (h, w, b) order: a view when t is channels_last."""
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1)


def _pixel_rows(t: Tensor) -> Tensor:
    """(N, C, H, W) -> (N * H * W, C), one row per pixel: a view when t is channels_last."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def _im2col_rows(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 out_hw: tuple[int, int]) -> Tensor:
    """The patches of x (N, C, H, W) under a (kh, kw) window: (N * oh * ow, kh * kw * C) in (kh, kw, c) order.

    A strided view of the zero-padded input, copied once; from channels_last input every patch row is a
    run of contiguous C-vectors.
    """
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_hw
    xp = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1)  # (N, H + 2ph, W + 2pw, C)
    s_n, s_h, s_w, s_c = xp.stride()
    patches = xp.as_strided((x.shape[0], oh, ow, kh, kw, x.shape[1]), (s_n, s_h * sh, s_w * sw, s_h, s_w, s_c))
    return patches.reshape(-1, kh * kw * x.shape[1])


def _conv_transpose_by_fold(x: Tensor, w: Tensor, stride: tuple[int, int], padding: tuple[int, int],
                            out_hw: tuple[int, int]) -> Tensor:
    """conv_transpose2d(x, w) (x: (N, Cin, H, W), w: (Cin, Cout, kh, kw), no output padding) as a matmul and
    a col2im: every input pixel's row is its (Cout, kh, kw) patch of the output, F.fold sums the overlaps
    (in fp32, as autocast runs it: 3x faster than F.fold in bf16 on CPU, and the overlaps add in fp32)."""
    n, c, h, wd = x.shape
    cols = torch.mm(_pixel_rows(x), w.reshape(c, -1))  # (N * H * W, Cout * kh * kw)
    cols = cols.view(n, h * wd, -1).transpose(1, 2).float()
    return F.fold(cols, out_hw, w.shape[-2:], padding=padding, stride=stride)


class _Conv(torch.autograd.Function):
    """conv2d / conv_transpose2d (no groups, dilation or output padding) with a chosen backward route:
    the input gradient of a 1-channel conv by matmul + col2im, the weight gradient by im2col + matmul."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor | None, transposed: bool, stride: tuple[int, int],
                padding: tuple[int, int], fold_dgrad: bool, gemm_wgrad: bool) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.transposed, ctx.stride, ctx.padding = transposed, stride, padding
        ctx.fold_dgrad, ctx.gemm_wgrad = fold_dgrad, gemm_wgrad
        conv = F.conv_transpose2d if transposed else F.conv2d
        return conv(x, w, b, stride, padding)

    @staticmethod
    def backward(ctx, go: Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        fold_x, gemm_w = need_x and ctx.fold_dgrad, need_w and ctx.gemm_wgrad
        dx = dw = db = None
        if (need_x and not fold_x) or (need_w and not gemm_w):  # what oneDNN still does, in one call
            dx, dw, _ = torch.ops.aten.convolution_backward(
                go, x, w, None, list(ctx.stride), list(ctx.padding), [1, 1], ctx.transposed, [0, 0], 1,
                [need_x and not fold_x, need_w and not gemm_w, False])
        if fold_x:  # a conv's input gradient is the transposed conv of go
            dx = _conv_transpose_by_fold(go, w, ctx.stride, ctx.padding, tuple(x.shape[-2:])).to(x.dtype)
        if gemm_w:
            # conv: dW[o, i, kh, kw] = sum over output pixels of go[o] * (patch of x)[i, kh, kw]; a transposed
            # conv swaps the roles: dW[i, o, kh, kw] = sum over input pixels of x[i] * (patch of go)[o, kh, kw]
            patched, pixels = (go, x) if ctx.transposed else (x, go)
            kernel = tuple(w.shape[-2:])
            cols = _im2col_rows(patched, kernel, ctx.stride, ctx.padding, tuple(pixels.shape[-2:]))
            dw = (_pixel_rows(pixels).t() @ cols).view(w.shape[0], *kernel, w.shape[1]).permute(0, 3, 1, 2)
        if need_b:
            db = go.sum((0, 2, 3))
        return dx, dw, db, None, None, None, None, None


def _plain_geometry(m: nn.Module) -> bool:
    """No groups, dilation, padding modes, named padding or output padding: the convs the routes here compute."""
    return (m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros" and not isinstance(m.padding, str)
            and m.output_padding == (0, 0))


def _routable(m: nn.Module, x: Tensor) -> bool:
    """Autograd recording on CPU, and a plain geometry (what _Conv handles)."""
    return x.device.type == "cpu" and torch.is_grad_enabled() and _plain_geometry(m)


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype


def _weight_requires_grad(m: nn.Module) -> bool:
    """Whether m's weight takes a gradient, without computing it: reading a parametrized weight runs its
    parametrization (spectral normalisation's power iteration, which updates its vectors in training), so a
    check that read it would add one iteration per forward to the one the conv itself reads."""
    if nn.utils.parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original.requires_grad
    return m.weight.requires_grad


def _gemm_wgrad(m: nn.Module, x: Tensor, small_map: int) -> bool:
    return (_compute_dtype(x) == torch.bfloat16 and small_map <= GEMM_WGRAD_MAX_MAP and _weight_requires_grad(m)
            and x.is_contiguous(memory_format=torch.channels_last) and not _has_amx())


def _apply(m: nn.Module, x: Tensor, transposed: bool, fold_dgrad: bool, gemm_wgrad: bool) -> Tensor:
    w, b = m.weight, m.bias
    if torch.is_autocast_enabled("cpu"):  # cast as autocast would, then run the Function without it
        dt = torch.get_autocast_dtype("cpu")
        x, w, b = x.to(dt), w.to(dt), None if b is None else b.to(dt)
    with torch.autocast("cpu", enabled=False):
        return _Conv.apply(x, w, b, transposed, m.stride, m.padding, fold_dgrad, gemm_wgrad)


# Row u of the 4-tap kernel the transposed conv applies sums these of the 3x3 conv's taps (rows, and columns alike):
# an output pixel 2i + a reads input rows i - 1, i (a = 0: taps k0 | k1 + k2) or i, i + 1 (a = 1: k0 + k1 | k2),
# which a stride-2 transposed conv with padding 1 reaches through its kernel rows 3, 1 and 2, 0.
_UP_TAPS = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def upsample_conv3x3(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """conv(F.interpolate(x, scale_factor=2, mode="nearest")) for a 3x3, stride-1, padding-1 `conv` (no groups or
    dilation), equal to rounding, as one transposed conv at x's resolution: (N, C, H, W) -> (N, O, 2H, 2W).
    Gradients reach x and the conv's own weight (and bias), so training and checkpoints see the plain layer."""
    w = conv.weight  # (O, C, 3, 3); read once (a spectral-norm parametrization computes it on each read)
    taps = torch.tensor(_UP_TAPS, dtype=torch.float32, device=w.device)
    with torch.autocast(x.device.type, enabled=False):  # sum the taps in fp32: one rounding (autocast's, or to w's)
        w4 = torch.einsum("uk,vl,ockl->ocuv", taps, taps, w.float()).to(w.dtype)
    w4 = w4.transpose(0, 1)  # (C, O, 4, 4), as conv_transpose2d reads its weight
    return F.conv_transpose2d(x, w4, conv.bias, stride=2, padding=1)


# The compute dtypes `upsample_conv3x3` runs in: those where bench/fastgan_upconv.py measured it faster (the cars
# recipe's training step: fp32 1.19x on an AVX2 EPYC, bf16 autocast 1.09x on an AVX512-BF16 EPYC).
UPSAMPLE_ROUTE_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.bfloat16)


def upsample_conv_routable(conv: nn.Conv2d, x: Tensor) -> bool:
    """Whether `upsample_conv3x3` runs this layer: training on CPU in a dtype of UPSAMPLE_ROUTE_DTYPES (where it
    was measured; eval mode, sampling and ONNX export keep the plain two layers) with a conv it computes exactly."""
    return (conv.training and x.device.type == "cpu" and _compute_dtype(x) in UPSAMPLE_ROUTE_DTYPES
            and conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and not conv.transposed and _plain_geometry(conv))


class FastConv2d(nn.Conv2d):
    """nn.Conv2d that, while gradients are being recorded on CPU, takes the faster backward routes above."""

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if not _routable(self, x):
            return super().forward(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        out_map = ((x.shape[-2] + 2 * ph - kh) // sh + 1) * ((x.shape[-1] + 2 * pw - kw) // sw + 1)
        fold_dgrad = self.in_channels == 1 and x.requires_grad
        gemm_wgrad = _gemm_wgrad(self, x, out_map)
        if not (fold_dgrad or gemm_wgrad):
            return super().forward(x)
        return _apply(self, x, False, fold_dgrad, gemm_wgrad)


class FastConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d that, while training on CPU, takes the faster routes above: to 1 channel (G's last
    layer) its forward is a matmul + col2im (whose backward autograd derives: an unfold and two matmuls)."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:  # type: ignore[override]
        if output_size is not None or not _routable(self, x):
            return super().forward(x, output_size)
        if self.out_channels == 1 and self.training:  # in eval mode (sampling, export) the plain layer
            (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
            out_hw = ((x.shape[-2] - 1) * sh - 2 * ph + kh, (x.shape[-1] - 1) * sw - 2 * pw + kw)
            y = _conv_transpose_by_fold(x, self.weight, self.stride, self.padding, out_hw)
            return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
        if not _gemm_wgrad(self, x, x.shape[-2] * x.shape[-1]):
            return super().forward(x)
        return _apply(self, x, True, False, True)


class LatentProjection(nn.ConvTranspose2d):
    """The first layer of G: a stride-1, unpadded transposed conv from a 1x1 map, which is one matmul.

    Computed as the matmul (same parameters and state_dict as nn.ConvTranspose2d): oneDNN's transposed conv
    runs a 1x1 input several times slower (64x64 DCGAN, bf16, forward + backward: 7.3 ms vs 2.0 ms).
    With a channels_last weight the output comes out channels_last too, for the layers after it.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if (x.shape[-2:] != (1, 1) or self.stride != (1, 1) or self.padding != (0, 0) or self.groups != 1
                or self.dilation != (1, 1)):
            return super().forward(x)
        w, n = self.weight, x.shape[0]  # w: (in, out, kh, kw)
        kh, kw = self.kernel_size
        if w.is_contiguous(memory_format=torch.channels_last):  # in memory (in, kh, kw, out): a free view
            y = torch.mm(x.flatten(1), _hwc_rows(w))
            y = y.view(n, kh, kw, self.out_channels).permute(0, 3, 1, 2)
        else:
            y = torch.mm(x.flatten(1), w.flatten(1)).view(n, self.out_channels, kh, kw)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class WholeMapConv(nn.Conv2d):
    """A conv whose kernel covers its whole input map (D's last layer): one matmul per sample, (N, C_out, 1, 1).

    Same parameters as nn.Conv2d; computed as a matmul, which oneDNN runs ~4x faster than the conv for
    D's 512x4x4 head (bf16, forward + backward: 2.25 ms vs 0.55 ms).
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if (tuple(x.shape[-2:]) != tuple(self.kernel_size) or self.padding != (0, 0) or self.groups != 1
                or self.dilation != (1, 1)):
            return super().forward(x)
        w, n = self.weight, x.shape[0]
        if x.is_contiguous(memory_format=torch.channels_last):  # read both in (h, w, c) order: x as a free view
            y = F.linear(_hwc_rows(x), _hwc_rows(w), self.bias)
        else:
            y = F.linear(x.flatten(1), w.flatten(1), self.bias)
        return y.view(n, self.out_channels, 1, 1)
