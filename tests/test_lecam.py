"""The LeCam regulariser (Tseng et al. 2021) of the adversarial families' D phase (families/base.py):
its closed form with bias-corrected moving averages, its place in D's loss, resume and bad options."""

import inspect
import math

import pytest
import torch

from ganforge.data.spec import Batch, DataSpec
from ganforge.families import FAMILIES, build_family
from ganforge.families.base import AdversarialFamily
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config

SPEC = DataSpec("image", (1, 8, 8))


def test_closed_form_with_bias_corrected_averages():
    fam = build_family("dcgan", {"width": 8, "lecam_weight": 0.3, "lecam_decay": 0.9}, SPEC)
    r1, f1 = torch.tensor([2.0, -1.0, 0.5, 3.0]), torch.tensor([-2.0, 0.5, -1.5, 0.0])
    # first step: the corrected averages are this step's means exactly
    want1 = (torch.relu(r1 - f1.mean()).square().mean() + torch.relu(r1.mean() - f1).square().mean())
    torch.testing.assert_close(fam.lecam(r1, f1), want1)
    r2, f2 = torch.tensor([1.0, 4.0, -0.5, 0.5]), torch.tensor([0.5, -3.0, 1.0, -0.5])
    # second: 0.9 * 0.1 * m1 + 0.1 * m2, corrected by 1 - 0.9^2
    avg_r = (0.09 * r1.mean() + 0.1 * r2.mean()) / 0.19
    avg_f = (0.09 * f1.mean() + 0.1 * f2.mean()) / 0.19
    want2 = torch.relu(r2 - avg_f).square().mean() + torch.relu(avg_r - f2).square().mean()
    torch.testing.assert_close(fam.lecam(r2, f2), want2)
    assert int(fam.lecam_seen) == 2


def test_gradient_pulls_only_the_outputs_beyond_the_other_sides_average():
    fam = build_family("dcgan", {"width": 8, "lecam_weight": 1.0}, SPEC)
    real = torch.tensor([3.0, -2.0], requires_grad=True)   # mean 0.5
    fake = torch.tensor([-3.0, 2.0], requires_grad=True)   # mean -0.5
    gr, gf = torch.autograd.grad(fam.lecam(real, fake), (real, fake))
    # real 3.0 is above the fakes' average (-0.5): pushed down, d/dr (r + 0.5)^2 / 2 = 3.5; -2.0 is below: untouched
    torch.testing.assert_close(gr, torch.tensor([3.5, 0.0]))
    # fake -3.0 is below the reals' average (0.5): pushed up; 2.0 is above it: untouched
    torch.testing.assert_close(gf, torch.tensor([-3.5, 0.0]))


def test_d_loss_is_the_adversarial_loss_plus_the_weighted_term():
    torch.manual_seed(0)
    with_lc = build_family("dcgan", {"width": 8, "lecam_weight": 0.5}, SPEC)
    plain = build_family("dcgan", {"width": 8}, SPEC)
    plain.load_state_dict({k: v for k, v in with_lc.state_dict().items() if not k.startswith("lecam_")})
    real = torch.rand(6, 1, 8, 8) * 2 - 1
    torch.manual_seed(1)
    a = with_lc.loss("d", Batch(real))
    torch.manual_seed(1)
    b = plain.loss("d", Batch(real))
    assert "d/lecam" in a.logs and "d/lecam" not in b.logs
    assert a.logs["d/lecam"].item() > 0
    torch.testing.assert_close(a.loss, b.loss + 0.5 * a.logs["d/lecam"])
    torch.testing.assert_close(a.logs["d/adv"], b.logs["d/adv"])
    g = with_lc.loss("g", Batch(real))  # G's loss has no LeCam term, and does not move the averages
    assert "d/lecam" not in g.logs and int(with_lc.lecam_seen) == 1


def test_resume_is_bit_exact_with_the_averages_in_the_checkpoint(tmp_path):
    def make(steps, out, resume):
        cfg = tiny_config("fastgan", steps=steps, model={"lecam_weight": 0.3, "patch_loss": True},
                          train={"augment": "diffaugment"}, log={"ckpt_every": 2})
        return build_run(cfg, out, resume=resume)

    full, resumed = split_and_resume(make, tmp_path, 2)  # compares every family buffer, the averages included
    assert int(full.family.lecam_seen) == int(resumed.family.lecam_seen) == 4
    assert math.isfinite(full.last_logs["d/lecam"])
    assert bool((full.family.lecam_avg != 0).all())


def test_bad_options_name_the_fix():
    with pytest.raises(ValueError, match="lecam_weight must be >= 0"):
        build_family("dcgan", {"width": 8, "lecam_weight": -0.1}, SPEC)
    with pytest.raises(ValueError, match=r"lecam_decay in \(0, 1\)"):
        build_family("dcgan", {"width": 8, "lecam_weight": 0.3, "lecam_decay": 1.0}, SPEC)
    captioned = DataSpec("image", (3, 16, 16), text_dim=8)  # gan-int-cls: a D phase of its own
    with pytest.raises(ValueError, match="does not implement the LeCam regulariser; set model.lecam_weight=0"):
        build_family("gan-int-cls", {"width": 8, "latent_dim": 8, "proj_dim": 8, "d_hidden": 16,
                                     "lecam_weight": 0.3}, captioned)


@pytest.mark.parametrize("before, after", [(0.0, 0.3), (0.3, 0.0)])
def test_resume_may_turn_lecam_on_or_off(tmp_path, before, after):
    def make(steps, weight, resume):
        cfg = tiny_config("dcgan", steps=steps, model={"lecam_weight": weight}, log={"ckpt_every": 2})
        return build_run(cfg, tmp_path / "run", resume=resume)

    make(2, before, False).fit()
    resumed = make(4, after, True)  # strict loading would refuse the checkpoint's extra or missing averages
    assert resumed.step == 2
    resumed.fit()
    assert hasattr(resumed.family, "lecam_seen") == (after > 0)
    if after > 0:
        assert int(resumed.family.lecam_seen) == 2  # a fresh start at the resume: steps 3 and 4
        assert math.isfinite(resumed.last_logs["d/lecam"])


def test_every_family_either_runs_the_shared_d_phase_or_refuses_lecam():
    for name, cls in FAMILIES.items():
        if not issubclass(cls, AdversarialFamily) or not cls.lecam_supported:
            continue
        # the nearest class that defines loss() must reach AdversarialFamily.loss through super()
        owner = next(k for k in cls.__mro__ if "loss" in vars(k))
        assert owner is AdversarialFamily or "super().loss" in inspect.getsource(owner.loss), name


def test_sgan_supervised_baseline_refuses_lecam():
    spec = DataSpec("image", (1, 8, 8), n_classes=3)
    with pytest.raises(ValueError, match="supervised_only .* set model.lecam_weight=0"):
        build_family("sgan", {"hidden": 32, "depth": 2, "latent_dim": 8, "d_hidden": [32, 16],
                              "supervised_only": True, "lecam_weight": 0.3}, spec)
