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


# -- DCGAN's first and last layers as matmuls ---------------------------------------------------------------
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_latent_projection_equals_the_transposed_conv(channels_last, bias):
    from ganforge.nn.dcgan import LatentProjection

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
    from ganforge.nn.dcgan import WholeMapConv

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
