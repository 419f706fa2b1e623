"""Domain adaptation: the gradient-reversal layer, lambda's schedule, the built-in target domains, and a dann run
measured as a classifier."""

import math

import pytest
import torch

from ganforge.artifacts import Classifier, Sampler
from ganforge.data import load_builtin
from ganforge.data.domains import emoji_patches, gaussian_blur_uint8
from ganforge.families import build_family
from ganforge.families.dann import reverse_gradient
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config


@pytest.mark.parametrize("lam", [0.0, 0.3, 2.0])
def test_gradient_reversal_backward_is_minus_lambda_times_the_incoming_gradient(lam):
    x = torch.randn(4, 5, requires_grad=True)
    y = reverse_gradient(x, lam)
    torch.testing.assert_close(y, x)  # identity forward
    upstream = torch.randn(4, 5)
    y.backward(upstream)
    torch.testing.assert_close(x.grad, -lam * upstream)


def test_lambda_schedule_is_ganins():
    spec = load_builtin("digits").spec
    fam = build_family("dann", {"domain_weight": 0.5, "schedule_steps": 100}, spec)
    assert fam.lam(0) == 0.0
    assert fam.lam(50) == pytest.approx(0.5 * (2 / (1 + math.exp(-5)) - 1))
    assert fam.lam(10_000) == pytest.approx(0.5 * (2 / (1 + math.exp(-10)) - 1))
    assert build_family("dann", {"schedule": "constant"}, spec).lam(3) == 1.0


def test_target_domains():
    src = load_builtin("fashion-mnist", split="test")
    inv = load_builtin("fashion-mnist-inverted", split="test")
    assert torch.equal(inv.x, 255 - src.x) and torch.equal(inv.y, src.y)
    m = load_builtin("fashion-mnist-m", split="test")
    patch = emoji_patches(len(src.x), 28, "test", seed=1).to(torch.int16)
    assert m.x.shape == (10000, 3, 28, 28)
    assert torch.equal(m.x.to(torch.int16), (patch - src.x.to(torch.int16)).abs())  # |patch - item|, per channel
    assert torch.equal(load_builtin("fashion-mnist-m", split="test").x, m.x)  # deterministic
    blur = load_builtin("fashion-mnist-blurred", split="test")
    assert abs(blur.x.float().mean() - src.x.float().mean()) < 0.02 * src.x.float().mean()  # mean kept (up to borders)
    flat = torch.full((1, 1, 9, 9), 77, dtype=torch.uint8)
    assert torch.equal(gaussian_blur_uint8(flat, 1.5), flat)
    assert blur.x.float().diff(dim=-1).abs().mean() < src.x.float().diff(dim=-1).abs().mean()  # smoother


def test_dann_trains_and_is_measured_as_a_classifier(tmp_path):
    cfg = tiny_config("dann", "builtin:digits", steps=4, model={"target": "builtin:digits", "width": 4,
                                                               "feature_dim": 8, "d_hidden": 8, "schedule_steps": 2})
    trainer = build_run(cfg, tmp_path / "run").fit()
    assert not (tmp_path / "run" / "samples").exists()
    clf = Classifier.from_checkpoint(tmp_path / "run")
    data = load_builtin("digits", size=(8, 8))
    res = clf.evaluate(data)
    assert 0.0 <= res["accuracy"] <= 1.0
    torch.testing.assert_close(clf.logits(data.to_float(data.x[:5])),
                               trainer.family.eval().classify(data.to_float(data.x[:5])).float())
    with pytest.raises(ValueError, match="draws no samples"):
        Sampler.from_checkpoint(tmp_path / "run")


def test_dann_resume_is_bit_exact(tmp_path):
    def make(steps, out, resume):
        cfg = tiny_config("dann", "builtin:digits", steps=steps,
                          model={"target": "builtin:digits", "width": 4, "feature_dim": 8, "d_hidden": 8})
        return build_run(cfg, out, resume=resume)

    split_and_resume(make, tmp_path, 2)


def test_dann_names_a_missing_target():
    with pytest.raises(ValueError, match="model.target"):
        build_family("dann", {"target": ""}, load_builtin("digits").spec)
