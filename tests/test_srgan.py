"""srgan (Ledig et al., 2017): SRResNet shapes and scale checks, pixel shuffle, content loss, training
phases (D frozen in the MSE-only mode and the MSE warm-up), Sampler round trip, exact resume."""

import pytest
import torch
import torch.nn.functional as F

from ganforge.artifacts.sampler import Sampler
from ganforge.checkpoint import latest_checkpoint
from ganforge.data.builtin import digits
from ganforge.data.spec import DataSpec
from ganforge.data.store import TensorData
from ganforge.families import FAMILIES, build_family
from ganforge.nn.fashion_net import fashion_content_net
from ganforge.nn.srresnet import SRDiscriminator, SRResNet, UpsampleStage, upscale_factor
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config

TINY = {"width": 8, "n_blocks": 1, "d_width": 8, "d_max_width": 16, "d_hidden": 16}


def spec(a, b, pairing="paired"):
    return DataSpec("image", a, name="toy-sr", shape_b=b, pairing=pairing, domains=("low", "high"))


@pytest.fixture(scope="module")
def lowres_digits():
    """Paired toy data: B = the 8x8 digits, A = their 2x2-area averages (4x4)."""
    d = digits()
    hr = d.x[:256]
    lr = F.avg_pool2d(hr.float(), 2).round().to(torch.uint8)
    return TensorData(spec((1, 4, 4), (1, 8, 8)), lr, d.y[:256], source="toy", x_b=hr)


def run_cfg(steps, model=None, **train):
    cfg = tiny_config("srgan", "builtin:digits", steps=steps, train={"steps": steps, "batch_size": 16, **train})
    cfg.model = {**TINY, **(model or {})}  # the toy data is passed to build_run; the source is only recorded
    return cfg


@pytest.mark.parametrize("a,b,scale", [((1, 4, 4), (1, 8, 8), 2), ((1, 2, 2), (1, 8, 8), 4),
                                       ((3, 4, 6), (3, 16, 24), 4), ((1, 7, 7), (1, 28, 28), 4)])
def test_generator_upscales_by_the_data_scale(a, b, scale):
    fam = build_family("srgan", TINY, spec(a, b))
    assert fam.scale == upscale_factor(a, b) == scale
    assert len(fam.G.upsample) == scale.bit_length() - 1  # log2(scale) pixel-shuffle stages
    x = torch.rand(3, *a) * 2 - 1
    out = fam.translate(x)
    assert out.shape == (3, *b)
    assert out.abs().max() <= 1.0
    assert fam.D(torch.rand(3, *b)).shape == (3,)


@pytest.mark.parametrize("a,b,match", [
    ((1, 4, 4), (1, 12, 12), "power of 2"),
    ((1, 4, 4), (1, 4, 4), "power of 2"),
    ((1, 4, 4), (1, 8, 16), "one scale"),
    ((1, 4, 4), (1, 10, 10), "multiple"),
])
def test_bad_scales_are_refused(a, b, match):
    with pytest.raises(ValueError, match=match):
        build_family("srgan", TINY, spec(a, b))


def test_unpaired_or_one_domain_data_is_refused():
    with pytest.raises(ValueError, match="paired"):
        build_family("srgan", TINY, spec((1, 4, 4), (1, 8, 8), pairing="unpaired"))
    with pytest.raises(ValueError, match="two domains"):
        build_family("srgan", TINY, DataSpec("image", (1, 8, 8), 10, name="digits"))
    with pytest.raises(ValueError, match="content"):
        build_family("srgan", {**TINY, "content": "vgg"}, spec((1, 4, 4), (1, 8, 8)))
    fam = build_family("srgan", TINY, spec((1, 4, 4), (1, 8, 8)))
    with pytest.raises(ValueError, match="4, 4"):
        fam.translate(torch.zeros(2, 1, 8, 8))


