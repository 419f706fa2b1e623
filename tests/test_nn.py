import pytest
import torch
from torch import nn

from ganforge.nn import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, dcgan_stages

SIZES = [(8, 8), (28, 28), (32, 32), (64, 64), (100, 100), (96, 64), (64, 96), (17, 23)]


@pytest.mark.parametrize("hw", SIZES)
def test_dcgan_shapes_for_any_size(hw):
    G = DCGANGenerator(16, (3, *hw), width=4)
    D = DCGANDiscriminator((3, *hw), width=4)
    x = G(torch.randn(2, 16))
    assert x.shape == (2, 3, *hw)
    assert x.abs().max() <= 1.0  # tanh output
    assert D(x).shape == (2,)


def test_dcgan_stage_plan():
    assert dcgan_stages(28, 28) == (2, 7, 7)
    assert dcgan_stages(64, 64) == (4, 4, 4)
    assert dcgan_stages(100, 100) == (4, 7, 7)  # 112 -> centre crop to 100
    assert dcgan_stages(96, 64) == (4, 6, 4)


def test_dcgan_is_all_convolutional_with_the_paper_activations():
    G = DCGANGenerator(100, (3, 64, 64))
    D = DCGANDiscriminator((3, 64, 64))
    for net in (G, D):
        assert not any(isinstance(m, nn.Linear) for m in net.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert any(isinstance(m, nn.ReLU) for m in G.modules()) and isinstance(G.net[-1], nn.Tanh)
    assert any(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in D.modules())
    assert not isinstance(D.trunk[1], nn.BatchNorm2d)  # no BatchNorm on D's input layer
    # the paper's 64x64 generator: 512-256-128-64 channels
    convs = [m.out_channels for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convs == [512, 256, 128, 64, 3]


def test_mlp_nets_shapes():
    G = MLPGenerator(8, (2,), 32, 2, tanh=False)
    D = MLPDiscriminator((2,), 32, 2)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 2) and D(x).shape == (5,)
    G = MLPGenerator(8, (1, 8, 8), 32, 2, tanh=True)
    assert G(torch.randn(5, 8)).shape == (5, 1, 8, 8)


def test_mlp_discriminator_input_scale_is_the_same_net_on_scaled_input():
    torch.manual_seed(0)
    plain = MLPDiscriminator((2,), 16, 2)
    scaled = MLPDiscriminator((2,), 16, 2, input_scale=0.25)
    scaled.load_state_dict(plain.state_dict())  # no new parameters or buffers: checkpoints keep their keys
    x = 4 * torch.randn(7, 2)
    torch.testing.assert_close(scaled(x), plain(0.25 * x))
    logits, h = scaled.forward_with_features(x)
    torch.testing.assert_close(logits, plain(0.25 * x))
    torch.testing.assert_close(h, plain.net[:-1](0.25 * x))
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="input_scale"):
            MLPDiscriminator((2,), 16, 2, input_scale=bad)


# -- DCGAN's first and last layers as matmuls ---------------------------------------------------------------
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_latent_projection_equals_the_transposed_conv(channels_last, bias):
    from ganforge.nn.convs import LatentProjection

    torch.manual_seed(0)
    ref = nn.ConvTranspose2d(10, 6, (4, 3), 1, 0, bias=bias)
    fast = LatentProjection(10, 6, (4, 3), 1, 0, bias=bias)
    fast.load_state_dict(ref.state_dict())  # same parameters, same names
    if channels_last:
        ref, fast = ref.to(memory_format=torch.channels_last), fast.to(memory_format=torch.channels_last)
    z = torch.randn(5, 10, 1, 1)
    y_ref, y = ref(z), fast(z)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    g = torch.randn_like(y_ref)
    grads_ref = torch.autograd.grad(y_ref, list(ref.parameters()), g)
    grads = torch.autograd.grad(y, list(fast.parameters()), g)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # anything but a 1x1 input takes the ordinary transposed conv
    x = torch.randn(2, 10, 3, 3)
    torch.testing.assert_close(fast(x), ref(x))


@pytest.mark.parametrize("channels_last", [False, True])
def test_whole_map_conv_equals_the_conv(channels_last):
    from ganforge.nn.convs import WholeMapConv

    torch.manual_seed(0)
    ref, fast = nn.Conv2d(8, 3, (4, 5)), WholeMapConv(8, 3, (4, 5))
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(6, 8, 4, 5)
    if channels_last:
        ref, fast = ref.to(memory_format=torch.channels_last), fast.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    y_ref, y = ref(x), fast(x)
    assert y.shape == y_ref.shape == (6, 3, 1, 1)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y_ref)
    for a, b in zip(torch.autograd.grad(y, [x, *fast.parameters()], g),
                    torch.autograd.grad(y_ref, [x, *ref.parameters()], g), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    bigger = torch.randn(2, 8, 6, 7)  # a map larger than the kernel: the ordinary conv
    torch.testing.assert_close(fast(bigger), ref(bigger))


# -- FastConv2d / FastConvTranspose2d: torch.nn's results by other routes ---------------------------------
# (class, torch.nn class, in, out, input side, kernel, stride, padding): a 1-channel input / output (the
# matmul + col2im routes), an 8x8 / 7x7 small map (the bf16 im2col weight gradient), and a map too big for it
FAST_CASES = [
    ("FastConv2d", nn.Conv2d, 1, 8, 16, 4, 2, 1),
    ("FastConv2d", nn.Conv2d, 16, 32, 16, 4, 2, 1),
    ("FastConv2d", nn.Conv2d, 8, 16, 15, 3, 2, 1),
    ("FastConv2d", nn.Conv2d, 8, 16, 32, 4, 2, 1),
    ("FastConvTranspose2d", nn.ConvTranspose2d, 16, 1, 8, 4, 2, 1),
    ("FastConvTranspose2d", nn.ConvTranspose2d, 32, 16, 4, 4, 2, 1),
    ("FastConvTranspose2d", nn.ConvTranspose2d, 16, 8, 7, 4, 2, 1),
    ("FastConvTranspose2d", nn.ConvTranspose2d, 16, 8, 12, 4, 2, 1),
    ("FastConv2d", nn.Conv2d, 8, 16, (12, 7), 4, 2, 1),                 # non-square, odd side: 6x3 out
    ("FastConvTranspose2d", nn.ConvTranspose2d, 16, 8, (6, 3), 4, 2, 1),
    ("FastConv2d", nn.Conv2d, 1, 8, (13, 9), 4, 2, 1),
]


def _fast_pair(name, ref_cls, cin, cout, k, s, p, bias, channels_last):
    from ganforge.nn import convs

    ref = ref_cls(cin, cout, k, s, p, bias=bias)
    fast = getattr(convs, name)(cin, cout, k, s, p, bias=bias)
    fast.load_state_dict(ref.state_dict())  # the same parameters under the same names
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return ref.to(memory_format=fmt), fast.to(memory_format=fmt), fmt


def _value_and_grads(m, x0, bf16, x_grad, w_grad):
    m.requires_grad_(w_grad)
    x = x0.clone().requires_grad_(x_grad)
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        y = m(x)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y.dtype)
    wanted = ([x] if x_grad else []) + (list(m.parameters()) if w_grad else [])
    return [y, *torch.autograd.grad(y, wanted, g)] if wanted else [y]


