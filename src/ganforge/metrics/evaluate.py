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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..data.builtin import MIXTURES, cache_root
from ..data.store import TensorData
from .base import MetricResult, Provenance
from .fid import fid
from .inception_score import inception_score
from .kid import kid
from .mixtures import mode_coverage
from .mmd import mmd
from .prdc import density_coverage, prdc, precision_recall
from .swd import sliced_wasserstein

BATCH = 512   # samples generated / converted per step: a multiple of the sampler's and extractors' batches
IMAGE_METRICS = ("fid", "kid", "pr", "dc", "is", "swd", "mmd", "classes")
POINT_METRICS = ("mmd", "modes")
HIGHER_IS_BETTER = {"fid": False, "kid": False, "pr": True, "dc": True, "is": True, "swd": False, "mmd": False,
                    "classes": False, "modes": True}
DESCRIPTIONS = {
    "fid": "Frechet distance between Gaussian fits of the features (Heusel et al. 2017)",
    "kid": "kernel inception distance, unbiased, cubic kernel (Binkowski et al. 2018)",
    "pr": "precision/recall of k-NN manifolds (Kynkaanniemi et al. 2019)",
    "dc": "density/coverage (Naeem et al. 2020)",
    "is": "inception score, or classifier score with a classifier extractor (Salimans et al. 2016)",
    "swd": "sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018)",
    "mmd": "Gaussian-kernel MMD^2 on features or raw rows",
    "classes": "KL(real class histogram || fake class histogram) under the classifier",
    "modes": "mode coverage and high-quality fraction on the 2-D mixtures",
}


@dataclass
class SampleSet:
    """What a metric needs from one side: features, classifier logits, and the images when SWD asks."""

    name: str
    features: Tensor                 # (N, D) float32
    logits: Tensor | None = None     # (N, K)
    images: Tensor | None = None     # (N, C, H, W) in [-1, 1], kept only for SWD
    labels: Tensor | None = None     # true labels of a real set
    sha256: str = ""

    def __len__(self) -> int:
        return int(self.features.shape[0])


def parse_metrics(text: str | list[str], kind: str = "image") -> list[str]:
    names = [m.strip().lower() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    valid = IMAGE_METRICS if kind == "image" else POINT_METRICS
    bad = [m for m in names if m not in valid]
    if bad or not names:
        raise ValueError(f"unknown metric(s) {', '.join(bad) or '(none given)'} for {kind} data; choose from: "
                         + ", ".join(valid))
    return names


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
             batch: int = BATCH, name: str = "generated") -> SampleSet:
    """Features of n generated samples; `generate(start, stop)` returns samples start..stop-1."""
    if extractor is None:
        x = torch.cat([generate(a, min(n, a + batch)) for a in range(0, n, batch)])
        return SampleSet(name, x.float())
    kept: list[Tensor] = []

    def images(a: int, b: int) -> Tensor:
        x = generate(a, b)
        if keep_images:
            kept.append(x.cpu())
        return x

    feats, logits = _extract(extractor, images, n, batch)
    return SampleSet(name, feats, logits, torch.cat(kept) if kept else None)


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


def class_histogram_kl(real: SampleSet, fake: SampleSet, n_classes: int) -> dict[str, float]:
    """KL(real || fake) of class histograms: real from true labels (else predictions), fake from predictions."""
    if fake.logits is None:
        raise ValueError("the 'classes' metric needs a classifier extractor (e.g. --features fashion)")
    real_cls = real.labels if real.labels is not None else real.logits.argmax(1)
    k = max(n_classes, int(fake.logits.shape[1]))
    p = torch.bincount(real_cls.long(), minlength=k).double()
    q = torch.bincount(fake.logits.argmax(1), minlength=k).double()
    p, q = p / p.sum(), (q + 0.5) / (q + 0.5).sum()  # add-half smoothing: a missing class is finite but large
    out = {"kl": float((p * (p.clamp_min(1e-300) / q).log()).where(p > 0, torch.zeros(()).double()).sum())}
    out["classes_present"] = float((torch.bincount(fake.logits.argmax(1), minlength=k) > 0).sum())
    for i, v in enumerate(q.tolist()):
        out[f"fake_fraction_{i}"] = v
    return out


def compute(names: list[str], real: SampleSet, fake: SampleSet, provenance: Provenance, *, seed: int = 0,
            n_classes: int = 0, mixture: str | None = None) -> dict[str, MetricResult]:
    """Every requested metric on (real, fake); one MetricResult each. A metric that cannot run says why."""
    out: dict[str, MetricResult] = {}
    both = prdc(real.features, fake.features) if {"pr", "dc"} <= set(names) else {}  # one set of distances
    for name in names:
        if name == "fid":
            values = {"fid": fid(real.features, fake.features)}
        elif name == "kid":
            r = kid(real.features, fake.features, subset_size=min(1000, len(real), len(fake)), seed=seed)
            values = {"kid": r["mean"], "kid_std": r["std"]}
        elif name == "pr":
            values = ({k: both[k] for k in ("precision", "recall")} if both
                      else precision_recall(real.features, fake.features))
        elif name == "dc":
            values = ({k: both[k] for k in ("density", "coverage")} if both
                      else density_coverage(real.features, fake.features))
        elif name == "is":
            if fake.logits is None:
                raise ValueError("the 'is' metric needs a classifier extractor (inception or fashion)")
            r = inception_score(fake.logits, splits=10 if len(fake) >= 1000 else 1)
            values = {"is": r["mean"], "is_std": r["std"]}
        elif name == "swd":
            if real.images is None or fake.images is None:
                raise ValueError("the 'swd' metric needs the images of both sets")
            values = {k: v for k, v in sliced_wasserstein(real.images, fake.images, seed=seed).items()
                      if isinstance(v, (int, float))}
        elif name == "mmd":
            values = {"mmd": mmd(real.features, fake.features)}
        elif name == "classes":
            values = class_histogram_kl(real, fake, n_classes)
        elif name == "modes":
            if mixture not in MIXTURES:
                raise ValueError(f"the 'modes' metric needs a 2-D mixture (builtin:ring8 or builtin:grid25), not {mixture!r}")
            mix = MIXTURES[mixture]()
            r = mode_coverage(fake.features, mix.centers, mix.std)
            values = {"modes_covered": float(r["modes_covered"]), "n_modes": float(r["n_modes"]),
                      "high_quality_fraction": float(r["high_quality_fraction"])}
        else:  # parse_metrics keeps this unreachable
            raise ValueError(f"unknown metric {name!r}")
        prov = Provenance(**provenance.to_dict())
        prov.n_real, prov.n_fake = len(real), len(fake)
        prov.extra = {**prov.extra, "description": DESCRIPTIONS[name]}
        out[name] = MetricResult(name, {k: float(v) for k, v in values.items()}, HIGHER_IS_BETTER[name], prov)
    return out


def headline(results: dict[str, MetricResult]) -> dict[str, float]:
    """The main number(s) of each result, flat: {'fid': 23.1, 'kid': 0.012, 'precision': ..., ...}."""
    flat: dict[str, float] = {}
    for name, res in results.items():
        for k, v in res.values.items():
            if name == "classes" and k.startswith("fake_fraction_"):
                continue
            if name == "swd" and k != "swd" and not k.startswith("swd_mean"):
                continue
            if math.isfinite(v):
                flat[k] = v
    return flat
