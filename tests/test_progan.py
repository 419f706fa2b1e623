"""ProGAN (Karras et al. 2018): level sizes, the fade-in blends' closed forms, the images-shown schedule,
equalized learning rate, the minibatch std, the drift term, augmentation and a resume mid-fade-in."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.data.spec import Batch, DataSpec
from ganforge.families import build_family
from ganforge.nn.progan import EqualizedConv2d, EqualizedLinear, MinibatchStd, pool2, progan_levels, up2
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config

TINY = {"width": 2, "max_width": 4, "latent_dim": 4}


def _family(shape, **model):
    return build_family("progan", {**TINY, **model}, DataSpec("image", shape, name="t"))


@pytest.mark.parametrize("shape, levels", [
    ((1, 100, 100), [(7, 7), (13, 13), (25, 25), (50, 50), (100, 100)]),
    ((3, 96, 64), [(6, 4), (12, 8), (24, 16), (48, 32), (96, 64)]),
    ((1, 28, 28), [(7, 7), (14, 14), (28, 28)]),
    ((1, 8, 8), [(4, 4), (8, 8)]),
])
def test_every_level_trains_at_its_size_and_samples_at_the_target(shape, levels):
    c, h, w = shape
    assert list(progan_levels(h, w)) == levels
    n = len(levels) - 1
    assert levels == [(math.ceil(h / 2 ** (n - lv)), math.ceil(w / 2 ** (n - lv))) for lv in range(n + 1)]
    assert min(levels[0]) >= 4 and (n == 0 or min(levels[0]) < 8)
    torch.manual_seed(0)
    fam = _family(shape)
    real = torch.rand(2, *shape) * 2 - 1
    pooled = [real]
    for _ in range(n):
        pooled.insert(0, pool2(pooled[0]))
    assert [tuple(p.shape[-2:]) for p in pooled] == levels  # each level is the target pooled n - level times
    z = fam.noise(2)
    with torch.no_grad():
        for lv in range(n + 1):
            for alpha in ((1.0,) if lv == 0 else (0.4, 1.0)):
                fam.G.set_progress(lv, alpha)
                stage = fam.G(z, full=False)
                assert stage.shape == (2, c, *levels[lv])
                assert fam.stage_reals(real).shape == stage.shape
                assert fam.D(stage, fam.G.alpha if alpha < 1 else None).shape == (2,)
                full = fam.sample(2, z=z)
                assert full.shape == (2, *shape)
                f = 2 ** (n - lv)  # sampling: the level's images, nearest-upsampled to the target
                rows, cols = torch.arange(h) // f, torch.arange(w) // f
                torch.testing.assert_close(full, stage[:, :, rows][:, :, :, cols], rtol=0, atol=0)


def test_fade_in_blends_have_their_closed_form():
    torch.manual_seed(1)
    fam = _family((1, 16, 16))  # levels 4, 8, 16
    G, D = fam.G, fam.D
    z, x = fam.noise(4), torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        G.set_progress(1, 1.0)
        coarse, fine_old = G(z, full=False), D(pool2(x))
        G.set_progress(2, 1.0)
        new = G(z, full=False)
        G.set_progress(2, 0.0)
        for p in (*G.blocks[1].parameters(), *G.to_rgb[2].parameters()):
            p.add_(torch.randn_like(p))  # at alpha 0 the new level does not reach the output ...
        torch.testing.assert_close(G(z, full=False), up2(coarse, (16, 16)), rtol=0, atol=0)
        G.set_progress(1, 0.0)
        for p in (*D.blocks[0].parameters(), *D.from_rgb[1].parameters()):
            p.add_(torch.randn_like(p))  # ... nor D's score: D(x) at level 1, alpha 0 = D(pool(x)) at level 0
        torch.testing.assert_close(D(x, G.alpha), D(pool2(x)))
        fam.G.set_progress(1, 1.0)
        torch.testing.assert_close(D(pool2(x)), fine_old)
        # alpha 0.25: G's output is (1 - a) * up(old level) + a * new level
        for p in (*G.blocks[1].parameters(), *G.to_rgb[2].parameters()):
            p.zero_()
        G.set_progress(2, 1.0)
        new = G(z, full=False)
        G.set_progress(2, 0.25)
        torch.testing.assert_close(G(z, full=False), 0.75 * up2(coarse, (16, 16)) + 0.25 * new)
        # the reals fade alike: at alpha a, a * x + (1 - a) * up(pool(x)) at the level's size
        real = torch.randn(4, 1, 16, 16)
        torch.testing.assert_close(fam.stage_reals(real), 0.25 * real + 0.75 * up2(pool2(real), (16, 16)))


def test_schedule_counts_images_shown_by_the_d_phase():
    # stable 32 images, fade-in 48, batch 16: level 0 at steps 0-1, level 1 fades in over steps 2-4
    # (alpha 0, 1/3, 2/3) and is in from step 5 (80 images), level 2 fades in from step 7 (2*32 + 48 = 112)
    # and is in from step 10 (2 * (32 + 48) = 160)
    fam = _family((1, 16, 16), loss="hinge", stable_kimg=0.032, fade_kimg=0.048)
    batch = Batch(torch.rand(16, 1, 16, 16) * 2 - 1)
    seen = []
    with torch.no_grad():
        for _ in range(12):
            logs = fam.loss("d", batch).logs
            seen.append((int(logs["progan/level"]), logs["progan/alpha"], int(logs["progan/resolution"]),
                         fam.stage_changed))
    want_alpha = [1, 1, 0, 1 / 3, 2 / 3, 1, 1, 0, 1 / 3, 2 / 3, 1, 1]
    assert [s[0] for s in seen] == [0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert [s[1] for s in seen] == pytest.approx(want_alpha)
    assert [s[2] for s in seen] == [4, 4, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16]
    assert [k for k, s in enumerate(seen) if s[3]] == [2, 5, 7, 10]
    assert [(b.level, b.fading, b.images, b.step) for b in fam.stage_boundaries(16)] == [
        (0, False, 0, 0), (1, True, 32, 2), (1, False, 80, 5), (2, True, 112, 7), (2, False, 160, 10)]
    assert int(fam.state_dict()["images_shown"]) == 12 * 16
    # two processes with 8 samples each count the global batch: the same schedule
    two = _family((1, 16, 16), loss="hinge", stable_kimg=0.032, fade_kimg=0.048)
    two.shard = (1, 2)
    with torch.no_grad():
        for k in range(6):
            two.loss("d", Batch(batch.x[:8]))
            assert two.progress == pytest.approx((seen[k][0], seen[k][1]))
    with pytest.raises(ValueError, match="fade_kimg must be a finite number >= 0"):
        _family((1, 8, 8), fade_kimg=-1)


def test_equalized_lr_scales_unit_normal_weights_at_run_time():
    torch.manual_seed(2)
    conv, lin = EqualizedConv2d(6, 5, 3), EqualizedLinear(40, 7)
    torch.testing.assert_close(conv.effective_weight, conv.weight * math.sqrt(2 / (6 * 9)))
    torch.testing.assert_close(lin.effective_weight, lin.weight * math.sqrt(2 / 40))
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * math.sqrt(2 / 54), conv.bias, padding=1))
    assert torch.cat([conv.weight.flatten(), lin.weight.flatten()]).std().item() == pytest.approx(1, abs=0.1)
    # the stored weight's gradient is the effective weight's, scaled: Adam's per-weight steps become equal in
    # effect whatever the fan-in
    conv(x).sum().backward()
    weff = conv.effective_weight.detach().requires_grad_(True)
    F.conv2d(x, weff, conv.bias, padding=1).sum().backward()
    torch.testing.assert_close(conv.weight.grad, weff.grad * math.sqrt(2 / 54))


def test_minibatch_std_appends_the_mean_std_over_each_group():
    torch.manual_seed(3)
    x = torch.randn(6, 3, 4, 4)
    whole = MinibatchStd(group_size=8)(x)  # the batch of 6 is one group
    assert whole.shape == (6, 4, 4, 4)
    torch.testing.assert_close(whole[:, :3], x, rtol=0, atol=0)
    want = (x.var(0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(whole[:, 3], want.expand(6, 4, 4))
    pairs = MinibatchStd(group_size=2)(x)  # groups {0, 3}, {1, 4}, {2, 5}: sample i in group i mod 3
    for i in range(6):
        g = x[[i % 3, i % 3 + 3]]
        torch.testing.assert_close(pairs[i, 3], ((g.var(0, unbiased=False) + 1e-8).sqrt().mean()).expand(4, 4))
    assert MinibatchStd(group_size=0)(x) is x


def test_d_loss_is_wgan_gp_plus_the_drift_term():
    fam = _family((1, 8, 8), stable_kimg=0, fade_kimg=0)
    assert (fam.cfg.loss, fam.cfg.drift, fam.cfg.n_critic, fam.cfg.gp_weight) == ("wgan-gp", 0.001, 1, 10.0)
    batch = Batch(torch.rand(8, 1, 8, 8) * 2 - 1)
    torch.manual_seed(4)
    with_drift = fam.loss("d", batch)
    fam.cfg.drift = 0.0
    torch.manual_seed(4)
    without = fam.loss("d", batch)
    d_real = fam.D(batch.x).float()
    torch.testing.assert_close(with_drift.loss - without.loss, 0.001 * d_real.pow(2).mean())
    torch.testing.assert_close(with_drift.logs["d/drift"], d_real.pow(2).mean().detach())
    assert {"d/gp", "d/acc_real", "d/rt", "stats/real_spread", "stats/fake_spread"} <= with_drift.logs.keys()


def test_every_image_d_sees_is_augmented_at_the_level_size(tmp_path):
    trainer = build_run(tiny_config("progan", steps=3), tmp_path)
    seen = []
    trainer.family.augment = lambda x: (seen.append(tuple(x.shape)), x)[1]
    trainer.train_step()  # level 0 (4x4): D's real and fake batches, then G's fakes
    assert seen == [(16, 1, 4, 4)] * 3


def test_a_run_resumes_bit_exact_mid_fade_in(tmp_path):
    # digits (8x8: levels 4, 8), batch 16, no stable phase at level 0: level 1 fades in over steps 0-1 (alpha 0,
    # 0.5) and is in from step 2; the split run stops after step 1, at alpha 0.5
    resumed_at = []

    def make(steps, out, resume):
        trainer = build_run(tiny_config("progan", steps=steps, model={"stable_kimg": 0.0}), out, resume=resume)
        if resume:
            resumed_at.append((int(trainer.family.images_shown), trainer.family.progress))
        return trainer

    full, resumed = split_and_resume(make, tmp_path, 2)
    assert resumed_at == [(32, (1, 0.5))]  # the checkpoint after step 1 is mid-fade-in
    assert full.last_logs["progan/level"] == 1 and full.last_logs["progan/alpha"] == 1.0
    assert resumed.last_logs["progan/alpha"] == full.last_logs["progan/alpha"]
    assert resumed.ema.module.progress() == (1, 1.0)  # the EMA's copy follows G's buffers


def test_stage_swd_is_measured_at_each_stage_end(tmp_path):
    """The StageSWD callback (added by `ganforge train` for families that grow) logs SWD per pyramid level at
    every stage change and at the end, as events and as swd/* values."""
    from ganforge.metrics.callback import StageSWD

    cfg = tiny_config("progan", "builtin:digits", steps=12, model={"stable_kimg": 0.048, "fade_kimg": 0.048})
    cb = StageSWD(n=64)
    trainer = build_run(cfg, tmp_path / "run", extra_callbacks=[cb]).fit()
    starts = [s.step for s in trainer.family.stage_boundaries(16) if 0 < s.step < 12]
    assert len(cb.history) == len(starts) + 1  # each stage change, then the end of training
    assert all(h["swd/mean"] > 0 and "swd/8x8" in h for h in cb.history)
    events = [e["message"] for e in trainer.events if "SWD" in e["message"]]
    assert len(events) == len(cb.history) and events[-1].startswith("end of training")
