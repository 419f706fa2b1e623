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
