"""Faults from the outside: damaged checkpoints, foreign optimizer files, failed writes, diverged weights,
oversized sample requests. Each ends in one line that names the path, never in a traceback, and never
costs an earlier checkpoint."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import ganforge.checkpoint as checkpoint
from ganforge.artifacts import Sampler
from ganforge.checkpoint import (CheckpointError, NonFiniteWeights, check_checkpoint, latest_checkpoint,
                                 list_checkpoints, read_checkpoint, write_checkpoint)
from ganforge.cli.main import describe_os_error, main
from ganforge.image import to_uint8
from ganforge.train import build_run

from .conftest import tiny_config


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(checkpoint, "_warned", set())  # each test sees its own warnings


def _run(tmp_path, steps=4, family="dcgan", name="run"):
    """A tiny run with checkpoints at 0, 2, ..., steps."""
    out = tmp_path / name
    build_run(tiny_config(family, steps=steps, log={"ckpt_every": 2, "keep_last": 0}), out).fit()
    return out


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# -- 1. damaged checkpoints ---------------------------------------------------------------------

@pytest.mark.parametrize("damage,problem", [
    (lambda c: _truncate(c / "model.safetensors"), "model.safetensors is truncated"),
    (lambda c: _truncate(c / "ema.safetensors", 0.99), "ema.safetensors is truncated"),
    (lambda c: _truncate(c / "model.safetensors", 0.0001), "model.safetensors is truncated or not a safetensors"),
    (lambda c: (c / "ema.safetensors").unlink(), "ema.safetensors is missing"),
    (lambda c: _truncate(c / "optim.pt"), "optim.pt is truncated"),
    (lambda c: _truncate(c / "state.json"), "state.json is not valid JSON"),
    (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes() + b"x"),
     "1 unexpected bytes"),
])
def test_the_check_names_each_kind_of_damage(tmp_path, damage, problem):
    run = _run(tmp_path, steps=2)
    newest = list_checkpoints(run)[-1]
    assert check_checkpoint(newest) is None
    damage(newest)
    assert problem in check_checkpoint(newest)


@pytest.mark.parametrize("name", ["model.safetensors", "ema.safetensors"])
def test_a_truncated_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, capsys, name):
    run = _run(tmp_path)
    _truncate(run / "checkpoints" / "step_00000004" / name)
    with pytest.warns(UserWarning, match=rf"step_00000004: {name} is truncated .*; using step_00000002"):
        assert latest_checkpoint(run).name == "step_00000002"
    assert Sampler.from_checkpoint(run).path.name == "step_00000002"
    assert read_checkpoint(run)["state"]["step"] == 2

    # the CLI: one warning (not one per lookup), then samples from step 2
    checkpoint._warned.clear()
    with pytest.warns(UserWarning, match="skipped damaged checkpoint .*step_00000004") as seen:
        assert main(["sample", "--ckpt", str(run), "--n", "4", "--out", str(tmp_path / "x.npy")]) == 0
    assert len(seen) == 1 and "(step 2," in capsys.readouterr().out

    # --resume continues from step 2 and rewrites step 4 whole
    resumed = build_run(tiny_config(steps=6, log={"ckpt_every": 2, "keep_last": 0}), run, resume=True)
    assert resumed.step == 2
    resumed.fit()
    assert check_checkpoint(run / "checkpoints" / "step_00000004") is None
    assert latest_checkpoint(run).name == "step_00000006"


def test_no_intact_checkpoint_is_a_clear_error(tmp_path, capsys):
    run = _run(tmp_path, steps=2)
    for ck in list_checkpoints(run):
        _truncate(ck / "model.safetensors")
    with pytest.raises(CheckpointError, match="holds no intact checkpoint: .*step_00000002: model.safetensors is "
                                              "truncated.*step_00000000"):
        latest_checkpoint(run)
    assert main(["sample", "--ckpt", str(run), "--n", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "holds no intact checkpoint" in _one_line(capsys)
    named = run / "checkpoints" / "step_00000002"  # a checkpoint directory named outright is not replaced
    assert main(["sample", "--ckpt", str(named), "--n", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert f"checkpoint {named} is damaged: model.safetensors is truncated" in _one_line(capsys)
    assert main(["train", "--out", str(run), "--steps", "4", "--resume", "--quiet"]) == 2
    assert "holds no intact checkpoint" in _one_line(capsys)
    assert not (tmp_path / "x.png").exists()


# -- 2. a foreign optim.pt ----------------------------------------------------------------------

class NotAnOptimizerState:
    pass


def test_a_foreign_optim_pt_is_refused_in_one_line_without_torch_advice(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path, steps=2)
    optim = run / "checkpoints" / "step_00000002" / "optim.pt"
    torch.save({"optim/d": NotAnOptimizerState()}, optim)
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k.get("weights_only")) or real_load(*a, **k))
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(run)
    assert str(e.value) == f"{optim} is not a ganforge optimizer state and will not be loaded"
    assert main(["train", "--out", str(run), "--steps", "4", "--resume", "--quiet"]) == 2
    line = _one_line(capsys)
    assert line == f"ganforge train: error: {optim} is not a ganforge optimizer state and will not be loaded"
    assert calls and all(w is True for w in calls)  # its advice (weights_only=False) is never followed
    # sampling needs no optimizer state
    assert main(["sample", "--ckpt", str(run), "--n", "2", "--out", str(tmp_path / "x.npy")]) == 0


# -- 3. failed writes ---------------------------------------------------------------------------

def _enospc_from(step_from: int, monkeypatch) -> list[str]:
    """Every checkpoint file of step >= step_from fails to write as on a full disk (ENOSPC, no file name)."""
    attempts = []
    real = checkpoint._write_file

    def write(path, data):
        step = int(path.parent.name.split("-")[1].split("_")[1])  # .tmp-step_00000004-xyz
        if step >= step_from:
            attempts.append(path.name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data)

    monkeypatch.setattr(checkpoint, "_write_file", write)
    return attempts


def test_full_disk_during_training_is_one_line_and_earlier_checkpoints_stay(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    attempts = _enospc_from(4, monkeypatch)
    rc = main(["train", "--data", "builtin:digits", "--steps", "6", "--out", str(out), "--set", "model.width=4",
               "--set", "log.ckpt_every=2", "--set", "log.sample_every=0", "--set", "log.tensorboard=false",
               "--quiet"])
    assert rc == 1
    assert _one_line(capsys) == (f"ganforge train: cannot write {out / 'checkpoints' / 'step_00000004'}: "
                                 f"{os.strerror(errno.ENOSPC)}")
    assert attempts == ["config.json"]  # one try: on_train_end does not save again after the failure
    assert [p.name for p in list_checkpoints(out)] == ["step_00000000", "step_00000002"]
    assert not list((out / "checkpoints").glob(".*"))
    for ck in list_checkpoints(out):
        assert check_checkpoint(ck) is None
    assert read_checkpoint(out)["state"]["step"] == 2


def test_a_failed_save_keeps_the_first_error_and_is_not_retried(tmp_path, monkeypatch):
    trainer = build_run(tiny_config(steps=4, log={"ckpt_every": 2}), tmp_path)
    attempts = _enospc_from(2, monkeypatch)
    with pytest.raises(OSError) as e:
        trainer.fit()
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "checkpoints" / "step_00000002")
    assert trainer.step == 2 and len(attempts) == 1


def test_read_only_run_folder_on_resume(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path, steps=2)
    before = {p: p.read_bytes() for p in (run / "checkpoints").rglob("*") if p.is_file()}

    def read_only(*a, **k):  # what mkdtemp meets in a read-only folder (tests run as root: chmod would not do)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(run / "checkpoints" / ".tmp-x"))

    monkeypatch.setattr(checkpoint.tempfile, "mkdtemp", read_only)
    assert main(["train", "--out", str(run), "--steps", "3", "--resume", "--quiet"]) == 1
    assert _one_line(capsys) == (f"ganforge train: cannot write {run / 'checkpoints' / 'step_00000003'}: "
                                 f"{os.strerror(errno.EACCES)}")
    assert {p: p.read_bytes() for p in (run / "checkpoints").rglob("*") if p.is_file()} == before


def test_sample_into_a_read_only_folder_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path, steps=2)
    ro = tmp_path / "ro"
    ro.mkdir()

    def refusing(real):  # what a read-only folder answers (tests run as root: chmod would not do)
        def opener(path, *a, **k):
            if ro in (Path(path), Path(path).parent):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real(path, *a, **k)
        return opener

    monkeypatch.setattr(os, "open", refusing(os.open))
    monkeypatch.setattr("builtins.open", refusing(open))
    generated = []

    def run_g(self, *a):
        generated.append(1)
        yield from ()

    monkeypatch.setattr(Sampler, "_run_g", run_g)
    for out in ("x.png", "x.npy", "imgs"):
        target = ro / out if out != "imgs" else ro
        rc = main(["sample", "--ckpt", str(run), "--n", "3", "--out", str(target)])
        assert rc == 1
        assert _one_line(capsys) == f"ganforge sample: cannot write {ro}: {os.strerror(errno.EACCES)}"
    assert not generated and not list(ro.iterdir())


def test_a_failed_sample_write_leaves_the_earlier_file(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path, steps=2)
    grid = tmp_path / "grid.png"
    assert main(["sample", "--ckpt", str(run), "--n", "4", "--out", str(grid)]) == 0
    capsys.readouterr()
    before = grid.read_bytes()

    def half_then_full(x, path, **k):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("ganforge.cli.sample.save_grid", half_then_full)
    assert main(["sample", "--ckpt", str(run), "--n", "4", "--seed", "1", "--out", str(grid)]) == 1
    assert _one_line(capsys) == f"ganforge sample: cannot write {grid}: {os.strerror(errno.ENOSPC)}"
    assert grid.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["grid.png"]


def test_export_checks_its_destinations_before_exporting(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path, steps=2)
    monkeypatch.setattr("ganforge.artifacts.onnx.export_onnx", lambda *a, **k: pytest.fail("exported anyway"))
    (tmp_path / "afile").write_text("")
    assert main(["export", "--ckpt", str(run), "--onnx", str(tmp_path / "afile" / "g.onnx")]) == 2
    target = tmp_path / "afile" / "g.onnx"
    assert f"--onnx {target}: '{target.parent}' is a file, not a folder" in _one_line(capsys)

    def read_only(*a, **k):
        raise PermissionError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "ro" / "tmpabc"))

    monkeypatch.setattr("tempfile.TemporaryFile", read_only)
    assert main(["export", "--ckpt", str(run), "--onnx", str(tmp_path / "ro" / "g.onnx")]) == 1
    assert _one_line(capsys) == f"ganforge export: cannot write {tmp_path / 'ro'}: {os.strerror(errno.EROFS)}"


def test_only_write_errors_are_called_writes():
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device"), "runs/a") == \
        "cannot write runs/a: No space left on device"
    assert describe_os_error(OSError(errno.EADDRINUSE, "Address already in use")) == "error: Address already in use"
    assert describe_os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "c.yaml")) == \
        "error: c.yaml: No such file or directory"


def test_sample_creates_missing_parent_folders_and_names_a_file_in_the_way(tmp_path, capsys):
    run = _run(tmp_path, steps=2)
    for out in ("a/b/x.png", "c/d/x.npy", "e/f/imgs"):
        assert main(["sample", "--ckpt", str(run), "--n", "3", "--out", str(tmp_path / out)]) == 0
    assert (tmp_path / "a/b/x.png").is_file() and np.load(tmp_path / "c/d/x.npy").shape == (3, 1, 8, 8)
    assert len(list((tmp_path / "e/f/imgs").glob("*.png"))) == 3
    capsys.readouterr()
    (tmp_path / "afile").write_text("")
    assert main(["sample", "--ckpt", str(run), "--n", "3", "--out", str(tmp_path / "afile" / "x.png")]) == 2
    assert f"'{tmp_path / 'afile'}' is a file, not a folder" in _one_line(capsys)


# -- 4. non-finite weights ----------------------------------------------------------------------

def _poison(ckpt: Path, name: str, n: int = 5) -> None:
    """Write NaNs into the first weight of a checkpoint file, bypassing write_checkpoint (an old version's run)."""
    tensors = load_file(str(ckpt / name))
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() >= n and k.startswith(
        "G." if name == "model.safetensors" else ""))
    tensors[key].view(-1)[:n] = float("nan")
    save_file(tensors, str(ckpt / name))


