"""Multi-scale sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al., 2018, ProGAN).

Recipe (the paper's appendix): build a Laplacian pyramid of every image down to 16x16 (fewer levels
for small images); at each level take `patches_per_image` random 7x7 neighbourhoods per image as
descriptors; normalise each set's descriptors per channel by that set's mean and std; then the sliced
Wasserstein distance: project on random unit directions (4 repeats x 128 here), sort, and average the
1-D Wasserstein-1 distances. One value per level (finest first) and their mean.

Values are multiplied by `scale` (default 1e3, the units of the paper's tables). The pyramid and
descriptors are float32 (as in the reference implementation); the normalisation statistics and the
averaged distances are float64. Real and fake images share patch positions and directions, so two
identical sets give exactly 0. Memory: N x patches_per_image x C x 49 float32 per set and level.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import PairedSetMetric

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0   # 5-tap Gaussian of Burt & Adelson (1983)
CHUNK = 256   # images per pyramid pass


def _blur(x: Tensor) -> Tensor:
    """Separable 5x5 binomial blur per channel with mirror padding; (N, C, H, W) -> same shape."""
    c = x.shape[1]
    kernel = torch.outer(_BINOMIAL, _BINOMIAL).to(x.dtype).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def _down(x: Tensor) -> Tensor:
    return _blur(x)[..., ::2, ::2]


def _up(small: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero-insertion upsampling to `size`, then blur x4 (keeps the mean)."""
    up = small.new_zeros(*small.shape[:2], *size)
    up[..., ::2, ::2] = small
    return 4.0 * _blur(up)


