"""Discriminator augmentation (nn/augment.py): DiffAugment's operations, ADA's transforms and p controller, and
their place in training (every image D sees, the checkpoint, bit-exact resume, the health warning)."""

import math

import pytest
import torch

from ganforge.nn import augment as A
from ganforge.train import build_run

from .conftest import split_and_resume, tiny_config


def test_shift_moves_whole_pixels_and_fills_zeros():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).view(2, 1, 4, 5) + 1
    out = A._shift(x, torch.tensor([1, 0]), torch.tensor([0, -2]))
    torch.testing.assert_close(out[0, 0, 1:], x[0, 0, :-1])   # down by one row
    assert (out[0, 0, 0] == 0).all()
    torch.testing.assert_close(out[1, 0, :, :-2], x[1, 0, :, 2:])  # left by two columns
    assert (out[1, 0, :, -2:] == 0).all()


def test_diffaugment_translation_keeps_pixel_values_and_shifts_at_most_an_eighth():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 16, 16) + 1  # strictly positive: a zero can only come from the fill
    out = A.diff_translation(x)
    for i in range(16):  # each output equals its input moved by (dy, dx) with |dy|, |dx| <= 2
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(out[i:i + 1], A._shift(x[i:i + 1], torch.tensor([dy]), torch.tensor([dx])))]
        assert found


def test_diffaugment_cutout_zeroes_one_square_of_half_the_size_at_most():
    torch.manual_seed(1)
    x = torch.rand(32, 2, 16, 16) + 1
    out = A.diff_cutout(x)
    zero = (out == 0).all(dim=1)  # (N, H, W): zeroed in every channel
    untouched = (out == x).all(dim=1)
    assert bool((zero | untouched).all())
    for z in zero:
        rows, cols = z.any(1).nonzero().flatten(), z.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert 1 <= h <= 8 and 1 <= w <= 8 and int(z.sum()) == h * w  # one full rectangle
        assert rows.max() - rows.min() + 1 == h and cols.max() - cols.min() + 1 == w
    assert (zero.flatten(1).sum(1) == 64).float().mean() > 0.2  # a whole 8x8 square when it is not clipped


def test_diffaugment_color_keeps_a_flat_image_flat_and_is_differentiable():
    torch.manual_seed(2)
    flat = torch.full((8, 3, 6, 6), 0.3, requires_grad=True)
    out = A.diff_color(flat)
    assert torch.allclose(out, out[:, :, :1, :1].expand_as(out), atol=1e-6)  # brightness moves it, nothing varies
    out.sum().backward()
    assert flat.grad is not None and torch.isfinite(flat.grad).all()


