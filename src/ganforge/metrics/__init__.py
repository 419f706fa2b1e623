"""Evaluation metrics for generated samples.

Functions take feature tensors (or images for SWD, logits for IS); the Metric classes accumulate batches
with update(real=..., fake=...) and return dict[str, float] from compute(). METRICS (registry.py) is the
one list of metrics: name -> MetricInfo (higher_is_better, needs, description, how it is computed, and
the streaming class or function in `.metric`).
"""

from .base import Metric, MetricResult, Provenance, SampleSet
from .fid import FID, feature_stats, fid, frechet_distance
from .inception_score import InceptionScore, inception_score
from .kid import KID, kid
from .mixtures import mode_coverage
from .mmd import MMD, mmd
from .prdc import DensityCoverage, PrecisionRecall, density_coverage, precision_recall
from .registry import KINDS, METRICS, NEEDS, MetricInfo, get_metric, metric_names, parse_metrics
from .swd import SlicedWasserstein, sliced_wasserstein

__all__ = [
    "METRICS", "MetricInfo", "NEEDS", "KINDS", "get_metric", "metric_names", "parse_metrics",
    "Metric", "MetricResult", "Provenance", "SampleSet",
    "frechet_distance", "fid", "feature_stats", "kid", "precision_recall", "density_coverage",
    "sliced_wasserstein", "mmd", "inception_score", "mode_coverage",
    "FID", "KID", "PrecisionRecall", "DensityCoverage", "SlicedWasserstein", "MMD", "InceptionScore",
]
