"""Evaluation metrics for generated samples.

Functions take feature tensors (or images for SWD, logits for IS); the Metric classes in METRICS
accumulate batches with update(real=..., fake=...) and return dict[str, float] from compute().
"""

from typing import Any, Callable, Union

from .base import Metric, MetricResult, Provenance
from .fid import FID, feature_stats, fid, frechet_distance
from .inception_score import InceptionScore, inception_score
from .kid import KID, kid
from .mixtures import mode_coverage
from .mmd import MMD, mmd
from .prdc import DensityCoverage, PrecisionRecall, density_coverage, precision_recall
from .swd import SlicedWasserstein, sliced_wasserstein

# name -> Metric class (streaming, update/compute/reset) or function (one call on whole sets)
METRICS: dict[str, Union[type[Metric], Callable[..., Any]]] = {
    "fid": FID,
    "kid": KID,
    "precision_recall": PrecisionRecall,
    "density_coverage": DensityCoverage,
    "swd": SlicedWasserstein,
    "mmd": MMD,
    "inception_score": InceptionScore,
    "mode_coverage": mode_coverage,
}


def get_metric(name: str) -> Union[type[Metric], Callable[..., Any]]:
    """METRICS[name], or a KeyError that lists the valid names."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric '{name}'; valid metrics: {', '.join(sorted(METRICS))}") from None


__all__ = [
    "METRICS", "Metric", "MetricResult", "Provenance", "get_metric",
    "frechet_distance", "fid", "feature_stats", "kid", "precision_recall", "density_coverage",
    "sliced_wasserstein", "mmd", "inception_score", "mode_coverage",
    "FID", "KID", "PrecisionRecall", "DensityCoverage", "SlicedWasserstein", "MMD", "InceptionScore",
]