def level_sizes(height: int, width: int, min_size: int = 16) -> list[tuple[int, int]]:
    """(H, W) of each pyramid level, finest first; halve while the smaller side stays >= min_size."""
    sizes = [(height, width)]
    while min(-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)) >= min_size:
        h, w = sizes[-1]
        sizes.append((-(-h // 2), -(-w // 2)))
    return sizes


def laplacian_pyramid(imgs: Tensor, min_size: int = 16) -> list[Tensor]:
    """Band-pass levels (image - upsampled next level), finest first, ending with the low-pass level."""
    levels, current = [], imgs
    for size in level_sizes(*imgs.shape[-2:], min_size)[1:]:
        smaller = _down(current)
        assert tuple(smaller.shape[-2:]) == size
        levels.append(current - _up(smaller, tuple(current.shape[-2:])))
        current = smaller
    levels.append(current)
    return levels


def _patches(level: Tensor, top: Tensor, left: Tensor, size: int) -> Tensor:
    """(N, C, H, W) level, (N, P) corners -> (N * P, C, size, size) neighbourhoods."""
    n, c = level.shape[:2]
    offsets = torch.arange(size)
    rows = (top[:, :, None] + offsets)[:, :, :, None]                 # (N, P, size, 1)
    cols = (left[:, :, None] + offsets)[:, :, None, :]                # (N, P, 1, size)
    picked = level[torch.arange(n)[:, None, None, None], :, rows, cols]  # (N, P, size, size, C)
    return picked.permute(0, 1, 4, 2, 3).reshape(-1, c, size, size)


def _normalise(desc: Tensor) -> Tensor:
    """Per-channel zero mean / unit std over the whole set (float64 statistics); -> (M, C*size*size)."""
    d64 = desc.double()
    mean = d64.mean(dim=(0, 2, 3), keepdim=True)
    std = d64.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))             # a constant channel stays 0
    return ((d64 - mean) / std).float().flatten(1)


def _w1_sorted(a: Tensor, b: Tensor) -> Tensor:
    """Exact 1-D Wasserstein-1 per row between sorted samples a (P, m) and b (P, n) -> (P,) float64."""
    m, n = a.shape[1], b.shape[1]
    if m == n:
        return (a.double() - b.double()).abs().mean(1)
    # Both quantile functions are steps on the grid u / (m n); integrate |F_a^-1 - F_b^-1| piecewise.
    ends = torch.unique(torch.cat([torch.arange(1, m + 1) * n, torch.arange(1, n + 1) * m]))
    widths = torch.diff(ends, prepend=ends.new_zeros(1)).double() / (m * n)
    ia, ib = (ends + n - 1) // n - 1, (ends + m - 1) // m - 1
    return ((a[:, ia].double() - b[:, ib].double()).abs() * widths).sum(1)


def _check(imgs: Any, name: str) -> Tensor:
    x = torch.as_tensor(imgs).detach().cpu()
    if x.dim() != 4:
        raise ValueError(f"{name} must be images (N, C, H, W), got shape {tuple(x.shape)}")
    x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf; check the generator output before computing SWD")
    return x


def sliced_wasserstein(real_imgs: Any, fake_imgs: Any, patches_per_image: int = 128, patch_size: int = 7,
                       min_size: int = 16, n_repeats: int = 4, n_directions: int = 128,
                       seed: int = 0, scale: float = 1e3) -> dict[str, float]:
    """Multi-scale SWD between two image sets (N, C, H, W), any value range; lower is better.

    Returns {"swd_{H}x{W}": per level (finest first), "swd_mean": their mean}, all times `scale`.
    """
    real, fake = _check(real_imgs, "real_imgs"), _check(fake_imgs, "fake_imgs")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real and fake images differ in shape: {tuple(real.shape[1:])} vs "
                         f"{tuple(fake.shape[1:])}; resize both to one (C, H, W) first")
    if len(real) == 0 or len(fake) == 0:
        raise ValueError("sliced_wasserstein needs at least one real and one fake image")
    c, h, w = real.shape[1:]
    if min(h, w) < patch_size:
        raise ValueError(f"images of {h}x{w} are smaller than the {patch_size}x{patch_size} patches; "
                         f"pass a smaller patch_size")
    sizes = level_sizes(h, w, min_size)
    gen = torch.Generator().manual_seed(seed)
    n_max = max(len(real), len(fake))
    corners = [(torch.randint(0, lh - patch_size + 1, (n_max, patches_per_image), generator=gen),
                torch.randint(0, lw - patch_size + 1, (n_max, patches_per_image), generator=gen))
               for lh, lw in sizes]

    def descriptors(imgs: Tensor) -> list[Tensor]:
        per_level: list[list[Tensor]] = [[] for _ in sizes]
        for start in range(0, len(imgs), CHUNK):
            stop = min(start + CHUNK, len(imgs))
            for i, level in enumerate(laplacian_pyramid(imgs[start:stop], min_size)):
                top, left = corners[i][0][start:stop], corners[i][1][start:stop]
                per_level[i].append(_patches(level, top, left, patch_size))
        return [_normalise(torch.cat(chunks)) for chunks in per_level]

    real_desc, fake_desc = descriptors(real), descriptors(fake)
    out: dict[str, float] = {}
    dim = c * patch_size * patch_size
    for (lh, lw), a, b in zip(sizes, real_desc, fake_desc):
        dists = []
        for _ in range(n_repeats):
            directions = torch.randn(dim, n_directions, generator=gen)
            directions /= directions.norm(dim=0, keepdim=True)
            proj_a = (directions.T @ a.T).sort(dim=1).values   # (n_directions, M): sort along rows
            proj_b = (directions.T @ b.T).sort(dim=1).values
            dists.append(_w1_sorted(proj_a, proj_b).mean())
        out[f"swd_{lh}x{lw}"] = float(torch.stack(dists).mean()) * scale
    out["swd_mean"] = sum(out.values()) / len(sizes)
    return out


class SlicedWasserstein(PairedSetMetric):
    """sliced_wasserstein over all images fed with update(real=..., fake=...). Lower is better."""

    name = "swd"
    higher_is_better = False
    function = sliced_wasserstein
