"""Evaluation engine: real and generated sets -> features -> metrics, each result with its provenance.

Used by `ganforge evaluate`, the evaluation callback during training and the benchmarks. Reference
features are cached under the ganforge cache, keyed by the data's hash and the extractor's weights hash,
so the real side is extracted once per (dataset, extractor, n, seed).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..cache import cache_root
from ..data.store import TensorData
from .base import MetricResult, Provenance, SampleSet
from .memorisation import PIXEL_SIDE, Reference, downscale, leave_one_out_label, pixel_space
from .registry import METRICS, MetricInputs

BATCH = 512   # samples generated / converted per step: a multiple of the sampler's and extractors' batches
def data_sha256(data: TensorData, index: Tensor) -> str:
    """Hash of the chosen real samples (and their order), to key caches and record provenance."""
    h = hashlib.sha256(data.source.encode())
    h.update(np.ascontiguousarray(data.x[index].numpy()).tobytes())
    return h.hexdigest()


def _pick(n_total: int, n: int, seed: int) -> Tensor:
    if n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


def _extract(extractor, images: Callable[[int, int], Tensor], n: int, batch: int) -> tuple[Tensor, Tensor | None]:
    feats, logits = [], []
    for start in range(0, n, batch):
        f, lg = extractor.features_and_logits(images(start, min(n, start + batch)))
        feats.append(f.float().cpu())
        if lg is not None:
            logits.append(lg.float().cpu())
    return torch.cat(feats), (torch.cat(logits) if logits else None)


def real_set(data: TensorData, extractor, n: int, seed: int = 0, keep_images: bool = False,
             batch: int = BATCH, cache: bool = True) -> SampleSet:
    """Features of up to n real samples (a seeded subset), cached by data hash + extractor hash."""
    index = _pick(len(data), n, seed)
    sha = data_sha256(data, index)
    if extractor is None:  # points: the rows are the features
        x = data.to_float(data.x[index])
        return SampleSet(f"{data.spec.name}", x, None, None, data.y[index] if data.y is not None else None, sha)
    key = hashlib.sha256(f"{sha}:{extractor.name}:{extractor.weights_hash}:{extractor.resize}".encode()).hexdigest()
    path = cache_root() / "features" / f"{key}.npz"
    feats = logits = None
    if cache and path.exists():
        try:
            with np.load(path) as z:
                feats = torch.from_numpy(z["features"])
                logits = torch.from_numpy(z["logits"]) if "logits" in z.files else None
        except (OSError, ValueError, KeyError):
            feats = None  # a damaged cache entry: extract again
    if feats is None:
        feats, logits = _extract(extractor, lambda a, b: data.to_float(data.x[index[a:b]]), len(index), batch)
        if cache:
            _save_npz(path, features=feats.numpy(), **({"logits": logits.numpy()} if logits is not None else {}))
    images = data.to_float(data.x[index]) if keep_images else None
    return SampleSet(data.spec.name, feats, logits, images, data.y[index] if data.y is not None else None, sha)


def fake_set(generate: Callable[[int, int], Tensor], n: int, extractor, keep_images: bool = False,
             batch: int = BATCH, name: str = "generated", keep_side: int | None = None) -> SampleSet:
    """Features of n generated samples; `generate(start, stop)` returns samples start..stop-1.

    keep_side: the kept images are downscaled to this long side when larger (memorisation's pixel
    distances need no more; 10,000 kept 256x256 RGB samples would be 7.9 GB)."""
    if extractor is None:
        x = torch.cat([generate(a, min(n, a + batch)) for a in range(0, n, batch)])
        return SampleSet(name, x.float())
    kept: list[Tensor] = []

    def images(a: int, b: int) -> Tensor:
        x = generate(a, b)
        if keep_images:
            kept.append(x.cpu() if keep_side is None else downscale(x.cpu(), keep_side))
        return x

    feats, logits = _extract(extractor, images, n, batch)
    return SampleSet(name, feats, logits, torch.cat(kept) if kept else None)


def _pixel_rows(data: TensorData, index: Tensor, side: int, batch: int = BATCH) -> Tensor:
    return torch.cat([downscale(data.to_float(data.x[index[a:a + batch]]), side).flatten(1)
                      for a in range(0, len(index), batch)])


def memorisation_reference(train: TensorData, extractor, heldout: TensorData | None = None, *, n: int = 10000,
                           seed: int = 0, side: int = PIXEL_SIDE, training: str = "", heldout_name: str = "",
                           batch: int = BATCH, cache: bool = True) -> Reference:
    """What the 'memorisation' metric measures samples against: every image of `train` and up to n
    held-out images (a seeded subset of `heldout`).

    Without `heldout`, or when it holds the very images of `train` (a folder, builtin:digits' test split),
    the held-out side is a seeded subset of n training images, each matched against the other training
    images (train-vs-train, leave-one-out), and the Reference says so. Features go through real_set
    (cached by data and extractor hash); pixel rows are [-1, 1] images, downscaled to `side` when larger.
    """
    if train.spec.kind != "image" or extractor is None:
        raise ValueError("the memorisation check measures image data with a feature extractor")
    every = torch.arange(len(train))
    tr = real_set(train, extractor, len(train), seed=seed, batch=batch, cache=cache)
    train_pixels = _pixel_rows(train, every, side, batch)
    shape = tuple(train.spec.shape)
    small = tuple(downscale(train.to_float(train.x[:1]), side).shape[1:])
    training = training or f"{train.source} ({len(train)} images)"
    same = heldout is None or (heldout.x.shape == train.x.shape and torch.equal(heldout.x, train.x))
    if same:
        pick = _pick(len(train), n, seed + 1)
        return Reference(tr.features, train_pixels, tr.features[pick], train_pixels[pick], small,
                         pixel_space(shape, side), heldout_in_train=pick, training=training,
                         heldout=leave_one_out_label(len(pick), len(train)), training_sha256=tr.sha256, side=side)
    if tuple(heldout.spec.shape) != shape:
        raise ValueError(f"held-out images of shape {tuple(heldout.spec.shape)} cannot be compared with training "
                         f"images of shape {shape}")
    ho = real_set(heldout, extractor, n, seed=seed, batch=batch, cache=cache)
    ho_pixels = _pixel_rows(heldout, _pick(len(heldout), n, seed), side, batch)
    name = heldout_name or heldout.source
    return Reference(tr.features, train_pixels, ho.features, ho_pixels, small, pixel_space(shape, side),
                     training=training, heldout=f"{name} ({len(ho)} of {len(heldout)} images)",
                     training_sha256=tr.sha256, side=side)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)


def compute(names: list[str], real: SampleSet, fake: SampleSet, provenance: Provenance, *, seed: int = 0,
            n_classes: int = 0, mixture: str | None = None,
            memorisation: Reference | None = None) -> dict[str, MetricResult]:
    """Every requested metric on (real, fake) through its METRICS entry; one MetricResult each.

    A metric that cannot run says why. `mixture` names the 2-D mixture of points data (for 'modes');
    `memorisation` the training and held-out images of the 'memorisation' check (memorisation_reference();
    without it the real set stands in for the training set, leave-one-out).
    """
    inputs = MetricInputs(tuple(names), seed=seed, n_classes=n_classes, mixture=mixture, memorisation=memorisation)
    out: dict[str, MetricResult] = {}
    for name in names:
        info = METRICS.get(name)
        if info is None or info.compute is None:
            raise ValueError(f"metric {name!r} is not measured on sample sets; choose from: "
                             + ", ".join(n for n, m in METRICS.items() if m.compute is not None))
        values = info.compute(real, fake, inputs)
        prov = Provenance(**provenance.to_dict())
        prov.n_real, prov.n_fake = len(real), len(fake)
        details = dict(inputs.details.pop(name, {}))  # a metric's own reference and extras (memorisation)
        for key in ("n_real", "reference", "reference_sha256"):
            if key in details:
                setattr(prov, key, details.pop(key))
        prov.extra = {**prov.extra, "description": info.description, **details}
        out[name] = MetricResult(name, {k: float(v) for k, v in values.items()}, info.higher_is_better, prov)
    return out


def headline(results: dict[str, MetricResult]) -> dict[str, float]:
    """The main number(s) of each result, flat: {'fid': 23.1, 'kid': 0.012, 'precision': ..., ...}.

    Only the `logged` values of a metric whose METRICS entry names them (SWD's mean, not each level).
    """
    flat: dict[str, float] = {}
    for name, res in results.items():
        logged = METRICS[name].logged if name in METRICS else ()
        for k, v in res.values.items():
            if (not logged or k in logged) and math.isfinite(v):
                flat[k] = v
    return flat