def test_pixel_shuffle_stage_is_depth_to_space():
    torch.manual_seed(0)
    stage = UpsampleStage(2)
    x = torch.randn(1, 2, 3, 3)
    conv = stage.conv(x)  # (1, 8, 3, 3): channel 4c + 2i + j becomes offset (i, j) of output channel c
    expect = torch.empty(1, 2, 6, 6)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                expect[0, c, i::2, j::2] = conv[0, 4 * c + 2 * i + j]
    torch.testing.assert_close(stage(x), stage.act(expect))


def test_srresnet_global_skip_and_blocks():
    g = SRResNet(1, 1, 2, width=4, n_blocks=2)
    assert sum(isinstance(m, torch.nn.PReLU) for m in g.modules()) == 1 + 2 + 1  # head, one per block, stage
    assert [m.kernel_size for m in (g.head[0], g.tail)] == [(9, 9), (9, 9)]
    d = SRDiscriminator(1, width=8, max_width=32)
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride[0]) for c in convs] == [(8, 1), (8, 2), (16, 1), (16, 2), (32, 1), (32, 2),
                                                                 (32, 1), (32, 2)]


def test_content_loss_matches_hand_computation():
    fam = build_family("srgan", TINY, spec((1, 4, 4), (1, 8, 8)))
    torch.manual_seed(1)
    sr, hr = torch.rand(4, 1, 8, 8) * 2 - 1, torch.rand(4, 1, 8, 8) * 2 - 1
    hand = sum(float(sr[n, 0, i, j] - hr[n, 0, i, j]) ** 2
               for n in range(4) for i in range(8) for j in range(8)) / (4 * 8 * 8)
    assert float(fam.content_loss(sr, hr, "mse")) == pytest.approx(hand, rel=1e-5)
    # features: MSE of scaled feature maps of a frozen network
    fam = build_family("srgan", {**TINY, "content": "features", "feature_scale": 0.5}, spec((1, 4, 4), (1, 8, 8)))
    with pytest.raises(ValueError, match="set_feature_net"):
        fam.content_loss(sr, hr)
    net = torch.nn.Conv2d(1, 3, 3, padding=1)
    fam.set_feature_net(net)
    assert not any(p.requires_grad for p in net.parameters())
    assert "_feature_net" not in "".join(fam.state_dict())  # not saved with the run
    with torch.no_grad():
        hand = ((0.5 * net(sr) - 0.5 * net(hr)) ** 2).mean()
    torch.testing.assert_close(fam.content_loss(sr, hr), hand)


