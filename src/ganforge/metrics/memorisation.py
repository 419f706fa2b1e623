"""Memorisation check: are the generated samples copies of training images?

With a few hundred training images a GAN can reproduce its training set, and FID/KID against that set
then look excellent. The check asks how close each sample is to its nearest TRAINING image, compared with
how close NEW real images are to their nearest training image. This is the idea of Meehan et al. (2020,
"A Non-Parametric Test to Detect Data-Copying in Generative Models"): samples of a model that copies are
closer to the training set than held-out data is. Their test partitions space into cells and applies a
Mann-Whitney U test per cell; here the two distance distributions are summarised instead (median, 5th
percentile, their ratios) and every sample closer to a training image than all but 1% of new real images
is counted as a near-copy, because a user needs to see which samples are copies, not only a p-value.

Distances are measured twice, and both are reported:
- feature space: L2 between the run's extractor features (`fashion`, `inception` or --features PATH);
- pixel space: L2 between [-1, 1] images at the data's size, or between copies downscaled (bilinear,
  antialiased) to PIXEL_SIDE on the long side when the data is larger, so 256x256 RGB runs stay cheap.
  Pixel L2 alone favours blurry images (an average image is close to many), features alone can call two
  different cars of one model close, so a sample counts as a near-copy only when it is that close in BOTH
  spaces, and the headline `ratio` is the larger (less alarming) of the two spaces' median ratios.

The "new real images" (the held-out reference) are the data's test split when it has one that differs
from the training images. A folder (and builtin:digits, whose test split is its training set) has none:
the reference is then a seeded subset of the training images, each compared with all the OTHER training
images (train-vs-train, leave-one-out), and the results say so.

Nearest neighbours: torch.cdist's matrix-multiply path (fast, but ~1e-3 error: an exact copy comes out
at a small non-zero distance) picks 8 candidates per query in chunks; the candidates' distances are then
recomputed exactly in float64 with compute_mode="donot_use_mm_for_euclid_dist", so a copy is at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

PIXEL_SIDE = 64          # pixel distances at the data's size up to this long side; larger images are downscaled
COPY_PERCENTILE = 0.01   # a near-copy is closer to a training image than all but this fraction of new real images
N_PAIRS = 8              # closest sample / training pairs reported (and shown in the run's report)
CANDIDATES = 8           # nearest candidates from the fast matmul distances, re-ranked exactly
COPY_ALERT = 0.02        # verdict "near-copies" above this copy rate (and above chance, see verdict())
CLOSER_RATIO = 0.8       # verdict "closer than new real images" below this median ratio
CHUNK_ELEMENTS = 1 << 24  # distance-matrix elements computed at once (64 MiB of float32)


def downscale(images: Tensor, side: int = PIXEL_SIDE) -> Tensor:
    """(N, C, H, W) in [-1, 1] -> the same images, bilinearly downscaled (antialiased) to `side` on the
    long side when larger; smaller images pass through unchanged."""
    h, w = images.shape[-2:]
    if max(h, w) <= side:
        return images.float()
    s = side / max(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    return F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)


def pixel_space(shape: tuple[int, ...], side: int = PIXEL_SIDE) -> str:
    """How pixel distances are measured for images of `shape` (C, H, W), in words."""
    c, h, w = shape
    if max(h, w) <= side:
        return f"L2 on [-1, 1] pixels at the data's size ({c}x{h}x{w})"
    s = side / max(h, w)
    return (f"L2 on [-1, 1] pixels of copies downscaled from {c}x{h}x{w} to {c}x{max(1, round(h * s))}x"
            f"{max(1, round(w * s))} (bilinear, antialiased)")


def nearest(queries: Tensor, keys: Tensor, *, exclude: Tensor | None = None, candidates: int = CANDIDATES,
            chunk_elements: int = CHUNK_ELEMENTS) -> tuple[Tensor, Tensor]:
    """For every row of `queries` (N, D), the exact L2 distance (float64) to its nearest row of `keys`
    (T, D) and that row's index. `exclude[i]` >= 0 is a key that query i may not match (leave-one-out).

    Chunks of queries go through torch.cdist's fast matmul path to pick `candidates` per query; their
    distances are recomputed with compute_mode="donot_use_mm_for_euclid_dist" in float64, so identical
    rows are at exactly 0 (the matmul path alone leaves ~1e-3).
    """
    if queries.dim() != 2 or keys.dim() != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(f"nearest needs (N, D) queries and (T, D) keys, got {tuple(queries.shape)} and "
                         f"{tuple(keys.shape)}")
    n, t = queries.shape[0], keys.shape[0]
    if t < (2 if exclude is not None else 1):
        raise ValueError(f"nearest needs at least {2 if exclude is not None else 1} keys, got {t}")
    k = min(candidates, t)
    q32, k32 = queries.float(), keys.float()
    rows = max(1, min(n, chunk_elements // t, chunk_elements // (k * keys.shape[1])))
    dist = torch.empty(n, dtype=torch.float64)
    index = torch.empty(n, dtype=torch.long)
    for a in range(0, n, rows):
        qa = q32[a:a + rows]
        approx = torch.cdist(qa, k32)  # matmul path: only ranks the candidates
        ex = None
        if exclude is not None:
            ex = exclude[a:a + rows].long()
            own = ex >= 0
            approx[own.nonzero().squeeze(1), ex[own]] = math.inf
        cand = approx.topk(k, dim=1, largest=False).indices                      # (b, k)
        exact = torch.cdist(qa.double().unsqueeze(1), keys[cand].double(),
                            compute_mode="donot_use_mm_for_euclid_dist").squeeze(1)  # (b, k)
        if ex is not None:
            exact = exact.masked_fill(cand == ex[:, None], math.inf)
        best = exact.argmin(1, keepdim=True)
        dist[a:a + rows] = exact.gather(1, best).squeeze(1)
        index[a:a + rows] = cand.gather(1, best).squeeze(1)
    return dist, index


@dataclass
class Reference:
    """The training side and the held-out side of the check, ready to measure samples against.

    train_*: every training image (features (T, D) and pixel rows (T, P)); heldout_*: the new real images,
    or, when heldout_in_train is set, rows of the training set themselves, each matched against the
    other training images (leave-one-out; heldout_in_train[i] is held-out image i's training index).
    """

    train_features: Tensor
    train_pixels: Tensor
    heldout_features: Tensor
    heldout_pixels: Tensor
    pixel_shape: tuple[int, int, int]           # (C, h, w) of a pixel row: the data's or the downscaled size
    pixel_space: str                            # pixel_space(): how pixel distances are measured, in words
    heldout_in_train: Tensor | None = None      # leave-one-out: training index of each held-out row
    training: str = "training images"           # what the training side is, e.g. "builtin:digits train split"
    heldout: str = "held-out images"            # what the held-out side is, in words
    training_sha256: str = ""
    side: int = PIXEL_SIDE

    def __post_init__(self) -> None:
        if len(self.train_features) != len(self.train_pixels) or len(self.heldout_features) != len(self.heldout_pixels):
            raise ValueError("a memorisation Reference needs features and pixel rows of the same images")
        if self.heldout_in_train is not None and len(self.heldout_in_train) != len(self.heldout_features):
            raise ValueError("heldout_in_train needs one training index per held-out image")
        if len(self.train_features) < 2 or len(self.heldout_features) < 1:
            raise ValueError(f"the memorisation check needs at least 2 training and 1 held-out image, got "
                             f"{len(self.train_features)} and {len(self.heldout_features)}")

    @property
    def leave_one_out(self) -> bool:
        return self.heldout_in_train is not None

    def pixel_rows(self, images: Tensor) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] as the rows pixel distances are measured on."""
        x = downscale(images, self.side)
        if tuple(x.shape[1:]) != tuple(self.pixel_shape):
            raise ValueError(f"samples of shape {tuple(images.shape[1:])} cannot be compared with training images "
                             f"measured at {self.pixel_shape}")
        return x.flatten(1)

    def thumbnails(self, index: Tensor) -> Tensor:
        """Training images `index` at the pixel-distance size, (K, C, h, w) in [-1, 1]."""
        return self.train_pixels[index].float().view(-1, *self.pixel_shape)


def leave_one_out(features: Tensor, images: Tensor, n: int, seed: int = 0, side: int = PIXEL_SIDE,
                  training: str = "the real set") -> Reference:
    """A Reference on one set that is both the training images and, for a seeded subset of n of them
    (all when n >= its size), the held-out side, each held-out image matched against the others."""
    x = downscale(images, side)
    rows = x.flatten(1)
    t = len(rows)
    pick = (torch.arange(t) if n >= t else
            torch.randperm(t, generator=torch.Generator().manual_seed(seed + 1))[:n].sort().values)
    return Reference(features.float(), rows, features[pick].float(), rows[pick], tuple(x.shape[1:]),
                     pixel_space(tuple(images.shape[1:]), side), heldout_in_train=pick, training=training,
                     heldout=leave_one_out_label(len(pick), t), side=side)


def leave_one_out_label(n: int, t: int) -> str:
    """The held-out side's description when the data has no test split."""
    which = "every training image" if n >= t else f"{n} training images (a seeded subset)"
    return (f"no held-out split: {which}, each against the other {t - 1} training images "
            "(train-vs-train, leave-one-out)")


def _quantile(x: Tensor, q: float) -> float:
    return float(torch.quantile(x.double(), q)) if len(x) else math.nan


def verdict(copy_rate: float, ratio: float, n: int, leave_one_out: bool = False) -> str:
    """The check's conclusion in words.

    Near-copies: a copy rate above COPY_ALERT and above what chance gives n samples (under no copying at
    most COPY_PERCENTILE of them are flagged; three binomial standard deviations above it).
    """
    chance = COPY_PERCENTILE * n + 3 * math.sqrt(n * COPY_PERCENTILE * (1 - COPY_PERCENTILE))
    who = "other training images" if leave_one_out else "new real images"
    note = " (leave-one-out: the data has no test split)" if leave_one_out else ""
    if copy_rate > COPY_ALERT and copy_rate * n > chance:
        return (f"{100 * copy_rate:.3g}% of samples are near-copies of training images (closer to one than "
                f"{100 * (1 - COPY_PERCENTILE):.0f}% of {who} are, in features and in pixels){note}")
    if ratio < CLOSER_RATIO:
        return (f"samples are closer to the training images than {who} are (median distance x{ratio:.2f}), "
                f"though only {100 * copy_rate:.3g}% are near-copies{note}")
    return f"samples are no closer to the training images than {who} are{note}"


def memorisation(sample_features: Tensor, sample_pixels: Tensor, ref: Reference,
                 pairs: int = N_PAIRS) -> tuple[dict[str, float], dict[str, Any]]:
    """(values, details) of the check for samples given as features (N, D) and pixel rows (N, P)
    (Reference.pixel_rows(images)).

    values: per space ("feature", "pixel"): sample_/heldout_ median and p5 of the nearest-training
    distances, _ratio (median over median), _p5_ratio, _threshold (the held-out 1st percentile) and
    _copy_rate (samples at or under it); copy_rate (under it in both spaces), ratio (the larger median
    ratio) and heldout_copy_rate (the held-out images' own rate under the both-spaces rule: chance level).
    details: verdict, the reference in words, and the `pairs` samples closest to the training set
    (their index, the nearest training image's index, distances).
    """
    if len(sample_features) != len(sample_pixels) or len(sample_features) < 1:
        raise ValueError(f"memorisation needs features and pixel rows of the same >= 1 samples, got "
                         f"{len(sample_features)} and {len(sample_pixels)}")
    dist: dict[str, tuple[Tensor, Tensor]] = {}
    near: dict[str, Tensor] = {}
    spaces = {"feature": (sample_features, ref.train_features, ref.heldout_features),
              "pixel": (sample_pixels, ref.train_pixels, ref.heldout_pixels)}
    for space, (samples, train, heldout) in spaces.items():
        d_s, near[space] = nearest(samples, train)
        d_h, _ = nearest(heldout, train, exclude=ref.heldout_in_train)
        dist[space] = (d_s, d_h)
    values: dict[str, float] = {}
    flagged_s = torch.ones(len(sample_features), dtype=torch.bool)
    flagged_h = torch.ones(len(ref.heldout_features), dtype=torch.bool)
    score = torch.zeros(len(sample_features), dtype=torch.float64)
    for space, (d_s, d_h) in dist.items():
        med_s, med_h = _quantile(d_s, 0.5), _quantile(d_h, 0.5)
        p5_s, p5_h = _quantile(d_s, 0.05), _quantile(d_h, 0.05)
        thr = _quantile(d_h, COPY_PERCENTILE)
        # float noise: features of one image differ ~1e-6 between extractor batches, so "at the threshold"
        # gets a tolerance of 1e-4 of the held-out median (matters when the threshold itself is 0: duplicates)
        cut = thr + 1e-4 * med_h
        flagged_s &= d_s <= cut
        flagged_h &= d_h <= cut
        score = torch.maximum(score, d_s / max(cut, 1e-12))
        values.update({f"sample_{space}_median": med_s, f"sample_{space}_p5": p5_s,
                       f"heldout_{space}_median": med_h, f"heldout_{space}_p5": p5_h,
                       f"{space}_ratio": med_s / med_h if med_h > 0 else math.inf,
                       f"{space}_p5_ratio": p5_s / p5_h if p5_h > 0 else math.inf,
                       f"{space}_threshold": thr, f"{space}_copy_rate": float((d_s <= cut).double().mean())})
    values["copy_rate"] = float(flagged_s.double().mean())
    values["ratio"] = max(values["feature_ratio"], values["pixel_ratio"])
    values["heldout_copy_rate"] = float(flagged_h.double().mean())
    order = score.argsort()[:pairs]  # closest first: the larger of the two spaces' distance / threshold
    closest = [{"sample": int(i), "train": int(near["pixel"][i]), "train_by_features": int(near["feature"][i]),
                "pixel_distance": float(dist["pixel"][0][i]), "feature_distance": float(dist["feature"][0][i]),
                "near_copy": bool(flagged_s[i])} for i in order]
    details = {
        "verdict": verdict(values["copy_rate"], values["ratio"], len(sample_features), ref.leave_one_out),
        "training_set": ref.training,
        "heldout": ref.heldout,
        "heldout_kind": "leave-one-out" if ref.leave_one_out else "held-out",
        "pixel_space": ref.pixel_space,
        "n_train": len(ref.train_features),
        "n_heldout": len(ref.heldout_features),
        "n_samples": len(sample_features),
        "copy_rule": (f"a sample is a near-copy when its nearest training image is at most the "
                      f"{100 * COPY_PERCENTILE:.0f}st percentile of the held-out images' nearest-training distances "
                      "in feature space and in pixel space"),
        "pairs": closest,
    }
    return values, details


def pair_grid(sample_images: Tensor, ref: Reference, pairs: list[dict[str, Any]], side: int | None = None) -> Tensor:
    """(2K, C, h, w): the K closest samples (first K) then their nearest training images, at the
    pixel-distance size, for make_grid/save_grid with nrow=K (samples above their training images)."""
    side = side or ref.side
    if not pairs:
        raise ValueError("no pairs to show")
    s = downscale(sample_images[torch.tensor([p["sample"] for p in pairs])], side)
    t = ref.thumbnails(torch.tensor([p["train"] for p in pairs]))
    return torch.cat([s, t])


def save_pairs(path: str | Path, sample_images: Tensor, ref: Reference, pairs: list[dict[str, Any]]) -> Path:
    """The closest pairs as one PNG: samples in the top row, each one's nearest training image below it."""
    from ..image import save_grid

    return save_grid(pair_grid(sample_images, ref, pairs), path, nrow=len(pairs), min_cell=48)
