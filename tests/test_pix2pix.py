"""pix2pix: the U-Net generator, the pair-seeing PatchGAN, the cGAN + L1 objective, the L1-only baseline,
checkpoints and exact resume. Data: 8x8 digits (A) and their inverses (B), built by hand."""

import pytest
import torch
import torch.nn.functional as F

from ganforge.artifacts.sampler import Sampler
from ganforge.config import from_dict
from ganforge.data.builtin import digits
from ganforge.data.spec import DataSpec
from ganforge.data.store import TensorData
from ganforge.families import FAMILIES, StepContext, build_family
from ganforge.families.pix2pix import Pix2Pix
from ganforge.nn.unet import UNetGenerator, unet_sizes
from ganforge.train import build_run

from .conftest import split_and_resume


SMALL = {"width": 8, "d_width": 8}


@pytest.fixture(autouse=True)
def _one_thread():
    """These nets are tiny: a second intra-op thread only adds synchronisation (40x slower on a busy 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def paired_digits(n: int = 256) -> TensorData:
    """A = an 8x8 digit, B = the same digit inverted (255 - x): a paired set with a closed-form answer."""
    d = digits()
    spec = DataSpec("image", d.spec.shape, 10, d.spec.class_names, "digits-inverted", shape_b=d.spec.shape,
                    pairing="paired", domains=("digit", "inverted"))
    return TensorData(spec, d.x[:n], d.y[:n], source="test", x_b=255 - d.x[:n])


def run_config(steps: int, train: dict | None = None, **model):
    return from_dict({
        "family": "pix2pix", "model": {**SMALL, **model}, "data": {"source": "builtin:digits"},
        "train": {"steps": steps, "batch_size": 16, **(train or {})},
        "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 1, "n_samples": 8, "progress": False,
                "tensorboard": False},
    })


def two_domain_spec(shape, shape_b, pairing="paired") -> DataSpec:
    return DataSpec("image", shape, name="pairs", shape_b=shape_b, pairing=pairing, domains=("a", "b"))


def test_registered():
    assert FAMILIES["pix2pix"] is Pix2Pix
    assert Pix2Pix.needs == "paired"


# -- the U-Net ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,c_in,c_out,depth", [
    ((8, 8), 1, 1, 3),       # 8-4-2-1
    ((28, 28), 1, 1, 4),     # 28-14-7-3-1: odd sides need no padding
    ((64, 64), 1, 3, 6),     # grey -> colour
    ((256, 256), 3, 3, 8),   # the paper's size: 8 levels to a 1x1 bottleneck
    ((13, 29), 2, 1, 3),     # odd, non-square: 13x29-6x14-3x7-1x3
])
def test_unet_output_shapes(size, c_in, c_out, depth):
    g = UNetGenerator(c_in, c_out, size, width=4)
    assert g.depth == depth
    y = g(torch.randn(3, c_in, *size))
    assert y.shape == (3, c_out, *size)
    assert y.abs().max() <= 1.0  # tanh


def test_unet_depth_follows_image_size():
    assert len(unet_sizes(256, 256)) - 1 == 8  # the paper's 256x256 U-Net: 8 levels to a 1x1 bottleneck
    assert unet_sizes(28, 28) == [(28, 28), (14, 14), (7, 7), (3, 3), (1, 1)]
    assert len(unet_sizes(512, 512)) - 1 == 8  # capped at 8 levels (2x2 bottleneck)
    with pytest.raises(ValueError, match="at most 2"):
        UNetGenerator(1, 1, (4, 4), depth=3)
    with pytest.raises(ValueError, match="at least 2x2"):
        unet_sizes(1, 8)


def test_unet_dropout_in_the_innermost_decoder_blocks():
    g = UNetGenerator(1, 1, (64, 64), width=4)  # 6 levels: 5 decoder blocks + the output layer
    rates = [up.drop.p if isinstance(up.drop, torch.nn.Dropout) else 0.0 for up in g.ups]
    assert rates == [0.5, 0.5, 0.5, 0.0, 0.0]


def test_unet_top_skip_carries_fine_detail():
    """With every level below the first cut off (detached), an output pixel still has a gradient w.r.t. the
    input pixels around it, and only those: the highest-resolution skip connects them."""
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, (16, 16), width=4).eval()
    g.downs[1].register_forward_hook(lambda mod, inp, out: out.detach())
    x = torch.randn(1, 1, 16, 16, requires_grad=True)
    g(x)[0, 0, 8, 8].backward()
    grad = x.grad[0, 0].abs()
    rows, cols = torch.nonzero(grad, as_tuple=True)
    assert grad[8, 8] > 0
    assert len(rows) > 0 and (rows - 8).abs().max() <= 3 and (cols - 8).abs().max() <= 3
    # the full U-Net, for contrast, sees the whole 16x16 image from that pixel (through the bottleneck)
    x.grad = None
    g2 = UNetGenerator(1, 1, (16, 16), width=4).eval()
    g2(x)[0, 0, 8, 8].backward()
    assert (x.grad[0, 0] != 0).sum() > len(rows)


# -- the family -----------------------------------------------------------------------------------------
def test_d_sees_the_input_output_pair():
    fam = build_family("pix2pix", SMALL, two_domain_spec((1, 16, 16), (3, 16, 16)))  # grey -> colour
    assert fam.D.net[0].in_channels == 1 + 3
    assert fam.G(torch.zeros(2, 1, 16, 16)).shape == (2, 3, 16, 16)
    fam.eval()
    a, b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    # the same output judged against another input gets another score: D is conditional
    assert not torch.allclose(fam.critic(a, b), fam.critic(-a, b))


def test_check_spec_errors_name_the_fix():
    with pytest.raises(ValueError, match="unpaired.*cyclegan"):
        Pix2Pix.check_spec(two_domain_spec((1, 8, 8), (1, 8, 8), pairing="unpaired"))
    with pytest.raises(ValueError, match="srgan"):
        build_family("pix2pix", SMALL, two_domain_spec((1, 7, 7), (1, 28, 28)))
    with pytest.raises(ValueError, match="two domains"):
        build_family("pix2pix", SMALL, digits().spec)
    with pytest.raises(ValueError, match="d_norm"):
        build_family("pix2pix", {**SMALL, "loss": "wgan-gp"}, paired_digits().spec)
    with pytest.raises(ValueError, match="unknown pix2pix option"):
        build_family("pix2pix", {"latent_dim": 8}, paired_digits().spec)


@pytest.mark.parametrize("loss,l1_weight", [("ns", 100.0), ("lsgan", 7.0)])
def test_loss_is_adversarial_plus_lambda_l1(loss, l1_weight):
    data = paired_digits(32)
    torch.manual_seed(0)
    fam = build_family("pix2pix", {**SMALL, "loss": loss, "l1_weight": l1_weight}, data.spec).eval()
    batch = data.batch(torch.arange(16))
    a, b = batch.x, batch.x_b
    with torch.no_grad():
        fake = fam.G(a)
        fake_logits = fam.D(torch.cat([a, fake], 1))
        real_logits = fam.D(torch.cat([a, b], 1))
    l1 = (fake - b).abs().mean()
    if loss == "ns":  # -log D(x, G(x)) and -log D(x, y) - log(1 - D(x, G(x)))
        adv_g = F.softplus(-fake_logits).mean()
        adv_d = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    else:
        adv_g = 0.5 * (fake_logits - 1).pow(2).mean()
        adv_d = 0.5 * ((real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean())
    out_g = fam.loss("g", batch)
    torch.testing.assert_close(out_g.loss.detach(), adv_g + l1_weight * l1)
    torch.testing.assert_close(torch.as_tensor(out_g.logs["g/l1"]), l1)
    torch.testing.assert_close(torch.as_tensor(out_g.logs["g/adv"]), adv_g)
    out_d = fam.loss("d", batch)
    torch.testing.assert_close(out_d.loss.detach(), 0.5 * adv_d)  # D's objective halved, as in the paper


def test_one_generator_forward_per_step():
    """The G phase reuses the fakes the D phase drew (with their dropout mask): one G forward per step."""
    data = paired_digits(32)
    fam = build_family("pix2pix", SMALL, data.spec).train()
    calls = []
    fam.G.register_forward_hook(lambda *_: calls.append(1))
    batch = data.batch(torch.arange(16))
    ctx = StepContext(0, fam.phases(0))
    fam.loss("d", batch, ctx)
    fam.loss("g", batch, ctx)
    assert len(calls) == 1
    fam.loss("g", data.batch(torch.arange(16, 32)))  # a G phase on its own draws its own fakes
    assert len(calls) == 2


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _moved(before, module):
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters()))


def test_one_training_step_moves_g_and_d(tmp_path):
    trainer = build_run(run_config(1), tmp_path, data=paired_digits())
    fam = trainer.family
    g0, d0 = _params(fam.G), _params(fam.D)
    logs = trainer.train_step()
    assert _moved(g0, fam.G) and _moved(d0, fam.D)
    for key in ("d/loss", "g/loss", "g/l1", "g/adv", "d/real", "d/fake", "d/acc_real", "d/acc_fake"):
        assert key in logs, key
    assert logs["g/loss"] == pytest.approx(logs["g/adv"] + 100.0 * logs["g/l1"], rel=1e-5)


def test_l1_only_baseline_never_has_a_discriminator(tmp_path):
    data = paired_digits()
    fam = build_family("pix2pix", {**SMALL, "adversarial": False}, data.spec)
    assert fam.D is None and fam.phases(0) == ("g",) and [p.name for p in fam.phase_specs()] == ["g"]
    assert not any(k.startswith("D.") for k in fam.state_dict())
    with pytest.raises(ValueError, match="no discriminator"):
        fam.loss("d", data.batch(torch.arange(4)))
    trainer = build_run(run_config(30, {"lr_g": 2e-3}, adversarial=False), tmp_path, data=data)
    assert trainer.family.D is None and set(trainer.optimizers) == {"g"}
    first = trainer.train_step()
    assert not any(k.startswith("d/") for k in first) and "g/adv" not in first
    assert first["g/loss"] == pytest.approx(100.0 * first["g/l1"], rel=1e-5)
    trainer.fit()
    assert trainer.family.D is None
    # it learns the inversion: the L1 error falls
    assert trainer.last_logs["g/l1"] < 0.7 * first["g/l1"]  # ~0.81 -> ~0.4


def test_checkpoint_round_trip_translates_like_the_ema_generator(tmp_path):
    data = paired_digits()
    trainer = build_run(run_config(3), tmp_path, data=data).fit()
    x = data.to_float(data.x[:10])
    sampler = Sampler.from_checkpoint(tmp_path)
    assert sampler.is_translation
    expected = trainer.family.translate(x, net=trainer.generator)
    # equal to float rounding, not bit for bit: the trainer's copy holds channels_last weights, the sampler's
    # contiguous ones, and oneDNN's kernels for the two layouts round differently on some CPUs (AVX2-only ones)
    torch.testing.assert_close(sampler.translate(x), expected, rtol=1e-5, atol=1e-6)
    # eval mode: deterministic, and a translation does not depend on the rest of the batch
    torch.testing.assert_close(sampler.translate(x), sampler.translate(x), rtol=0, atol=0)
    torch.testing.assert_close(sampler.translate(x)[:3], sampler.translate(x[:3]))
    # translate() restores G's mode
    trainer.family.G.train()
    trainer.family.translate(x)
    assert trainer.family.G.training


@pytest.mark.parametrize("model", [{}, {"adversarial": False}])
def test_resume_is_bit_exact(model, tmp_path):
    data = paired_digits()
    full, resumed = split_and_resume(
        lambda steps, out, resume: build_run(run_config(steps, **model), out, resume=resume, data=data), tmp_path, 3)
    assert full.loader.state_dict() == resumed.loader.state_dict()
