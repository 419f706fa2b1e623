"""Evaluation end to end: during training (callback), from the CLI, and folder against folder."""

import json

import pytest

from ganforge.checkpoint import list_checkpoints
from ganforge.cli.main import main
from ganforge.config import EvalConfig
from ganforge.data import load_data
from ganforge.image import save_images
from ganforge.metrics.callback import EvalCallback
from ganforge.metrics.registry import parse_metrics
from ganforge.train import build_run

from .conftest import tiny_config


def test_eval_callback_logs_metrics_and_keeps_the_best(tmp_path):
    data = load_data("builtin:digits")
    cfg = tiny_config("dcgan", "builtin:digits", steps=4)
    cb = EvalCallback(EvalConfig(every=2, n=64, metrics="fid,kid,pr"), data)
    trainer = build_run(cfg, tmp_path, data=data, extra_callbacks=[cb])
    trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["eval/fid"] >= 0 and 0 <= r["eval/precision"] <= 1 for r in evals)
    best = list_checkpoints(tmp_path / "best")
    assert len(best) == 1 and int(best[0].name[5:]) == cb.best_step
    assert cb.best == pytest.approx(min(r["eval/fid"] for r in evals))
    resumed = EvalCallback(EvalConfig(every=2, n=64, metrics="fid"), data)
    build_run(tiny_config("dcgan", "builtin:digits", steps=6), tmp_path, resume=True, data=data,
              extra_callbacks=[resumed])
    assert resumed.best == pytest.approx(cb.best) and len(resumed.history) == 2


def test_evaluate_folder_against_itself_is_zero_fid(tmp_path, capsys):
    data = load_data("builtin:digits")
    x = data.to_float(data.x[:80])
    save_images(x, tmp_path / "a")
    save_images(x, tmp_path / "b")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--real", str(tmp_path / "a"), "--fake", str(tmp_path / "b"), "--metrics",
                 "fid,pr,swd", "--features", "fashion", "--n", "80", "--out", str(out)]) == 0
    res = json.loads(out.read_text())["results"]
    # PNGs are RGB-free grey here, so the round trip is exact: identical sets
    assert res["fid"]["values"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert res["pr"]["values"]["precision"] == pytest.approx(1.0)
    assert res["swd"]["values"]["swd_mean"] == pytest.approx(0.0, abs=1e-9)
    prov = res["fid"]["provenance"]
    assert prov["extractor"] == "fashion" and len(prov["weights_sha256"]) == 64 and prov["n_real"] == 80


def test_evaluate_a_checkpoint_writes_json_with_provenance(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "builtin:ring8", "--family", "gan", "--steps", "3", "--out", str(out),
                 "--quiet", "--set", "log.tensorboard=false"]) == 0
    assert main(["evaluate", "--ckpt", str(out), "--n", "500"]) == 0
    files = list((out / "eval").glob("step_*.json"))
    res = json.loads(files[0].read_text())["results"]
    assert set(res) == {"modes", "mmd"} and res["modes"]["values"]["n_modes"] == 8
    assert res["mmd"]["provenance"]["extractor"] == "raw"


def test_metric_names_are_checked():
    assert parse_metrics("fid, KID") == ["fid", "kid"]
    with pytest.raises(ValueError, match="choose from: fid, kid"):
        parse_metrics("fid,fidd")
    with pytest.raises(ValueError, match="for points data"):
        parse_metrics("fid", "points")