def test_write_checkpoint_refuses_non_finite_weights(tmp_path):
    good = {"w": torch.ones(3)}
    with pytest.raises(NonFiniteWeights, match="step 7 holds 2 non-finite"):
        write_checkpoint(tmp_path, 7, config={}, model={"w": torch.tensor([1.0, float("nan"), float("inf")])},
                         ema=good, optim={}, state={"step": 7})
    with pytest.raises(NonFiniteWeights, match="1 non-finite"):
        write_checkpoint(tmp_path, 7, config={}, model=good, ema=good,
                         optim={"optim/d": {"state": {0: {"exp_avg": torch.tensor([float("nan")])}}}}, state={})
    assert not (tmp_path / "checkpoints").exists()


def test_divergence_never_becomes_the_newest_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--data", "builtin:digits", "--steps", "20", "--out", str(out), "--set", "model.width=4",
               "--set", "log.sample_every=0", "--set", "log.tensorboard=false", "--set", "train.lr_d=1e30",
               "--set", "train.lr_g=1e30", "--quiet"])
    assert rc == 1 and "stopped after 3 rollbacks" in capsys.readouterr().out
    assert [p.name for p in list_checkpoints(out)] == ["step_00000000"]
    ck = read_checkpoint(out)  # refuses non-finite weights, so this one is finite
    assert ck["state"]["step"] == 0
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    warnings = [e["message"] for e in events if e.get("event") == "warning"]
    skipped = [m for m in warnings if m.startswith("no checkpoint written")]
    assert len(skipped) == 1 and skipped[0].startswith("no checkpoint written at step 1: ")
    # nor is a grid of the diverged generator passed off as the result
    assert not (out / "samples" / "final.png").exists()
    assert any(m.startswith("no samples/final.png: ") for m in warnings)


