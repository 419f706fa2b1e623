"""Every family x every adversarial loss: one step per phase, sample shapes, save/load round trip."""

import math

import pytest
import torch

from ganforge.artifacts import Sampler
from ganforge.data import load_data
from ganforge.families import StepContext, build_family
from ganforge.losses import LOSSES
from ganforge.train import build_run

from .conftest import NOISE_FAMILIES, tiny_config

SOURCES = {"gan": "builtin:ring8", "dcgan": "builtin:digits", "cgan": "builtin:digits", "acgan": "builtin:digits",
           "infogan": "builtin:digits", "sgan": "builtin:digits",
           "fastgan": "builtin:digits", "stylegan": "builtin:digits",
           "progan": "builtin:digits", "gan-int-cls": "builtin:digits-captions",
           "stackgan": "builtin:digits-captions"}
BATCHNORM_D = ("dcgan", "cgan", "acgan", "infogan", "fastgan")


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("family", NOISE_FAMILIES)
def test_one_step_per_phase_with_every_loss(family, loss, tmp_path):
    model = {"loss": loss}
    if loss == "wgan-gp" and family in BATCHNORM_D:
        model["d_batchnorm"] = False
    cfg = tiny_config(family, SOURCES[family], steps=2, model=model)
    trainer = build_run(cfg, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.family.state_dict().items()}
    logs = trainer.train_step()
    assert math.isfinite(logs["d/loss"]) and math.isfinite(logs["g/loss"])
    after = trainer.family.state_dict()
    for prefix in ("G.", "D."):  # both players moved
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))
    if loss == "wgan":
        assert max(p.abs().max().item() for p in trainer.family.D.parameters()) <= trainer.family.cfg.clip_value
    if loss == "wgan-gp":
        assert "d/gp" in logs


@pytest.mark.parametrize("family", NOISE_FAMILIES)
def test_sample_shapes_and_checkpoint_round_trip(family, tmp_path):
    cfg = tiny_config(family, SOURCES[family], steps=3)
    trainer = build_run(cfg, tmp_path / "run").fit()
    spec = trainer.family.spec
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    x = sampler.generate(5, seed=11)
    assert x.shape == (5, *spec.shape)
    assert sampler.family.D is None  # generator only
    z = sampler.latents(5, seed=11)
    expected = trainer.family.sample(5, z=z, net=trainer.generator.eval())
    torch.testing.assert_close(x, expected)
    torch.testing.assert_close(sampler.generate(5, seed=11), x)  # same seed, same samples
    raw = Sampler.from_checkpoint(tmp_path / "run", ema=False)
    torch.testing.assert_close(raw.generate(5, seed=11), trainer.family.sample(5, z=z, net=trainer.family.G.eval()))


def test_n_critic_phases():
    spec = load_data("builtin:ring8").spec
    fam = build_family("gan", {"n_critic": 3}, spec)
    assert [fam.phases(s) for s in range(4)] == [("d", "g"), ("d",), ("d",), ("d", "g")]


def test_bad_family_options_name_the_fix():
    spec = load_data("builtin:ring8").spec
    for bad in ("1/2.828", 0, -0.5, float("nan"), True):  # e.g. a fraction typed in --set stays a string
        with pytest.raises(ValueError, match="model.d_input_scale must be a positive number"):
            build_family("gan", {"d_input_scale": bad}, spec)
    assert build_family("gan", {"d_input_scale": 0.354}, spec).D.input_scale == pytest.approx(0.354)
    with pytest.raises(ValueError, match="unknown gan option.*valid:"):
        build_family("gan", {"widht": 3}, spec)
    with pytest.raises(ValueError, match="label smoothing has no meaning"):
        build_family("gan", {"loss": "hinge", "label_smoothing": 0.1}, spec)
    with pytest.raises(ValueError, match="use --family gan"):
        build_family("dcgan", {}, spec)
    with pytest.raises(ValueError, match="choose one of: gan, dcgan, cgan, acgan, infogan, sgan"):
        build_family("stylegan9", {}, spec)


def test_one_generator_forward_per_step_and_a_correct_g_gradient(tmp_path):
    cfg = tiny_config("gan", "builtin:ring8", steps=3, model={"n_critic": 2})
    trainer = build_run(cfg, tmp_path)
    calls = []
    trainer.family.G.register_forward_hook(lambda m, i, o: calls.append(1))
    trainer.train_step()  # step 0: d and g, sharing the fakes
    assert len(calls) == 1
    trainer.train_step()  # step 1: d only
    assert len(calls) == 2
    # the G phase on shared fakes gives the same gradient as a fresh forward on the same z
    fam = trainer.family
    batch = trainer.loader.next_batch()
    torch.manual_seed(5)
    ctx = StepContext(0, fam.phases(0))
    fam.loss("d", batch, ctx)
    assert set(ctx.handoff) == {"fakes"}  # D hands its fakes (with G's graph) to G's phase ...
    shared = fam.loss("g", batch, ctx).loss
    assert ctx.handoff == {}  # ... which takes them
    (g_shared,) = torch.autograd.grad(shared, [fam.G.net[0].weight])
    torch.manual_seed(5)
    z = fam.noise(batch.size)
    fresh = fam.objective.g(fam.D(fam.G(z)).float())
    (g_fresh,) = torch.autograd.grad(fresh, [fam.G.net[0].weight])
    torch.testing.assert_close(g_shared, g_fresh)