@pytest.mark.parametrize("layer,n_modules", [("deep", 5), ("mid", 3)])
def test_build_run_gives_feature_content_its_network_without_the_cli(lowres_digits, tmp_path, layer, n_modules):
    cfg = run_cfg(1, {"content": "features", "content_layer": layer})
    fam = build_run(cfg, tmp_path, data=lowres_digits).family
    net, shipped = fam.feature_net, fashion_content_net(layer)
    assert len(net) == n_modules and not net.training and not any(p.requires_grad for p in net.parameters())
    for (k, v), (k2, v2) in zip(net.state_dict().items(), shipped.state_dict().items(), strict=True):
        assert k == k2
        torch.testing.assert_close(v, v2, rtol=0, atol=0)
    sr, hr = torch.rand(4, 1, 8, 8) * 2 - 1, torch.rand(4, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(fam.content_loss(sr, hr), F.mse_loss(shipped(sr), shipped(hr)))
    with pytest.raises(ValueError, match="content_layer must be one of deep, mid"):
        build_family("srgan", {**TINY, "content": "features", "content_layer": "top"}, spec((1, 4, 4), (1, 8, 8)))


def test_feature_content_on_colour_data_asks_for_a_network(lowres_digits, tmp_path):
    d = lowres_digits
    colour = TensorData(spec((3, 4, 4), (3, 8, 8)), d.x.expand(-1, 3, -1, -1).contiguous(), d.y, source="toy",
                        x_b=d.x_b.expand(-1, 3, -1, -1).contiguous())
    trainer = build_run(run_cfg(1, {"content": "features"}), tmp_path, data=colour)
    with pytest.raises(ValueError, match="reads grey images and these have 3 channels.*set_feature_net.*content=mse"):
        trainer.fit()  # asked before anything is written: the same --out can be used again
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(ValueError, match="reads grey images and these have 3 channels.*set_feature_net.*content=mse"):
        trainer.train_step()
    trainer.family.set_feature_net(torch.nn.Conv2d(3, 2, 3, padding=1))
    assert "g/content" in trainer.train_step()


def test_one_step_moves_g_and_d(lowres_digits, tmp_path):
    trainer = build_run(run_cfg(1), tmp_path, data=lowres_digits)
    before = {k: v.clone() for k, v in trainer.family.state_dict().items() if v.is_floating_point()}
    logs = trainer.train_step()
    after = trainer.family.state_dict()
    for net in ("G.", "D."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(net)), net
    for key in ("d/loss", "g/loss", "g/content", "g/adv", "d/real", "d/fake", "d/acc_real", "d/acc_fake"):
        assert key in logs
    # g/loss = content + 1e-3 * adv (the paper's weighting)
    assert logs["g/loss"] == pytest.approx(logs["g/content"] + 1e-3 * logs["g/adv"], rel=1e-5)


def test_mse_only_mode_never_trains_d(lowres_digits, tmp_path):
    trainer = build_run(run_cfg(3, {"adv_weight": 0.0}), tmp_path / "mse", data=lowres_digits)
    assert trainer.family.D is None and "d" not in trainer.optimizers
    trainer.fit()
    assert "d/loss" not in trainer.last_logs and trainer.last_logs["g/loss"] == trainer.last_logs["g/content"]
    # the MSE warm-up: D is built but frozen for the first mse_warmup_steps, then trains
    warm = build_run(run_cfg(4, {"mse_warmup_steps": 3}), tmp_path / "warm", data=lowres_digits)
    d0 = {k: v.clone() for k, v in warm.family.D.state_dict().items()}
    for step in range(3):
        assert warm.family.phases(step) == ("g",)
        logs = warm.train_step()
        assert "g/adv" not in logs
    for k, v in warm.family.D.state_dict().items():
        torch.testing.assert_close(v, d0[k], rtol=0, atol=0)
    logs = warm.train_step()
    assert "d/loss" in logs and "g/adv" in logs
    assert any(not torch.equal(v, d0[k]) for k, v in warm.family.D.state_dict().items())


def test_mse_training_beats_the_untrained_generator(lowres_digits, tmp_path):
    trainer = build_run(run_cfg(40, {"adv_weight": 0.0}, lr_g=2e-3), tmp_path, data=lowres_digits)
    lr, hr = lowres_digits.to_float(lowres_digits.x[:64]), lowres_digits.to_float(lowres_digits.x_b[:64])
    trainer.family.G.eval()
    before = float(F.mse_loss(trainer.family.translate(lr), hr))
    trainer.fit()
    trainer.family.G.eval()
    after = float(F.mse_loss(trainer.family.translate(lr), hr))
    assert after < 0.5 * before


def test_sampler_round_trip(lowres_digits, tmp_path):
    trainer = build_run(run_cfg(2), tmp_path, data=lowres_digits).fit()
    sampler = Sampler.from_checkpoint(tmp_path)
    assert sampler.is_translation and sampler.family.D is None  # generator only
    lr = lowres_digits.to_float(lowres_digits.x[:5])
    out = sampler.translate(lr)
    assert out.shape == (5, 1, 8, 8) and out.dtype == torch.float32
    G = trainer.generator.eval()
    with torch.no_grad():
        torch.testing.assert_close(out, G(lr))
    with pytest.raises(ValueError, match="generates from latents|translate"):
        sampler.generate(2)


@pytest.mark.parametrize("model", [{}, {"mse_warmup_steps": 3}])
def test_resume_is_bit_exact(lowres_digits, tmp_path, model):
    split_and_resume(lambda steps, out, resume: build_run(run_cfg(steps, model), out, resume=resume,
                                                          data=lowres_digits), tmp_path, 4)


def test_registered():
    assert FAMILIES["srgan"].needs == "paired" and FAMILIES["srgan"].directions == ("AtoB",)
