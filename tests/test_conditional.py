"""Conditional families (cgan, acgan): labels reach G and D, every D mode trains, sampling by class, errors."""

import math

import pytest
import torch

from ganforge.artifacts import Sampler
from ganforge.data import load_data
from ganforge.families import build_family
from ganforge.train import build_run

from .conftest import tiny_config


@pytest.mark.parametrize("model", [
    {"projection": False},
    {"projection": True},
    {"arch": "mlp", "hidden": 32, "depth": 2},
    {"arch": "mlp", "hidden": 32, "depth": 2, "projection": True, "loss": "hinge"},
])
def test_every_backbone_and_d_mode_trains_and_uses_the_label(model, tmp_path):
    trainer = build_run(tiny_config("cgan", "builtin:digits", steps=2, model=model), tmp_path / "run")
    logs = trainer.train_step()
    assert math.isfinite(logs["d/loss"]) and math.isfinite(logs["g/loss"])
    fam = trainer.family.eval()
    z = fam.noise(4, generator=torch.Generator().manual_seed(0))
    a, b = fam.sample(4, z=z, y=[0, 1, 2, 3]), fam.sample(4, z=z, y=[5, 6, 7, 8])
    assert a.shape == (4, 1, 8, 8)
    assert not torch.allclose(a, b)  # G reads the label
    x = load_data("builtin:digits").x[:4].float() / 127.5 - 1
    with torch.no_grad():
        d0, d1 = fam.D(x, torch.tensor([0, 1, 2, 3])), fam.D(x, torch.tensor([4, 4, 4, 4]))
    assert d0.shape == (4,) and not torch.allclose(d0, d1)  # and so does D


def test_default_labels_cycle_through_the_classes_and_int_labels_broadcast(tmp_path):
    trainer = build_run(tiny_config("cgan", "builtin:digits", steps=1), tmp_path / "run").fit()
    fam = trainer.family
    assert fam.labels(12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert fam.labels(3, 7).tolist() == [7, 7, 7]
    z = fam.noise(3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(fam.sample(3, z=z, y=7), fam.sample(3, z=z, y=[7, 7, 7]))
    with pytest.raises(ValueError, match="class 10 does not exist.*10 classes: 0=0"):
        fam.sample(2, y=10)
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    assert sampler.generate(3, seed=2).shape == (3, 1, 8, 8)


def test_unlabelled_data_is_an_error_that_names_the_fix():
    spec = load_data("builtin:ring8").spec
    with pytest.raises(ValueError, match="needs labelled data.*class sub-folders"):
        build_family("cgan", {}, spec)
    with pytest.raises(ValueError, match="arch must be auto, dcgan or mlp"):
        build_family("cgan", {"arch": "resnet"}, load_data("builtin:digits").spec)


def test_sample_cli_by_class(tmp_path, capsys):
    from ganforge.cli.main import main

    build_run(tiny_config("cgan", "builtin:digits", steps=1), tmp_path / "run").fit()
    assert main(["sample", "--ckpt", str(tmp_path / "run"), "--class", "all", "--n", "3",
                 "--out", str(tmp_path / "all.npy")]) == 0
    import numpy as np

    every = np.load(tmp_path / "all.npy")
    assert every.shape == (30, 1, 8, 8)
    assert main(["sample", "--ckpt", str(tmp_path / "run"), "--class", "4", "--n", "3",
                 "--out", str(tmp_path / "four.npy")]) == 0
    # --class K gives what the K-th row of --class all gives for the same seed's latents
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    z = sampler.latents(3, 0)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "four.npy")), sampler.generate(3, z=z, y=4))
    capsys.readouterr()
    assert main(["sample", "--ckpt", str(tmp_path / "run"), "--class", "12", "--out", str(tmp_path / "x.png")]) == 2
    assert "not a class of this model" in capsys.readouterr().err
    build_run(tiny_config("dcgan", "builtin:digits", steps=1), tmp_path / "plain").fit()
    assert main(["sample", "--ckpt", str(tmp_path / "plain"), "--class", "1", "--out", str(tmp_path / "y.png")]) == 2
    assert "needs a conditional family" in capsys.readouterr().err


