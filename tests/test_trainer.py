"""The trainer: exact resume, atomic checkpoints, rollback on NaN, interrupts, health warnings."""

import json
import os
import signal

import pytest
import torch

from ganforge.checkpoint import list_checkpoints, read_checkpoint
from ganforge.families.gan import GAN
from ganforge.train import Callback, MetricsLogger, TrainingStopped, build_run
from ganforge.train.health import HealthMonitor

from .conftest import assert_same_state, tiny_config


@pytest.mark.parametrize("family,source,model,train", [
    ("dcgan", "builtin:digits", {}, {}),
    ("gan", "builtin:ring8", {"loss": "wgan-gp", "n_critic": 2}, {}),
    ("gan", "builtin:ring8", {"r1_weight": 1.0}, {"lr_decay": "linear", "lr_decay_start": 0.2}),
    ("cgan", "builtin:digits", {"projection": True, "r1_weight": 1.0}, {}),
    ("acgan", "builtin:digits", {}, {}),
    ("infogan", "builtin:digits", {}, {}),
    ("sgan", "builtin:digits", {}, {}),
    ("sgan", "builtin:digits", {"supervised_only": True}, {}),
])
def test_resume_is_bit_exact(family, source, model, train, tmp_path):
    n = 5

    def cfg(steps):
        return tiny_config(family, source, steps=steps, model=model, train={"steps": steps, "batch_size": 16, **train})

    full = build_run(cfg(2 * n), tmp_path / "full").fit()
    # a decay schedule follows train.steps, so that split run is told 2n and stopped by hand after n
    if train.get("lr_decay", "none") != "none":
        first = build_run(cfg(2 * n), tmp_path / "split")
        for _ in range(n):
            first.train_step()
        first.save_checkpoint()
    else:
        build_run(cfg(n), tmp_path / "split").fit()
    resumed = build_run(cfg(2 * n), tmp_path / "split", resume=True)
    assert resumed.step == n
    resumed.fit()
    assert_same_state(full, resumed)
    assert full.loader.state_dict() == resumed.loader.state_dict()


def test_linear_lr_decay_schedule(tmp_path):
    cfg = tiny_config("gan", "builtin:ring8", steps=10,
                      train={"steps": 10, "batch_size": 16, "lr_g": 1e-3, "lr_d": 4e-3,
                             "lr_decay": "linear", "lr_decay_start": 0.6})
    trainer = build_run(cfg, tmp_path)
    seen = []
    for _ in range(10):
        trainer.train_step()
        seen.append((trainer.optimizers["g"].param_groups[0]["lr"], trainer.optimizers["d"].param_groups[0]["lr"]))
    # flat for steps 0..5, then 1 - (step - 6) / 4 for steps 6..9
    expect = [1.0] * 6 + [1.0, 0.75, 0.5, 0.25]
    assert [g for g, _ in seen] == pytest.approx([1e-3 * f for f in expect])
    assert [d for _, d in seen] == pytest.approx([4e-3 * f for f in expect])
    with pytest.raises(ValueError, match="lr_decay"):
        build_run(tiny_config("gan", "builtin:ring8", train={"lr_decay": "cosine"}), tmp_path / "bad")


def test_checkpoint_layout_and_keep_last(tmp_path):
    cfg = tiny_config("gan", "builtin:ring8", steps=10, log={"ckpt_every": 2, "keep_last": 2})
    build_run(cfg, tmp_path).fit()
    ckpts = list_checkpoints(tmp_path)
    assert [p.name for p in ckpts] == ["step_00000008", "step_00000010"]
    assert sorted(f.name for f in ckpts[-1].iterdir()) == [
        "config.json", "ema.safetensors", "model.safetensors", "optim.pt", "state.json"]
    ck = read_checkpoint(tmp_path)
    assert ck["state"]["step"] == 10 and ck["config"]["family"] == "gan"
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 10


def test_crash_during_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    cfg = tiny_config("gan", "builtin:ring8", steps=4, log={"ckpt_every": 2})
    trainer = build_run(cfg, tmp_path).fit()
    good = read_checkpoint(tmp_path)
    trainer.step += 1

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    assert [p.name for p in list_checkpoints(tmp_path)][-1] == "step_00000004"
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    again = read_checkpoint(tmp_path)
    for k, v in good["model"].items():
        assert torch.equal(v, again["model"][k])


class NaNAt(GAN):
    """A GAN whose D loss is NaN at the given steps (counted in calls), to exercise rollback."""

    bad_calls: set = set()
    calls = 0

    def loss(self, phase, batch, ctx=None):
        out = super().loss(phase, batch, ctx)
        if phase == "d":
            type(self).calls += 1
            if type(self).calls in self.bad_calls:
                out.loss = out.loss * float("nan")
        return out


