"""The command line, end to end: train on a messy folder, sample every format, errors, kill -9 + resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.checkpoint import list_checkpoints, read_checkpoint
from ganforge.cli.main import main

FAST = ["--set", "model.width=4", "--set", "log.sample_every=0", "--set", "log.tensorboard=false", "--quiet"]


def make_messy_folder(root: Path) -> Path:
    """Mixed sizes and modes (RGB, RGBA, grey, palette), plus a garbage and a truncated file."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(12):
        h, w = (int(v) for v in rng.integers(40, 160, 2))
        img = Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))
        img.convert(["RGB", "RGBA", "L", "P"][i % 4]).save(root / f"img{i}.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg")
    whole = (root / "img0.png").read_bytes()
    (root / "cut.png").write_bytes(whole[: len(whole) // 2])
    return root


def test_train_on_a_messy_folder_at_size_100_then_sample(tmp_path, capsys):
    data = make_messy_folder(tmp_path / "cars")
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match=r"broken\.jpg.*cut\.png|cut\.png.*broken\.jpg"):
        rc = main(["train", "--data", str(data), "--size", "100", "--family", "dcgan", "--steps", "2",
                   "--batch-size", "4", "--out", str(out), *FAST])
    assert rc == 0
    assert main(["sample", "--ckpt", str(out), "--n", "6", "--seed", "0", "--out", str(tmp_path / "x.npy")]) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (6, 3, 100, 100) and x.dtype == np.float32
    assert -1.0 <= x.min() and x.max() <= 1.0
    saved = json.loads((out / "config.json").read_text())
    assert saved["data"]["size"] == [100, 100] and saved["family"] == "dcgan"


def test_sample_formats_and_interpolation(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "builtin:digits", "--steps", "2", "--out", str(out), *FAST]) == 0
    assert main(["sample", "--ckpt", str(out), "--n", "5", "--out", str(tmp_path / "imgs")]) == 0
    assert len(list((tmp_path / "imgs").glob("*.png"))) == 5
    assert main(["sample", "--ckpt", str(out), "--n", "9", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size[0] > 0
    assert main(["sample", "--ckpt", str(out), "--n", "2", "--interpolate", "4", "--out", str(tmp_path / "i.npy")]) == 0
    strip = np.load(tmp_path / "i.npy")
    assert strip.shape == (8, 1, 8, 8)
    a = np.load(tmp_path / "i.npy")
    main(["sample", "--ckpt", str(out), "--n", "4", "--seed", "0", "--out", str(tmp_path / "a.npy")])
    main(["sample", "--ckpt", str(out), "--n", "4", "--seed", "0", "--out", str(tmp_path / "b.npy")])
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert a.shape == strip.shape


def test_points_sample_as_npy(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "builtin:ring8", "--family", "gan", "--steps", "2", "--out", str(out),
                 "--quiet", "--set", "log.tensorboard=false"]) == 0
    assert main(["sample", "--ckpt", str(out), "--n", "50", "--out", str(tmp_path / "p.npy")]) == 0
    assert np.load(tmp_path / "p.npy").shape == (50, 2)
    assert main(["sample", "--ckpt", str(out), "--n", "50", "--out", str(tmp_path / "p.png")]) == 0


@pytest.mark.parametrize("argv,fix", [
    (["train", "--data", "nowhere/", "--out", "{tmp}/r"], "does not exist"),
    (["train", "--data", "builtin:digits", "--size", "huge", "--out", "{tmp}/r"], "HxW"),
    (["train", "--data", "builtin:digits", "--set", "train.lr_g", "--out", "{tmp}/r"], "key=value"),
    (["train", "--data", "builtin:digits", "--set", "train.nope=1", "--out", "{tmp}/r"], "valid keys here"),
    (["train", "--data", "builtin:digits", "--set", "model.nope=1", "--out", "{tmp}/r"], "unknown dcgan option"),
    (["train", "--out", "{tmp}/none", "--resume"], "drop --resume"),
    (["train", "--data", "builtin:ring8", "--family", "dcgan", "--out", "{tmp}/r"], "use --family gan"),
    (["sample", "--ckpt", "{tmp}", "--out", "{tmp}/x.png"], "holds no checkpoint"),
])
def test_bad_arguments_end_with_one_line_that_names_the_fix(argv, fix, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fix in err[0], err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--steps", "many", "--out", "x"])
    assert e.value.code == 2


def test_every_verb_has_help_with_examples(capsys):
    for argv in (["--help"], ["train", "--help"], ["sample", "--help"], ["data", "inspect", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        assert "example" in capsys.readouterr().out


def test_resume_continues_to_the_new_total(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", "builtin:digits", "--steps", "3", "--out", str(out), *FAST]) == 0
    assert main(["train", "--data", "builtin:digits", "--steps", "3", "--out", str(out), *FAST]) == 2  # exists
    assert main(["train", "--out", str(out), "--steps", "5", "--resume", "--quiet"]) == 0
    assert read_checkpoint(out)["state"]["step"] == 5


def test_data_inspect(tmp_path, capsys):
    data = make_messy_folder(tmp_path / "cars")
    assert main(["data", "inspect", str(data)]) == 0
    out = capsys.readouterr().out
    assert "broken.jpg" in out and "cut.png" in out and "12" in out
    assert main(["data", "inspect", "builtin:digits"]) == 0
    assert "1797" in capsys.readouterr().out


def test_kill_9_loses_at_most_one_checkpoint_interval(tmp_path):
    """SIGKILL in the middle of training, then --resume: every checkpoint on disk stays readable."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganforge.cli.main", "train", "--data", "builtin:ring8", "--family", "gan",
           "--recipe", "none", "--steps", "100000", "--out", str(out), "--quiet", "--set", "log.ckpt_every=10",
           "--set", "log.tensorboard=false", "--set", "log.keep_last=2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        ckpts = list_checkpoints(out)
        if ckpts and int(ckpts[-1].name[5:]) >= 30:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ckpts = list_checkpoints(out)
    assert ckpts, proc.stderr.read().decode()
    for ck in ckpts:  # every checkpoint that exists is complete and loads
        read_checkpoint(ck)
    last = int(ckpts[-1].name[5:])
    log_steps = [json.loads(line).get("step", 0) for line in (out / "log.jsonl").read_text().splitlines()]
    assert max(log_steps) - last < 10 + 1  # lost at most one interval
    assert main(["train", "--out", str(out), "--steps", str(last + 5), "--resume", "--quiet"]) == 0
    assert read_checkpoint(out)["state"]["step"] == last + 5


def test_python_dash_m_ganforge_is_the_same_command(tmp_path):
    # `python -m ganforge` is what `torchrun -m ganforge train ...` runs
    out = subprocess.run([sys.executable, "-m", "ganforge", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--family" in out.stdout and "--resume" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ganforge", "train", "--data", "builtin:nope", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "builtin:" in bad.stderr


def test_train_help_lists_every_builtin_dataset(capsys):
    from ganforge.data import builtin_names

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    words = {word.rstrip(",") for word in capsys.readouterr().out.split()}
    missing = [name for name in builtin_names() if name not in words]
    assert not missing  # whole words: a name wrapped over two lines would be missing too


@pytest.mark.parametrize("argv,setting", [
    (["--set", "train.lr_g=-1"], "train.lr_g must be > 0"),
    (["--steps", "-1"], "train.steps (--steps) must be >= 0"),
    (["--batch-size", "0"], "train.batch_size (--batch-size) must be >= 1"),
    (["--set", "train.beta1=1"], "train.beta1 must be in [0, 1)"),
    (["--set", "train.ema_decay=1.5"], "train.ema_decay must be in [0, 1)"),
    (["--set", "eval.every=-5"], "eval.every must be >= 0"),
    (["--set", "train.device=gpu"], "train.device must be"),
])
def test_bad_settings_leave_no_run_folder(argv, setting, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "builtin:digits", "--out", str(out), *argv, *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ganforge train: error: {setting}"), err
    assert not out.exists()


def test_symlink_loop_is_named_by_inspect_and_skipped_by_train(tmp_path, capsys):
    data = make_messy_folder(tmp_path / "cars")
    os.symlink("loop_b", data / "loop_a.png")
    os.symlink("loop_a.png", data / "loop_b")
    assert main(["data", "inspect", str(data)]) == 0
    out = capsys.readouterr().out
    assert "loop_a.png (symlink to 'loop_b': Too many levels of symbolic links)" in out
    with pytest.warns(UserWarning, match="loop_a.png"):
        rc = main(["train", "--data", str(data), "--size", "16", "--steps", "1", "--batch-size", "4",
                   "--out", str(tmp_path / "run"), *FAST])
    assert rc == 0


@pytest.mark.parametrize("size,shape", [("12", [12, 12]), ("12x8", [12, 8])])
def test_a_size_given_as_one_number_or_hxw_in_set_still_trains(size, shape, tmp_path):
    """data.size from YAML or --set may be 64 or "96x64"; it is read as [H, W] before the settings are checked."""
    out = tmp_path / "run"
    assert main(["train", "--data", "builtin:digits", "--out", str(out), "--set", f"data.size={size}", *FAST]) == 0
    assert json.loads((out / "config.json").read_text())["data"]["size"] == shape