def test_ada_at_p0_is_the_identity_and_blit_only_moves_pixels():
    x = torch.rand(8, 3, 12, 12) * 2 - 1
    a = A.Augmenter("ada", p=0.0, target=0.0)
    assert a(x) is x
    torch.manual_seed(3)
    out = A.ada_geometric(x, 1.0, ("blit",))  # flips, 90-degree turns, whole-pixel shifts: values are kept
    for i in range(8):
        src = x[i].permute(1, 2, 0).reshape(-1, 3)
        got = out[i].permute(1, 2, 0).reshape(-1, 3)
        dist = torch.cdist(got, src, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
        assert float(dist.max()) < 1e-5
    # a 90-degree turn of a non-square image stays the image's size
    assert A.ada_geometric(torch.rand(4, 1, 10, 6), 1.0, ("blit", "geom")).shape == (4, 1, 10, 6)


def test_ada_hue_rotation_keeps_grey_and_is_a_rotation():
    v = torch.ones(3) / math.sqrt(3)
    m = A._rotate_about(v, torch.tensor([0.7, -2.0]))
    for r in m[:, :3, :3]:
        torch.testing.assert_close(r @ r.T, torch.eye(3), atol=1e-6, rtol=0)
        torch.testing.assert_close(r @ v, v, atol=1e-6, rtol=0)  # grey stays grey
    torch.manual_seed(4)
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    x.requires_grad_(True)
    out = A.ada_color(x, 1.0)
    out.sum().backward()
    assert out.shape == x.shape and torch.isfinite(x.grad).all()


def test_ada_controller_moves_p_by_the_documented_step():
    a = A.Augmenter("ada", p=0.0, target=0.6, interval=4, kimg=1.0)  # p can cross [0, 1] in 1,000 images
    for _ in range(3):
        assert not a.observe(0.9, 50)
    assert a.observe(0.9, 50) and a.p == pytest.approx(200 / 1000) and a.rt == pytest.approx(0.9)
    state = a.state_dict()
    for _ in range(4):
        a.observe(0.1, 50)  # r_t below the target: p falls back
    assert a.p == pytest.approx(0.0)
    for _ in range(40):
        a.observe(1.0, 50)
    assert a.p == 1.0  # clamped
    b = A.Augmenter("ada", target=0.6, interval=4, kimg=1.0)
    b.load_state_dict(state)
    assert b.p == pytest.approx(0.2)
    with pytest.raises(ValueError, match="trained with --augment ada"):
        A.Augmenter("diffaugment").load_state_dict(state)
    fixed = A.Augmenter("ada", p=0.3, target=0.0)
    for _ in range(8):
        fixed.observe(1.0, 64)
    assert fixed.p == 0.3


@pytest.mark.parametrize("bad, match", [({"kind": "mixup"}, "train.augment"),
                                        ({"kind": "diffaugment", "policy": "color,rotate"}, "augment_policy"),
                                        ({"kind": "ada", "p": 1.5}, "augment_p"),
                                        ({"kind": "ada", "kimg": 0}, "ada_kimg")])
def test_bad_augmentation_settings_name_the_setting(bad, match):
    with pytest.raises(ValueError, match=match):
        A.Augmenter(**bad)


def test_d_sees_augmented_reals_and_fakes(tmp_path):
    cfg = tiny_config("dcgan", steps=1, train={"augment": "diffaugment"})
    trainer = build_run(cfg, tmp_path / "run")
    seen = []
    trainer.family.augment = lambda x: (seen.append(x.shape[0]), x)[1]
    trainer.train_step()
    assert len(seen) == 3  # D's real and fake batches, then G's fakes


def test_ada_run_logs_p_and_resumes_bit_exact(tmp_path):
    def make(steps, out, resume):
        cfg = tiny_config("dcgan", steps=steps, train={"augment": "ada", "ada_kimg": 0.05, "ada_interval": 2},
                          log={"ckpt_every": 3})
        return build_run(cfg, out, resume=resume)

    full, resumed = split_and_resume(make, tmp_path, 3)  # resumes mid-interval (step 3 of intervals of 2)
    assert full.augment.state_dict() == resumed.augment.state_dict()
    import json

    rows = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    p = [r["aug/p"] for r in rows if "aug/p" in r]
    assert len(p) == 6 and all(0.0 <= v <= 1.0 for v in p)
    assert p[0] == 0.0 and p[2] == p[1] and p[4] == p[3]  # p moves only after every 2nd step


def test_augment_is_refused_where_there_are_no_images_for_d(tmp_path):
    cfg = tiny_config("gan", "builtin:ring8", train={"augment": "ada"})
    with pytest.raises(ValueError, match="drop --augment"):
        build_run(cfg, tmp_path / "points")
    assert not (tmp_path / "points").exists()


def test_health_warns_that_d_memorises_and_names_ada():
    from types import SimpleNamespace

    from ganforge.train.health import HealthMonitor

    cfg = tiny_config().health
    events = []
    trainer = SimpleNamespace(family=SimpleNamespace(spec=SimpleNamespace(kind="image")),
                              loader=SimpleNamespace(data=[0] * 305), augment=None,
                              event=lambda kind, message: events.append(message))
    mon = HealthMonitor(cfg)
    for _ in range(cfg.window - 1):
        mon.on_step_end(trainer, 10_000, {"d/rt": 0.99})
    assert events == []
    mon.on_step_end(trainer, 10_000, {"d/rt": 0.99})
    assert len(events) == 1 and "305 training images" in events[0] and "--augment ada" in events[0]
    # under ADA with p still below 1 the controller is on it: no warning
    events.clear()
    trainer.augment = A.Augmenter("ada", p=0.5)
    mon = HealthMonitor(cfg)
    for _ in range(2 * cfg.window):
        mon.on_step_end(trainer, 10_000, {"d/rt": 0.99})
    assert events == []
    trainer.augment.p = 1.0  # p saturated and D still sure of every real image
    for _ in range(cfg.window):
        mon.on_step_end(trainer, 10_000, {"d/rt": 0.99})
    assert len(events) == 1 and "p is already 1" in events[0]


def test_progress_line_shows_adas_p_and_a_growing_resolution():
    from ganforge.train.progress import summary

    text = summary({"d/loss": 1.0, "aug/p": 0.25, "progan/resolution": 14.0, "progan/alpha": 0.5}, 100.0)
    assert "ada p 0.25" in text and "res 14 (fade 0.50)" in text
    assert "fade" not in summary({"progan/resolution": 28.0, "progan/alpha": 1.0}, 1.0)