@pytest.mark.parametrize("case", FAST_CASES, ids=lambda c: f"{c[0]}-{c[2]}to{c[3]}-{c[4]}")
@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "cl"])
def test_fast_convs_match_torch_nn(case, bf16, channels_last, monkeypatch):
    """Output and the gradients of input, weight and bias agree with torch.nn's layer: to float rounding in
    fp32, within bf16's rounding (8 bits of mantissa) under autocast, where both round to bf16 differently.
    Also with a frozen weight (D in G's phase) and with an input that needs no gradient (real images)."""
    from ganforge.nn import convs

    monkeypatch.setattr(convs, "_has_amx", lambda: False)  # test the routes on any CPU
    name, ref_cls, cin, cout, side, k, s, p = case
    torch.manual_seed(0)
    ref, fast, fmt = _fast_pair(name, ref_cls, cin, cout, k, s, p, True, channels_last)
    h, w = side if isinstance(side, tuple) else (side, side)
    x0 = torch.randn(6, cin, h, w).contiguous(memory_format=fmt)
    for x_grad, w_grad in [(True, True), (False, True), (True, False)]:
        got = _value_and_grads(fast, x0, bf16, x_grad, w_grad)
        want = _value_and_grads(ref, x0, bf16, x_grad, w_grad)
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert a.shape == b.shape
            if bf16:
                assert (a.float() - b.float()).abs().max() <= 2e-2 * b.float().abs().max()
            else:
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fast_convs_take_their_routes_only_where_they_pay(monkeypatch):
    from ganforge.nn import convs

    def routed(m, x, bf16=True):
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return type(m(x).grad_fn).__name__ == "_ConvBackward"

    monkeypatch.setattr(convs, "_has_amx", lambda: False)  # as on the CPUs the routes were measured on
    def cl(*shape):
        return torch.randn(*shape).contiguous(memory_format=torch.channels_last)

    small = convs.FastConv2d(16, 32, 4, 2, 1)          # 16x16 -> 8x8: the bf16 im2col weight gradient
    big = convs.FastConv2d(16, 32, 4, 2, 1)            # 32x32 -> 16x16: oneDNN's
    assert routed(small, cl(2, 16, 16, 16)) and not routed(big, cl(2, 16, 32, 32))
    assert not routed(small, cl(2, 16, 16, 16), bf16=False)  # fp32: oneDNN's is faster
    assert not routed(small, torch.randn(2, 16, 16, 16))  # NCHW: the im2col copy gathers across channels
    assert routed(convs.FastConv2d(1, 8, 4, 2, 1), torch.randn(2, 1, 16, 16, requires_grad=True), bf16=False)
    with torch.no_grad():
        assert small(cl(2, 16, 16, 16)).grad_fn is None
    monkeypatch.setattr(convs, "_has_amx", lambda: True)  # oneDNN's AMX kernels are left alone
    assert not routed(small, cl(2, 16, 16, 16))
    # G's last layer: the matmul + col2im forward only while training; eval mode (sampling, export) is plain
    last = convs.FastConvTranspose2d(16, 1, 4, 2, 1)
    x = torch.randn(2, 16, 8, 8)
    assert type(last(x).grad_fn).__name__ == "AddBackward0"  # fold + bias
    assert type(last.eval()(x).grad_fn).__name__ == "ConvolutionBackward0"


def test_fast_conv_supports_double_backward_for_gradient_penalties():
    """R1 / WGAN-GP differentiate D's input gradient: through the col2im input gradient of a 1-channel conv."""
    from ganforge.nn.convs import FastConv2d

    torch.manual_seed(0)
    ref, fast = nn.Conv2d(1, 8, 4, 2, 1), FastConv2d(1, 8, 4, 2, 1)
    fast.load_state_dict(ref.state_dict())
    x0 = torch.randn(5, 1, 16, 16)
    grads = []
    for m in (ref, fast):
        x = x0.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(m(x).pow(2).sum(), x, create_graph=True)
        grads.append(torch.autograd.grad(gx.pow(2).sum(), list(m.parameters())))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