def _nan_trainer(tmp_path, bad_calls, steps=8):
    cfg = tiny_config("gan", "builtin:ring8", steps=steps, log={"ckpt_every": 3})
    trainer = build_run(cfg, tmp_path)
    NaNAt.bad_calls, NaNAt.calls = set(bad_calls), 0
    trainer.family.__class__ = NaNAt
    return trainer


def test_nan_rolls_back_to_the_last_checkpoint_and_continues(tmp_path):
    trainer = _nan_trainer(tmp_path, bad_calls={5})
    trainer.fit()
    assert trainer.step == 8
    rollbacks = [e for e in trainer.events if e["event"] == "rollback"]
    assert len(rollbacks) == 1 and "rolled back to step 3" in rollbacks[0]["message"]
    assert all(torch.isfinite(p).all() for p in trainer.family.parameters())
    assert trainer.optimizers["d"].param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "rollback" for r in log)


def test_persistent_nan_stops_after_three_rollbacks(tmp_path):
    trainer = _nan_trainer(tmp_path, bad_calls=set(range(2, 100)))
    with pytest.raises(TrainingStopped, match="stopped after 3 rollbacks"):
        trainer.fit()
    assert trainer.rollbacks == 3
    # the diverged state is not checkpointed: every checkpoint left is finite, and an event names the step
    assert not all(torch.isfinite(p).all() for p in trainer.family.parameters())  # it did diverge
    for ck in list_checkpoints(tmp_path):
        read_checkpoint(ck)  # refuses non-finite weights
    skipped = [e for e in trainer.events if e["event"] == "warning" and e["message"].startswith("no checkpoint")]
    assert [e["step"] for e in skipped] == [trainer.step]
    assert skipped[0]["message"].startswith(f"no checkpoint written at step {trainer.step}: ")
    assert list_checkpoints(tmp_path)[-1].name < f"step_{trainer.step:08d}"


class FailsAtEnd(Callback):
    def on_train_end(self, trainer, interrupted):
        raise OSError(28, "No space left on device")


def test_an_error_at_train_end_does_not_replace_the_one_that_stopped_training(tmp_path):
    trainer = _nan_trainer(tmp_path, bad_calls=set(range(2, 100)))
    trainer.callbacks.insert(0, FailsAtEnd())
    with pytest.raises(TrainingStopped) as e:
        trainer.fit()
    assert e.value.__notes__ == ["then FailsAtEnd.on_train_end failed too: [Errno 28] No space left on device"]
    logger = next(cb for cb in trainer.callbacks if isinstance(cb, MetricsLogger))
    assert logger._file is None  # the other callbacks still ended: the log is closed


class SigintAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, step, logs):
        if step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_after_the_step_with_a_checkpoint(tmp_path):
    cfg = tiny_config("gan", "builtin:ring8", steps=50, log={"ckpt_every": 100})
    trainer = build_run(cfg, tmp_path)
    trainer.callbacks.append(SigintAt(4))
    trainer.fit()
    assert trainer.step == 4 and "SIGINT" in trainer.stop_reason  # the signal came after step 4
    assert list_checkpoints(tmp_path)[-1].name == "step_00000004"
    assert [e["event"] for e in trainer.events if e["event"] != "summary"] == ["interrupt"]


class FakeTrainer:
    def __init__(self):
        self.events = []

    def event(self, kind, message):
        self.events.append((kind, message))


def _feed(monitor, trainer, n, **logs):
    for _ in range(n):
        monitor.on_step_end(trainer, 10_000, dict(logs))


def test_health_warns_once_when_d_overpowers_and_g_gradient_vanishes():
    cfg = tiny_config().health
    mon, tr = HealthMonitor(cfg), FakeTrainer()
    ok = {"d/acc_real": 0.7, "d/acc_fake": 0.7, "stats/real_spread": 1.0, "stats/fake_spread": 0.9}
    _feed(mon, tr, cfg.window, **ok, **{"g/grad_norm": 1.0})
    _feed(mon, tr, cfg.window - 1, **{**ok, "d/acc_real": 0.99, "d/acc_fake": 0.99, "g/grad_norm": 1e-4})
    assert tr.events == []
    _feed(mon, tr, 5, **{**ok, "d/acc_real": 0.99, "d/acc_fake": 0.99, "g/grad_norm": 1e-4})
    assert len(tr.events) == 1 and "overpowering" in tr.events[0][1] and "vanishing gradient" in tr.events[0][1]


