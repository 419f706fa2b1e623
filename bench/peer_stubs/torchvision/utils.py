"""torchvision.utils.make_grid and save_image, with torchvision's layout and rounding."""

from __future__ import annotations

import math

import torch
from PIL import Image

__all__ = ["make_grid", "save_image"]


def make_grid(tensor, nrow: int = 8, padding: int = 2, normalize: bool = False, value_range=None,
              scale_each: bool = False, pad_value: float = 0.0) -> torch.Tensor:
    """(B, C, H, W) or a list of (C, H, W) -> one (C, H', W') image, `nrow` images a row, `padding` pixels
    of `pad_value` around each; one-channel images become three. normalize=True maps each tensor's
    [min, max] (or value_range) to [0, 1]."""
    if isinstance(tensor, (list, tuple)):
        tensor = torch.stack(list(tensor), dim=0)
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() == 3:
        if tensor.size(0) == 1:
            tensor = torch.cat((tensor, tensor, tensor), 0)
        tensor = tensor.unsqueeze(0)
    if tensor.dim() == 4 and tensor.size(1) == 1:
        tensor = torch.cat((tensor, tensor, tensor), 1)
    if normalize:
        tensor = tensor.clone()

        def norm(t, lo, hi):
            t.clamp_(min=lo, max=hi)
            t.sub_(lo).div_(max(hi - lo, 1e-5))

        if scale_each:
            for t in tensor:
                lo, hi = value_range if value_range is not None else (float(t.min()), float(t.max()))
                norm(t, lo, hi)
        else:
            lo, hi = value_range if value_range is not None else (float(tensor.min()), float(tensor.max()))
            norm(tensor, lo, hi)
    if tensor.size(0) == 1:
        return tensor.squeeze(0)
    n = tensor.size(0)
    xmaps = min(nrow, n)
    ymaps = int(math.ceil(float(n) / xmaps))
    height, width = int(tensor.size(2) + padding), int(tensor.size(3) + padding)
    grid = tensor.new_full((tensor.size(1), height * ymaps + padding, width * xmaps + padding), pad_value)
    k = 0
    for y in range(ymaps):
        for x in range(xmaps):
            if k >= n:
                break
            grid[:, y * height + padding: (y + 1) * height, x * width + padding: (x + 1) * width] = tensor[k]
            k += 1
    return grid


@torch.no_grad()
def save_image(tensor, fp, format=None, **kwargs) -> None:
    """make_grid(tensor, **kwargs), x * 255 + 0.5 clamped to uint8, written by PIL (format from the name)."""
    grid = make_grid(tensor, **kwargs)
    arr = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8).numpy()
    Image.fromarray(arr).save(fp, format=format)
