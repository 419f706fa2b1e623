"""Shared fixtures: tiny run configs and an isolated ganforge cache."""

from __future__ import annotations

import ast
import os

import pytest
import torch

from ganforge.config import from_dict
from ganforge.families import FAMILIES, AdversarialFamily
from ganforge.families.ae import AE
from ganforge.families.translation import TranslationFamily

# the families that generate images or points from latents; the image-to-image ones, the table ones
# (needs == "table": fatgan, ctgan) and the audio ones (needs == "audio") have their own tests
NOISE_FAMILIES = sorted(f for f, cls in FAMILIES.items()
                        if not issubclass(cls, TranslationFamily) and cls.needs not in ("table", "audio")
                        and issubclass(cls, AdversarialFamily))
# the autoencoder families (ae, vae, aae: no adversarial loss to choose) have their own tests
AUTOENCODER_FAMILIES = sorted(f for f, cls in FAMILIES.items() if issubclass(cls, AE))
TABLE_FAMILIES = sorted(f for f, cls in FAMILIES.items() if cls.needs == "table")
AUDIO_FAMILIES = sorted(f for f, cls in FAMILIES.items() if cls.needs == "audio")  # wavegan, cwavegan, specgan


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))


def tiny_config(family: str = "dcgan", source: str = "builtin:digits", steps: int = 6, **sections):
    """A run config small enough for a unit test: few steps, small nets, no progress output."""
    data = {
        "family": family,
        "model": ({"width": 8} if family in ("dcgan", "cgan", "acgan", "infogan")
                  else {"width": 8, "latent_dim": 8, "proj_dim": 8, "d_hidden": 16} if family == "gan-int-cls"
                  # stackgan: Stage-I for 2 steps, then Stage-II
                  else {"width": 8, "latent_dim": 8, "proj_dim": 8, "d_hidden": 16, "c_dim": 8, "s2_width": 8,
                        "stage1_steps": 2} if family == "stackgan"
                  else {"width": 4, "max_width": 16, "latent_dim": 8} if family == "fastgan"
                  else {"width": 4, "max_width": 8, "latent_dim": 8, "w_dim": 8} if family == "stylegan"
                  # progan: level 0 for 16 images (one step at batch 16), then the next level fades in over 32
                  else {"width": 4, "max_width": 8, "latent_dim": 8, "stable_kimg": 0.016, "fade_kimg": 0.032}
                  if family == "progan"
                  else {"hidden": 32, "depth": 2, "latent_dim": 8, "d_hidden": [32, 16], "labels_per_class": 2}
                  if family == "sgan"
                  else {"width": 8, "latent_dim": 8} if family in ("ae", "vae", "vaegan")
                  else {"width": 8, "latent_dim": 8, "d_hidden": 16} if family == "aae"
                  else {"width": 4, "feature_dim": 8, "d_hidden": 8} if family == "dann"
                  else {"width": 2, "latent_dim": 8} if family in ("wavegan", "cwavegan")
                  else {"width": 4, "max_width": 8, "latent_dim": 8} if family == "specgan"
                  else {"hidden": 32, "depth": 2, "latent_dim": 8}),
        "data": {"source": source},
        "train": {"steps": steps, "batch_size": 16},
        "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 1, "progress": False, "tensorboard": False},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return from_dict(data)


def training_state(trainer) -> dict:
    """Every tensor a resumed run must reproduce: the family's weights and buffers, the EMA, optimizer states."""
    state = {f"model.{k}": v for k, v in trainer.family.state_dict().items()}
    state.update({f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()})
    for ph, opt in trainer.optimizers.items():
        for i, s in opt.state_dict()["state"].items():
            for k, v in s.items():
                state[f"opt.{ph}.{i}.{k}"] = v
    return state


def split_and_resume(make, tmp_path, n: int):
    """Train 2n steps in one go, and n steps then a resume to 2n: `make(steps, out, resume)` builds the run.
    Returns (full, resumed) after checking that both runs end with bit-identical state."""
    full = make(2 * n, tmp_path / "full", False).fit()
    make(n, tmp_path / "split", False).fit()
    resumed = make(2 * n, tmp_path / "split", True)
    assert resumed.step == n
    resumed.fit()
    assert_same_state(full, resumed)
    return full, resumed


def assert_same_state(a_trainer, b_trainer) -> None:
    """Both trainers hold bit-identical weights, EMA and optimizer state."""
    a, b = training_state(a_trainer), training_state(b_trainer)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def imports_of(source: str) -> tuple[set[str], list[tuple[int, str | None, list[str]]]]:
    """(top-level modules imported absolutely, [(level, module, names)] of relative imports) of Python source."""
    top, relative = set(), []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            top |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.append((node.level, node.module, [a.name for a in node.names]))
            else:
                top.add(node.module.split(".")[0])
    return top, relative