def test_health_no_warning_when_g_still_gets_gradient():
    cfg = tiny_config().health
    mon, tr = HealthMonitor(cfg), FakeTrainer()
    _feed(mon, tr, 3 * cfg.window, **{"d/acc_real": 0.99, "d/acc_fake": 0.99, "g/grad_norm": 1.0,
                                       "stats/real_spread": 1.0, "stats/fake_spread": 0.8})
    assert tr.events == []


def test_health_warns_on_collapsed_fake_spread():
    cfg = tiny_config().health
    mon, tr = HealthMonitor(cfg), FakeTrainer()
    _feed(mon, tr, cfg.window + 10, **{"stats/real_spread": 1.0, "stats/fake_spread": 0.01})
    assert [k for k, _ in tr.events] == ["health"] and "mode collapse" in tr.events[0][1]


def test_health_spread_check_waits_for_the_warmup():
    cfg = tiny_config().health
    mon, tr = HealthMonitor(cfg), FakeTrainer()
    for step in range(1, cfg.warmup + 1):
        mon.on_step_end(tr, step, {"stats/real_spread": 1.0, "stats/fake_spread": 0.01})
    assert tr.events == [] and mon.collapse_ratios == []


def test_health_warns_when_the_spread_hovers_below_the_threshold_more_often_than_not():
    # a collapsing G's ratio wanders across the threshold: 0.15 on 3 steps in 5, 0.25 on the others. Counting steps
    # in a row never reached a window of them; the window's median (0.15) does
    cfg = tiny_config().health
    mon, tr = HealthMonitor(cfg), FakeTrainer()
    for i in range(cfg.window - 1):
        mon.on_step_end(tr, 10_000 + i, {"stats/real_spread": 1.0, "stats/fake_spread": 0.15 if i % 5 < 3 else 0.25})
    assert tr.events == []  # not a full window yet
    mon.on_step_end(tr, 20_000, {"stats/real_spread": 1.0, "stats/fake_spread": 0.25})
    assert len(tr.events) == 1 and "15.0%" in tr.events[0][1]
    assert f"median of the last {cfg.window} logged batches" in tr.events[0][1]
    # a healthy run with dips: below the threshold on 2 steps in 5, well above it otherwise
    mon, tr = HealthMonitor(cfg), FakeTrainer()
    for i in range(5 * cfg.window):
        mon.on_step_end(tr, 10_000 + i, {"stats/real_spread": 1.0, "stats/fake_spread": 0.1 if i % 5 < 2 else 0.6})
    assert tr.events == []


def test_health_warns_on_growing_oscillation_and_not_on_steady_noise():
    import math as m

    cfg = tiny_config().health
    mon, tr = HealthMonitor(cfg), FakeTrainer()
    for i in range(6 * cfg.window):  # constant amplitude: healthy noise
        mon.on_step_end(tr, 10_000 + i, {"d/adv": 0.7 + 0.1 * m.sin(i)})
    assert tr.events == []
    mon = HealthMonitor(cfg)
    for i in range(6 * cfg.window):  # amplitude doubling every window
        amp = 0.01 * 2 ** (i // cfg.window)
        mon.on_step_end(tr, 10_000 + i, {"d/adv": 0.7 + amp * m.sin(i)})
    assert len(tr.events) == 1 and "growing amplitude" in tr.events[0][1]


def test_health_summary_reports_the_band():
    mon = HealthMonitor(tiny_config().health)
    for i in range(10):
        mon.on_step_end(FakeTrainer(), 1, {"d/adv": 0.6, "d/acc_real": 0.99, "d/acc_fake": 0.97})
    text = mon.summary("ns")
    assert "D accuracy 98%" in text and "D loss 0.60" in text and "D is winning" in text


def test_health_state_survives_resume():
    cfg = tiny_config().health
    mon = HealthMonitor(cfg)
    mon.warned.add("mode_collapse")
    mon.early_g_grad = [1.0, 2.0]
    other = HealthMonitor(cfg)
    other.load_state_dict(json.loads(json.dumps(mon.state_dict())))
    assert other.state_dict() == mon.state_dict()


def test_mode_collapse_is_detected_in_a_real_run(tmp_path):
    """A generator forced to output a constant is flagged while training."""
    cfg = tiny_config("gan", "builtin:ring8", steps=30, health={"window": 10, "warmup": 5})
    trainer = build_run(cfg, tmp_path)
    with torch.no_grad():
        last = trainer.family.G.net[-1]
        last.weight.zero_()
    last.weight.requires_grad_(False)
    trainer.fit()
    assert any("mode collapse" in e["message"] for e in trainer.events)