def test_acgan_losses_are_the_adversarial_ones_plus_the_class_cross_entropy(tmp_path):
    from ganforge.data import Batch

    spec = load_data("builtin:digits").spec
    x = load_data("builtin:digits").x[:16].float() / 127.5 - 1
    y = load_data("builtin:digits").y[:16]
    batch = Batch(x, y)
    for on_fakes in (False, True):
        _check_acgan_losses(spec, batch, x, y, on_fakes)
    with pytest.raises(ValueError, match="projection has no meaning"):
        build_family("acgan", {"projection": True}, spec)


def _check_acgan_losses(spec, batch, x, y, on_fakes):
    import torch.nn.functional as F

    torch.manual_seed(0)
    fam = build_family("acgan", {"width": 8, "latent_dim": 8, "aux_weight": 0.7, "aux_on_fakes": on_fakes}, spec)
    fam.phases(1)  # no shared fakes: each phase draws its own
    for phase in ("d", "g"):
        torch.manual_seed(3)
        out = fam.loss(phase, batch)
        torch.manual_seed(3)
        fake, y_fake = fam.generate(16)
        if phase == "d":
            (adv_r, cls_r), (adv_f, cls_f) = fam.D(x), fam.D(fake)
            adv = fam.objective.d(adv_r, adv_f, 1.0)
            ce = F.cross_entropy(cls_r, y) + (F.cross_entropy(cls_f, y_fake) if on_fakes else 0.0)
        else:
            adv_f, cls_f = fam.D(fake)
            adv, ce = fam.objective.g(adv_f), F.cross_entropy(cls_f, y_fake)
        torch.testing.assert_close(out.loss, adv + 0.7 * ce)
        assert out.logs[f"{phase}/cls"] == pytest.approx(float(ce.detach()), rel=1e-5)


def test_spread_is_the_mean_per_dimension_std_across_the_batch():
    from ganforge.families.base import spread

    x = torch.randn(16, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 3, 75).view(3, 5, 5)
    assert float(spread(x)) == pytest.approx(float(x.flatten(1).std(0).mean()), rel=1e-5)
    assert float(spread(x.to(torch.bfloat16))) == pytest.approx(float(x.to(torch.bfloat16).float().flatten(1).std(0).mean()), rel=1e-5)
    assert float(spread(torch.ones(4, 2) * 7)) == 0.0


def test_class_spread_sees_a_g_that_ignores_z_and_the_monitor_warns():
    from ganforge.families.base import class_spread
    from ganforge.train.health import HealthMonitor

    y = torch.tensor([0, 0, 1, 1, 2])
    x = torch.tensor([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    # class 0: std per dim sqrt(2); class 1: 0; class 2 has one sample and is skipped
    assert float(class_spread(x, y)) == pytest.approx(2 ** 0.5 / 2)
    assert class_spread(x[:1], y[:1]) is None  # no class with two samples: no figure rather than NaN
    one_per_class = torch.tensor([[0.0], [0.0], [3.0], [3.0]])
    assert float(class_spread(one_per_class, torch.tensor([0, 0, 1, 1]))) == 0.0

    cfg = tiny_config().health

    class Events:
        events = []

        def event(self, kind, message):
            self.events.append(message)

    mon, tr = HealthMonitor(cfg), Events()
    logs = {"stats/real_spread": 1.0, "stats/fake_spread": 0.9,            # the batch still varies ...
            "stats/real_class_spread": 0.8, "stats/fake_class_spread": 0.01}  # ... but not within a class
    for _ in range(cfg.window + 5):
        mon.on_step_end(tr, 10_000, dict(logs))
    assert len(tr.events) == 1 and "within classes" in tr.events[0]


def test_a_conditional_run_logs_the_class_spreads(tmp_path):
    trainer = build_run(tiny_config("cgan", "builtin:digits", steps=1, train={"steps": 1, "batch_size": 32}),
                        tmp_path / "run")
    logs = trainer.train_step()
    assert logs["stats/real_class_spread"] > 0 and logs["stats/fake_class_spread"] >= 0
