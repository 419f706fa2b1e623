import re

import pytest

from ganforge.config import RunConfig, apply_override, from_dict, load_file, merge


def test_overrides_parse_values_as_yaml():
    data: dict = {}
    for a in ("train.lr_g=1e-4", "train.steps=10", "log.tensorboard=false", "data.size=[96, 64]", "model.loss=wgan-gp"):
        apply_override(data, a)
    cfg = from_dict(data)
    assert cfg.train.lr_g == pytest.approx(1e-4) and cfg.train.steps == 10
    assert cfg.log.tensorboard is False and cfg.data.size == [96, 64] and cfg.model == {"loss": "wgan-gp"}


def test_ints_are_accepted_for_floats_and_wrong_types_rejected():
    assert from_dict({"train": {"lr_d": 1}}).train.lr_d == 1.0
    with pytest.raises(ValueError, match="train.steps must be int"):
        from_dict({"train": {"steps": "many"}})
    with pytest.raises(ValueError, match="unknown config key 'train.lr'"):
        from_dict({"train": {"lr": 1e-3}})


def test_yaml_file_and_merge(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("family: gan\ntrain:\n  steps: 7\n  batch_size: 32\n")
    merged = merge(load_file(p), {"train": {"steps": 9}})
    cfg = from_dict(merged)
    assert (cfg.family, cfg.train.steps, cfg.train.batch_size) == ("gan", 9, 32)


def test_save_round_trip(tmp_path):
    import json

    cfg = from_dict({"family": "gan", "model": {"hidden": 8}, "train": {"seed": 3}})
    cfg.save(tmp_path / "c.json")
    assert from_dict(json.loads((tmp_path / "c.json").read_text())) == cfg
    assert RunConfig().train.lr_g == pytest.approx(2e-4) and RunConfig().train.beta1 == pytest.approx(0.5)


def test_bad_override_syntax():
    with pytest.raises(ValueError, match="key=value"):
        apply_override({}, "train.lr_g")


BAD_VALUES = [
    ("train", "lr_g", -1.0, "train.lr_g must be > 0"),
    ("train", "lr_d", 0.0, "train.lr_d must be > 0"),
    ("train", "lr_g", float("nan"), "train.lr_g must be > 0"),
    ("train", "beta1", 1.0, "train.beta1 must be in [0, 1)"),
    ("train", "beta2", -0.1, "train.beta2 must be in [0, 1)"),
    ("train", "steps", -1, "train.steps (--steps) must be >= 0"),
    ("train", "batch_size", 0, "train.batch_size (--batch-size) must be >= 1"),
    ("train", "ema_decay", 1.0, "train.ema_decay must be in [0, 1)"),
    ("train", "ema_warmup", 1.5, "train.ema_warmup must be >= 2"),
    ("train", "grad_clip", -1.0, "train.grad_clip must be >= 0"),
    ("train", "lr_decay", "cosine", "train.lr_decay must be 'none' or 'linear'"),
    ("train", "lr_decay_start", 1.0, "train.lr_decay_start must be in [0, 1)"),
    ("train", "precision", "fp16", "train.precision (--precision) must be one of 'auto', 'fp32', 'bf16'"),
    ("train", "malloc", "jemalloc", "train.malloc must be 'auto' or 'system'"),
    ("train", "device", "gpu", "train.device must be auto, cpu, cuda or cuda:N"),
    ("data", "fit", "stretch", "data.fit must be 'crop' or 'pad'"),
    ("data", "channels", 2, "data.channels (--channels) must be 1 (grey) or 3 (RGB)"),
    ("data", "size", [0, 64], "data.size (--size) must be [H, W]"),
    ("log", "n_samples", 0, "log.n_samples must be >= 1"),
    ("log", "keep_last", -1, "log.keep_last must be >= 0"),
    ("health", "window", 0, "health.window must be >= 1"),
    ("health", "rollback_lr_factor", 0.0, "health.rollback_lr_factor must be in (0, 1]"),
    ("eval", "n", 0, "eval.n must be >= 1"),
]


@pytest.mark.parametrize("section,key,value,message", BAD_VALUES)
def test_validate_names_the_setting_and_its_range(section, key, value, message):
    from ganforge.config import validate

    cfg = from_dict({section: {key: value}})  # from_dict checks types only: saved runs keep loading
    with pytest.raises(ValueError, match="^" + re.escape(message)) as e:
        validate(cfg)
    assert "\n" not in str(e.value) and f"got {value!r}" in str(e.value)


def test_defaults_and_boundary_values_are_valid():
    from ganforge.config import validate

    validate(RunConfig())
    validate(from_dict({"train": {"steps": 0, "beta1": 0, "ema_decay": 0, "ema_warmup": 2, "lr_decay": "linear",
                                  "device": "cuda:1"},
                        "log": {"keep_last": 0, "ckpt_every": 0}, "health": {"d_acc_high": 1, "rollback_lr_factor": 1},
                        "data": {"size": [4, 4096], "channels": 1, "pairs": "side-by-side"}}))


def test_choices_agree_with_the_modules_that_use_them():
    from ganforge.config import CHOICES
    from ganforge.data.images import FITS
    from ganforge.data.paired import PAIRS
    from ganforge.train.hardware import PRECISIONS

    assert CHOICES["data.fit"] == FITS and CHOICES["data.pairs"] == tuple(PAIRS)
    assert CHOICES["train.precision"] == PRECISIONS


@pytest.mark.parametrize("section,key,value,message", BAD_VALUES[:8])
def test_build_run_rejects_bad_settings_before_creating_the_run_folder(tmp_path, section, key, value, message):
    from ganforge.train import build_run

    cfg = from_dict({"family": "gan", "data": {"source": "builtin:ring8"}, section: {key: value},
                     "log": {"tensorboard": False, "progress": False}})
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=re.escape(message)):
        build_run(cfg, out)
    assert not out.exists()
