"""Image utilities with torch + Pillow only (torchvision does not work on these machines)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor


def to_uint8(x: Tensor) -> Tensor:
    """Images in [-1, 1], (N, C, H, W) float -> uint8 with the same shape."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def make_grid(x: Tensor, nrow: int | None = None, padding: int = 2, pad_value: int = 0) -> Tensor:
    """(N, C, H, W) images in [-1, 1] -> one uint8 (C, H', W') grid, `nrow` images per row."""
    if x.dim() != 4:
        raise ValueError(f"make_grid expects (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value, dtype=torch.uint8)
    imgs = to_uint8(x)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = imgs[i]
    return grid


def to_pil(img: Tensor) -> Image.Image:
    """uint8 (C, H, W) with C = 1 or 3 -> PIL image."""
    arr = img.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode="L" if arr.shape[2] == 1 else "RGB")


def save_grid(x: Tensor, path: str | Path, nrow: int | None = None, min_cell: int = 64,
              row_labels: list[str] | None = None) -> Path:
    """Save images in [-1, 1] as a PNG grid; tiny images (e.g. 8x8) are upscaled with nearest neighbours.
    row_labels: one text per grid row, written in a white column left of the rows (e.g. the captions of
    `ganforge sample --text-file --labels`)."""
    grid = to_pil(make_grid(x, nrow))
    scale = max(1, min_cell // max(1, min(x.shape[-2:])))
    if scale > 1:
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    if row_labels:
        grid = label_rows(grid, row_labels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


def label_rows(grid: Image.Image, labels: list[str], font_size: int = 14, padding: int = 8) -> Image.Image:
    """`grid` with a white column on its left holding labels[r] beside row r (rows of equal height); long labels
    are cut at 48 characters with an ellipsis."""
    from PIL import ImageFont

    font = ImageFont.load_default(size=font_size)
    texts = [t if len(t) <= 48 else t[:47] + "\u2026" for t in labels]
    width = max(int(font.getlength(t)) for t in texts) + 2 * padding
    out = Image.new("RGB", (grid.width + width, grid.height), "white")
    out.paste(grid.convert("RGB"), (width, 0))
    draw, row_h = ImageDraw.Draw(out), grid.height / len(texts)
    for r, t in enumerate(texts):
        draw.text((padding, (r + 0.5) * row_h), t, fill=(20, 20, 20), font=font, anchor="lm")
    return out


def save_images(x: Tensor, folder: str | Path, prefix: str = "") -> list[Path]:
    """One PNG per image into `folder` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, img in enumerate(to_uint8(x)):
        p = folder / f"{prefix}{i:05d}.png"
        to_pil(img).save(p)
        out.append(p)
    return out


def save_scatter(points: Tensor, path: str | Path, reference: Tensor | None = None, size: int = 512,
                 extent: float | None = None) -> Path:
    """2-D points (N, 2) as a PNG scatter plot; `reference` points (e.g. mixture centres) in red."""
    pts = points.detach().float().cpu().numpy()
    if extent is None:
        ref = reference.cpu().numpy() if reference is not None else pts
        finite = np.abs(ref[np.isfinite(ref).all(1)]) if len(ref) else np.ones((1, 2))
        extent = float(np.percentile(finite, 99.5)) * 1.25 + 1e-6 if len(finite) else 1.0
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(p: np.ndarray) -> tuple[float, float]:
        return ((p[0] / extent + 1) * size / 2, (1 - p[1] / extent) * size / 2)

    draw.line([(size / 2, 0), (size / 2, size)], fill=(225, 225, 225))
    draw.line([(0, size / 2), (size, size / 2)], fill=(225, 225, 225))
    for p in pts:
        if np.isfinite(p).all():
            x, y = px(p)
            draw.point((x, y), fill=(20, 60, 200))
    if reference is not None:
        for p in reference.cpu().numpy():
            x, y = px(p)
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(220, 30, 30))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