@pytest.mark.parametrize("name,flags", [("ema.safetensors", []), ("model.safetensors", ["--no-ema"])])
def test_sample_export_and_resume_refuse_non_finite_weights(tmp_path, capsys, name, flags):
    run = _run(tmp_path, steps=2)
    ck = run / "checkpoints" / "step_00000002"
    _poison(ck, name)
    line = f"error: checkpoint {ck} holds 5 non-finite weights"
    assert main(["sample", "--ckpt", str(run), "--n", "2", "--out", str(tmp_path / "x.npy"), *flags]) == 2
    assert _one_line(capsys).startswith(f"ganforge sample: {line}")
    assert main(["export", "--ckpt", str(run), "--onnx", str(tmp_path / "g.onnx"), *flags]) == 2
    assert _one_line(capsys).startswith(f"ganforge export: {line}")
    assert not (tmp_path / "x.npy").exists() and not (tmp_path / "g.onnx").exists()
    with pytest.raises(NonFiniteWeights, match=f"checkpoint {ck} holds 5 non-finite"):  # --resume refuses it too
        read_checkpoint(run)


# -- 5. how many samples ------------------------------------------------------------------------

def test_sample_caps_grids_and_calls_with_a_message(tmp_path, capsys):
    run = _run(tmp_path, steps=2)
    assert main(["sample", "--ckpt", str(run), "--n", "5000", "--out", str(tmp_path / "g.png")]) == 2
    assert "a grid of 5,000 images is too large to view (at most 4,096); use --out FOLDER/ or FILE.npy" in \
        _one_line(capsys)
    assert main(["sample", "--ckpt", str(run), "--n", "100000", "--interpolate", "2",
                 "--out", str(tmp_path / "g.npy")]) == 2
    assert "asks for 200,000 samples, more than 100,000 per call" in _one_line(capsys)
    assert not list(tmp_path.glob("g.*"))


