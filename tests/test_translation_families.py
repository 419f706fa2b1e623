"""Every image-to-image family on the one trainer: one step per phase with every loss it allows, translation
shapes, the checkpoint round trip, and ONNX parity where the generator is one network."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.artifacts import Sampler
from ganforge.data.builtin import digits
from ganforge.data.spec import DataSpec
from ganforge.data.store import TensorData
from ganforge.families import FAMILIES
from ganforge.families.translation import TranslationFamily
from ganforge.train import build_run

from .conftest import tiny_config

TRANSLATION = sorted(f for f, cls in FAMILIES.items() if issubclass(cls, TranslationFamily))
TINY = {
    "pix2pix": {"width": 8, "max_width": 16, "d_width": 8},
    "cyclegan": {"width": 8, "d_width": 8, "n_blocks": 1, "pool_size": 4},
    "discogan": {"width": 8, "d_width": 8},
    "stargan": {"width": 8, "d_width": 8, "n_res": 1, "n_critic": 1},
    "srgan": {"width": 8, "n_blocks": 1, "d_width": 8, "d_max_width": 16, "d_hidden": 16, "adv_weight": 1e-3},
}


def tiny_data(family: str) -> TensorData:
    """16x16 digits arranged the way the family needs them."""
    base = digits(size=(16, 16))
    x, y = base.x[:96], base.y[:96]
    needs = FAMILIES[family].needs
    if needs == "labelled":  # three domains: digits 0, 1, 2
        keep = y < 3
        spec = DataSpec("image", (1, 16, 16), 3, ("zero", "one", "two"), "digits-3")
        return TensorData(spec, x[keep], y[keep])
    if family == "srgan":  # 8x8 -> 16x16
        small = F.avg_pool2d(x.float(), 2).round().to(torch.uint8)
        spec = DataSpec("image", (1, 8, 8), name="digits-x2", shape_b=(1, 16, 16), pairing="paired",
                        domains=("8x8", "16x16"))
        return TensorData(spec, small, y, x_b=x)
    pairing = "unpaired" if needs == "unpaired" else "paired"
    spec = DataSpec("image", (1, 16, 16), name="digits-inverted", shape_b=(1, 16, 16), pairing=pairing,
                    domains=("digit", "inverted"))
    return TensorData(spec, x, y, x_b=255 - x)


def _run(family: str, path, steps: int = 2, **model):
    cfg = tiny_config(family, "builtin:digits", steps=steps, model={**TINY[family], **model})
    cfg = dataclasses.replace(cfg, model={**TINY[family], **model})
    return build_run(cfg, path, data=tiny_data(family))


NO_CRITIC_LOSSES = ("cyclegan", "discogan", "srgan")  # the (log-)likelihood and hinge losses only


def _losses(family: str) -> list[str]:
    fields = {f.name: f.default for f in dataclasses.fields(FAMILIES[family].Config)}
    if "loss" not in fields:
        return [None]
    return ["ns", "lsgan", "hinge"] + ([] if family in NO_CRITIC_LOSSES else ["wgan-gp"])


@pytest.mark.parametrize("family", NO_CRITIC_LOSSES)
def test_critic_losses_are_refused_by_name(family):
    cls = FAMILIES[family]
    spec = tiny_data(family).spec
    with pytest.raises(ValueError, match="ns, minimax, lsgan.*wgan-gp|minimax, ns, lsgan.*wgan-gp"):
        cls(cls.make_config({**TINY[family], "loss": "wgan-gp"}), spec)


@pytest.mark.parametrize("family,loss", [(f, loss) for f in TRANSLATION for loss in _losses(f)])
def test_one_step_per_phase_moves_both_players(family, loss, tmp_path):
    model = {} if loss is None else {"loss": loss}
    if loss == "wgan-gp" and "d_norm" in {f.name for f in dataclasses.fields(FAMILIES[family].Config)}:
        model["d_norm"] = "instance"
    trainer = _run(family, tmp_path / "run", **model)
    before = {k: v.clone() for k, v in trainer.family.state_dict().items()}
    logs = trainer.train_step()
    assert math.isfinite(logs["g/loss"]) and math.isfinite(logs["d/loss"])
    after = trainer.family.state_dict()
    for prefix in ("G.", "D."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix


@pytest.mark.parametrize("family", TRANSLATION)
def test_translate_shapes_and_checkpoint_round_trip(family, tmp_path):
    trainer = _run(family, tmp_path / "run", steps=3).fit()
    fam = trainer.family
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    assert sampler.is_translation and sampler.family.D is None
    x = trainer.data.to_float(trainer.data.x[:5])
    for direction in fam.directions:
        domain = 1 if family == "stargan" else None
        got = sampler.translate(x, direction, domain)
        assert got.shape == (5, *fam.out_shape)
        assert got.min() >= -1 and got.max() <= 1  # tanh output
        want = fam.translate(x, direction, domain, net=trainer.generator.eval())
        torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="translate"):
        sampler.generate(4, seed=0)
    preview = fam.sample(4, generator=torch.Generator().manual_seed(0), net=trainer.generator)
    assert preview.shape == (4, *fam.out_shape)


@pytest.mark.parametrize("family", TRANSLATION)
def test_onnx_parity_where_the_generator_is_one_network(family, tmp_path):
    pytest.importorskip("onnxruntime")
    from ganforge.artifacts import onnx as gonnx

    _run(family, tmp_path / "run").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    result = gonnx.export_onnx(sampler, tmp_path / "g.onnx")
    assert result.max_abs_diff <= 1e-4
    info = gonnx.read_info(tmp_path / "g.onnx")
    assert info["family"] == family


@pytest.mark.parametrize("family", TRANSLATION)
def test_wrong_data_gets_an_error_that_names_the_fix(family):
    cls = FAMILIES[family]
    one_domain = DataSpec("image", (1, 16, 16), name="plain")
    with pytest.raises(ValueError, match="needs"):
        cls(cls.make_config(TINY[family]), one_domain)


def test_srgan_feature_content_from_the_cli_uses_the_shipped_classifier(tmp_path):
    from ganforge.cli.main import main

    run = tmp_path / "run"
    argv = ["train", "--data", "builtin:fmnist-lowres", "--family", "srgan", "--steps", "2", "--batch-size", "4",
            "--set", "model.content=features", "--set", "model.width=8", "--set", "model.n_blocks=1",
            "--set", "model.d_width=8", "--set", "model.d_max_width=16", "--set", "model.d_hidden=16",
            "--set", "log.log_every=1",
            "--out", str(run), "--quiet"]
    assert main(argv) == 0
    logs = [line for line in (run / "log.jsonl").read_text().splitlines() if '"g/content"' in line]
    assert logs  # trained with a content term from the feature network
    assert Sampler.from_checkpoint(run).translate(torch.zeros(2, 1, 7, 7)).shape == (2, 1, 28, 28)
