"""Precision and speed switches: train.precision (auto | fp32 | bf16), channels_last, compile, frozen D in G's phase."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from ganforge.config import TrainConfig
from ganforge.losses import gradient_penalty, r1_penalty
from ganforge.train import build_run, hardware
from ganforge.train.hardware import resolve_precision

from .conftest import assert_same_state, tiny_config


def _tc(**kw) -> TrainConfig:
    return TrainConfig(**kw)


def test_auto_is_bf16_for_images_on_native_hardware_and_fp32_otherwise(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "native_bf16", lambda d: "CPU AMX")
    assert resolve_precision(_tc(), cpu, "image") == ("bf16", "auto: CPU AMX")
    assert resolve_precision(_tc(), cpu, "points")[0] == "fp32"  # MLPs on coordinates: no gain, less precision
    monkeypatch.setattr(hardware, "native_bf16", lambda d: None)
    assert resolve_precision(_tc(), cpu, "image")[0] == "fp32"  # emulated bf16 would be slower
    assert resolve_precision(_tc(precision="bf16"), cpu, "image")[0] == "bf16"  # asked for: honoured
    assert resolve_precision(_tc(precision="fp32"), cpu, "image")[0] == "fp32"


def test_avx512_bf16_without_amx_is_measured_not_assumed(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "native_bf16", lambda d: "CPU AVX512-BF16")
    monkeypatch.setattr(hardware, "bf16_conv_speedup", lambda: 0.68)  # an Intel Xeon's measured ratio
    precision, why = resolve_precision(_tc(), cpu, "image")
    assert precision == "fp32" and "0.68x" in why
    monkeypatch.setattr(hardware, "bf16_conv_speedup", lambda: hardware.BF16_MIN_SPEEDUP)  # at the threshold: bf16
    assert resolve_precision(_tc(), cpu, "audio")[0] == "bf16"
    assert resolve_precision(_tc(), cpu, "points")[0] == "fp32"  # no timing decides for MLPs on coordinates
    assert resolve_precision(_tc(precision="bf16"), cpu, "image")[0] == "bf16"  # asked for: no measuring overrides


def test_bf16_conv_speedup_is_a_positive_ratio_measured_once_per_process(monkeypatch):
    monkeypatch.setattr(hardware, "_speedup_cache", {})
    rng = torch.get_rng_state()
    with torch.no_grad():  # the timing needs gradients, and a caller under no_grad does not take them away
        first = hardware.bf16_conv_speedup(rounds=1)
    assert 0.01 < first < 100  # a ratio of two timings of the same work, not a count or a time
    assert torch.equal(torch.get_rng_state(), rng)  # a run seeded before the timing draws the same noise
    calls = []
    monkeypatch.setattr(hardware.time, "perf_counter", lambda: calls.append(1) or 0.0)
    assert hardware.bf16_conv_speedup() == first  # cached: the clock is not read again
    assert not calls


def test_resume_keeps_the_precision_auto_started_with_and_stays_bit_exact(monkeypatch, tmp_path):
    def cfg(steps):
        return tiny_config("dcgan", steps=steps, train={"steps": steps, "batch_size": 16, "channels_last": False})

    monkeypatch.setattr(hardware, "native_bf16", lambda d: "CPU AVX512-BF16")
    monkeypatch.setattr(hardware, "bf16_conv_speedup", lambda: 1.6)
    full = build_run(cfg(4), tmp_path / "full").fit()
    assert full.precision == "bf16"
    build_run(cfg(2), tmp_path / "split").fit()
    monkeypatch.setattr(hardware, "bf16_conv_speedup", lambda: 0.7)  # the resumed session measures otherwise
    assert build_run(cfg(4), tmp_path / "fresh").precision == "fp32"
    resumed = build_run(cfg(4), tmp_path / "split", resume=True)
    assert resumed.precision == "bf16" and "kept from the run's start" in resumed.precision_reason
    assert any(e["event"] == "warning" and "picks fp32 on this machine" in e["message"] for e in resumed.events)
    resumed.fit()
    assert_same_state(full, resumed)
    asked = build_run(tiny_config("dcgan", steps=4, train={"steps": 4, "batch_size": 16, "precision": "fp32"}),
                      tmp_path / "split", resume=True)
    assert asked.precision == "fp32"  # precision asked for by name is honoured on resume
    legacy = build_run(tiny_config("dcgan", steps=4, train={"steps": 4, "batch_size": 16, "amp": "none"}),
                       tmp_path / "split", resume=True)
    assert legacy.precision == "fp32"  # so is the old spelling train.amp


def test_old_amp_spelling_still_reads_and_bad_values_name_the_choices():
    cpu = torch.device("cpu")
    assert resolve_precision(_tc(amp="none"), cpu, "image")[0] == "fp32"  # runs saved before train.precision
    assert resolve_precision(_tc(amp="bf16"), cpu, "points")[0] == "bf16"
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        resolve_precision(_tc(precision="fp16"), cpu, "image")
    with pytest.raises(ValueError, match="train.amp must be"):
        resolve_precision(_tc(amp="fp16"), cpu, "image")


def test_bf16_training_keeps_fp32_weights_and_losses(tmp_path):
    trainer = build_run(tiny_config("dcgan", steps=2, train={"precision": "bf16"}), tmp_path)
    assert trainer.precision == "bf16"
    batch = trainer.loader.next_batch()
    with trainer.autocast():
        for phase in ("d", "g"):
            out = trainer.family.loss(phase, batch)
            assert out.loss.dtype == torch.float32, phase
    trainer.fit()
    assert all(p.dtype == torch.float32 for p in trainer.family.parameters())
    assert all(p.requires_grad for ph in ("d", "g") for p in trainer.params[ph])  # D unfrozen after G's phase
    for opt in trainer.optimizers.values():
        for state in opt.state.values():
            assert state["exp_avg"].dtype == torch.float32


class _Linear(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.flatten(1), self.w[None]).squeeze(1)


def test_penalties_are_fp32_inside_bf16_autocast():
    # a linear critic D(x) = w.x has grad_x D = w everywhere: WGAN-GP = (|w| - 1)^2 and R1 = |w|^2 exactly
    torch.manual_seed(0)
    w = torch.randn(3 * 8 * 8) * 0.0371
    critic = _Linear(w.clone())
    real, fake = torch.rand(16, 3, 8, 8) * 2 - 1, torch.rand(16, 3, 8, 8) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(critic, real, fake.bfloat16())
        r1 = r1_penalty(critic, real)
    assert gp.dtype == r1.dtype == torch.float32
    assert float(gp) == pytest.approx(float((w.norm() - 1) ** 2), rel=1e-5)
    assert float(r1) == pytest.approx(float(w.pow(2).sum()), rel=1e-5)
    # bf16 gradients would be off in the third digit: the check above could fail
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = critic(real.bfloat16().requires_grad_(True))
    assert out.dtype == torch.bfloat16


def test_channels_last_default_sets_the_conv_weights_and_keeps_results(tmp_path):
    a = build_run(tiny_config("dcgan", steps=3, train={"precision": "fp32"}), tmp_path / "cl")
    assert a.cfg.train.channels_last
    conv = [m for m in a.family.modules() if isinstance(m, nn.Conv2d)][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    a.fit()  # before the next build_run, which reseeds the global RNG
    b = build_run(tiny_config("dcgan", steps=3, train={"precision": "fp32", "channels_last": False}), tmp_path / "nchw")
    b.fit()
    for (k, x), y in zip(a.family.state_dict().items(), b.family.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=k)


def test_g_phase_leaves_d_gradients_alone(tmp_path):
    trainer = build_run(tiny_config("dcgan", steps=1, train={"precision": "fp32"}), tmp_path)
    fam = trainer.family
    seen = []
    fam.D.register_full_backward_hook(lambda m, gi, go: seen.append(any(p.requires_grad for p in m.parameters())))
    trainer.train_step()
    # D backpropagates twice (its own phase, then G's through it): trainable in the first, frozen in the second
    assert seen[0] is True and seen[-1] is False


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("cc") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")
def test_compile_matches_eager_and_keeps_checkpoint_names(tmp_path):
    eager = build_run(tiny_config("dcgan", steps=2, train={"precision": "fp32"}), tmp_path / "eager").fit()
    comp = build_run(tiny_config("dcgan", steps=2, train={"precision": "fp32", "compile": True}), tmp_path / "c").fit()
    assert comp.compiled == ["G", "D"]
    a, b = eager.family.state_dict(), comp.family.state_dict()
    assert a.keys() == b.keys()  # compiled in place: checkpoints load into eager models
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    gp = build_run(tiny_config("dcgan", steps=0, model={"width": 8, "loss": "wgan-gp", "d_batchnorm": False},
                               train={"compile": True}), tmp_path / "gp")
    assert gp.compiled == ["G"]  # a double backward cannot go through a compiled D