def test_npy_and_folders_stream_batch_by_batch(tmp_path, monkeypatch):
    run = _run(tmp_path, steps=2)
    expected = Sampler.from_checkpoint(run).generate(600, seed=3)  # more than two generator batches

    def whole(*a, **k):
        raise AssertionError("npy and folder outputs must not hold every sample at once")

    monkeypatch.setattr(Sampler, "generate", whole)
    assert main(["sample", "--ckpt", str(run), "--n", "600", "--seed", "3", "--out", str(tmp_path / "x.npy")]) == 0
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "x.npy")), expected, rtol=0, atol=0)
    assert main(["sample", "--ckpt", str(run), "--n", "600", "--seed", "3", "--out", str(tmp_path / "imgs")]) == 0
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert [f.name for f in files[:2]] + [files[-1].name] == ["00000.png", "00001.png", "00599.png"]
    from PIL import Image
    np.testing.assert_array_equal(np.asarray(Image.open(files[-1])), to_uint8(expected[-1:])[0, 0].numpy())


def test_a_failed_export_write_leaves_no_part_and_keeps_the_earlier_model(tmp_path, capsys, monkeypatch):
    """ONNX and its model card are written beside the destination and renamed: a full disk while writing (here
    during the parity check of the written model) leaves the earlier export as it was and no partial file."""
    run = _run(tmp_path, steps=2)
    out = tmp_path / "export"
    out.mkdir()
    (out / "g.onnx").write_bytes(b"the earlier model")

    def disk_full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("ganforge.artifacts.onnx.parity", disk_full)
    assert main(["export", "--ckpt", str(run), "--onnx", str(out / "g.onnx")]) == 1
    assert _one_line(capsys).startswith(f"ganforge export: cannot write {out / 'g.onnx'}: No space left on device")
    assert (out / "g.onnx").read_bytes() == b"the earlier model"
    assert sorted(p.name for p in out.iterdir()) == ["g.onnx"]  # no .tmp file, no card of a model not written
