"""Clustering accuracy: how well unsupervised cluster indices match the true classes, under the best one-to-one
assignment of clusters to classes (the Hungarian algorithm, scipy.optimize.linear_sum_assignment), as used for
the adversarial autoencoder's unsupervised clustering (Makhzani et al. 2015) and deep clustering in general."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def cluster_accuracy(clusters: Any, labels: Any) -> dict[str, Any]:
    """Share of samples whose cluster maps to their class under the best one-to-one cluster -> class assignment.
    clusters, labels: (N,) integer arrays. With more clusters than classes, the extra clusters map to nothing
    (their samples count as wrong). Returns the accuracy, the mapping (cluster -> class) and the N."""
    c = np.asarray(torch.as_tensor(clusters).cpu()).astype(np.int64).ravel()
    y = np.asarray(torch.as_tensor(labels).cpu()).astype(np.int64).ravel()
    if c.shape != y.shape or not len(c):
        raise ValueError(f"need as many cluster indices as labels (and at least one), got {c.shape} and {y.shape}")
    if c.min() < 0 or y.min() < 0:
        raise ValueError("cluster indices and labels must be >= 0")
    counts = np.zeros((int(c.max()) + 1, int(y.max()) + 1), dtype=np.int64)
    np.add.at(counts, (c, y), 1)
    rows, cols = linear_sum_assignment(-counts)
    return {"accuracy": float(counts[rows, cols].sum() / len(c)), "n": int(len(c)),
            "mapping": {int(r): int(k) for r, k in zip(rows, cols)}}
