"""The Metric contract, the provenance a metric result carries (docs/architecture.md, section 2), and SampleSet.

A metric accumulates with `update(...)`, returns `dict[str, float]` from `compute()` and starts over
with `reset()`. A number without the recipe behind it cannot be compared with another, so
`Metric.result(provenance)` bundles the values with how they were computed (extractor and its weights
hash, sample counts, seed, resize method, reference set and its hash, ganforge version).
A SampleSet is one side (real or generated) as evaluate.py hands it to a registry.METRICS entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from .. import __version__


def as_float64(x: Any, name: str, ndim: int | None = 2, min_rows: int = 1) -> Tensor:
    """Any array-like -> a detached CPU float64 tensor, checked for shape and finite values."""
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be numeric (a tensor or array of numbers); encode or drop "
                            f"non-numeric columns first ({err})") from None
    x = x.detach().to("cpu", torch.float64)
    if ndim is not None and x.dim() != ndim:
        hint = "; for one column use x[:, None]" if ndim == 2 and x.dim() == 1 else ""
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}{hint}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {x.shape[0]}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).flatten(1).any(1).sum()) if x.dim() > 1 else "some"
        raise ValueError(f"{name} contains NaN or inf ({bad} rows); check the generator / extractor "
                         f"output before computing metrics")
    return x


def tensor_sha256(x: Any) -> str:
    """sha256 of an array's float64 bytes and shape: a stable name for a reference set or statistics."""
    a = np.ascontiguousarray(torch.as_tensor(x).detach().to("cpu", torch.float64).numpy())
    h = hashlib.sha256(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class Provenance:
    """How a metric value was computed; two values compare only when these agree."""

    extractor: str = ""              # e.g. "inception-v3-fid" or "fashion-mnist-classifier"
    weights_sha256: str = ""         # hash of the extractor weights file
    n_real: int = 0
    n_fake: int = 0
    seed: int | None = None
    resize: str = ""                 # e.g. "bilinear-299-antialias" or "none"
    reference: str = ""              # name of the real/reference set, e.g. "fashion-mnist:train"
    reference_sha256: str = ""       # hash of the reference features or statistics
    ganforge_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, **kwargs)


@dataclass
class MetricResult:
    """Values of one metric plus their provenance."""

    name: str
    values: dict[str, float]
    higher_is_better: bool
    provenance: Provenance

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": dict(self.values), "higher_is_better": self.higher_is_better,
                "provenance": self.provenance.to_dict()}

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, **kwargs)

    @classmethod
    def from_json(cls, text: str) -> "MetricResult":
        d = json.loads(text)
        return cls(d["name"], d["values"], d["higher_is_better"], Provenance(**d["provenance"]))


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


class Metric:
    """update(...) accumulates, compute() -> dict[str, float], reset() starts over."""

    name: str = "metric"
    higher_is_better: bool = False

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def counts(self) -> tuple[int, int]:
        """(n_real, n_fake) seen since the last reset; metrics without a real side report 0 for it."""
        return 0, 0

    def result(self, provenance: Provenance | None = None) -> MetricResult:
        """compute() plus provenance; sample counts are filled in from what this metric has seen."""
        prov = Provenance(**(provenance or Provenance()).to_dict())
        prov.n_real, prov.n_fake = self.counts()
        return MetricResult(self.name, self.compute(), self.higher_is_better, prov)


class PairedSetMetric(Metric):
    """Keeps every real / fake batch (CPU, as given) and applies `function(real, fake, **options)` once.

    For metrics that need the whole sets at once (KID subsets, k-NN manifolds, SWD descriptors).
    """

    function: Callable[..., dict[str, float]]

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.reset()

    def reset(self) -> None:
        self._real: list[Tensor] = []
        self._fake: list[Tensor] = []

    def update(self, real: Any = None, fake: Any = None) -> None:
        if real is None and fake is None:
            raise ValueError(f"{self.name}.update needs real=... and/or fake=... batches")
        for batch, store in ((real, self._real), (fake, self._fake)):
            if batch is not None:
                store.append(torch.as_tensor(batch).detach().cpu())

    def counts(self) -> tuple[int, int]:
        return sum(len(b) for b in self._real), sum(len(b) for b in self._fake)

    def compute(self) -> dict[str, float]:
        if not self._real or not self._fake:
            raise RuntimeError(f"{self.name}: call update(real=..., fake=...) before compute() "
                               f"(have {len(self._real)} real and {len(self._fake)} fake batches)")
        fn = type(self).function
        return fn(torch.cat(self._real), torch.cat(self._fake), **self.options)
