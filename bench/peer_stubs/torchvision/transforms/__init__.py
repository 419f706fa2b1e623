"""The torchvision.transforms classes lightweight-gan's ImageDataset builds (PIL in, tensor out)."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from . import functional
from .functional import _pair

__all__ = ["CenterCrop", "Compose", "Lambda", "RandomResizedCrop", "Resize", "ToPILImage", "ToTensor",
           "functional"]


class Compose:
    """Apply the transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img


class Lambda:
    """Wrap a plain function as a transform."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda needs a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


class Resize:
    """int size: the shorter side becomes `size`, aspect kept; (h, w): exactly that. Bilinear, like torchvision."""

    def __init__(self, size, interpolation=Image.Resampling.BILINEAR, max_size=None, antialias=True):
        if max_size is not None:
            raise NotImplementedError("the torchvision stand-in does not implement Resize(max_size=...)")
        self.size = size
        self.interpolation = interpolation

    def __call__(self, img):
        return functional.resize(img, self.size, self.interpolation)


class CenterCrop:
    """Crop the centre (th, tw) box, padding with black first when the image is smaller (torchvision's rule)."""

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, img):
        return functional.center_crop(img, self.size)


class RandomResizedCrop:
    """A random box of `scale` of the area and `ratio` aspect, resized to `size` (torchvision's sampling:
    10 tries, then a centre crop of the clamped aspect ratio). Randomness from torch's global generator."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=Image.Resampling.BILINEAR, antialias=True):
        self.size = _pair(size)
        self.scale = scale
        self.ratio = ratio
        self.interpolation = interpolation

    @staticmethod
    def get_params(img, scale, ratio):
        width, height = img.size
        area = height * width
        log_ratio = torch.log(torch.tensor(ratio))
        for _ in range(10):
            target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
            aspect = math.exp(torch.empty(1).uniform_(log_ratio[0].item(), log_ratio[1].item()).item())
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                i = int(torch.randint(0, height - h + 1, size=(1,)).item())
                j = int(torch.randint(0, width - w + 1, size=(1,)).item())
                return i, j, h, w
        in_ratio = float(width) / float(height)
        if in_ratio < min(ratio):
            w = width
            h = int(round(w / min(ratio)))
        elif in_ratio > max(ratio):
            h = height
            w = int(round(h * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        i, j, h, w = self.get_params(img, self.scale, self.ratio)
        box = img.crop((j, i, j + w, i + h))
        return box.resize((self.size[1], self.size[0]), self.interpolation)


class ToTensor:
    """PIL image (H, W[, C]) uint8 -> float tensor (C, H, W) in [0, 1]."""

    def __call__(self, pic):
        if not isinstance(pic, Image.Image):
            raise TypeError(f"the torchvision stand-in's ToTensor takes PIL images, got {type(pic).__name__}")
        if pic.mode not in ("L", "LA", "RGB", "RGBA"):
            raise TypeError(f"the torchvision stand-in's ToTensor takes 8-bit L/LA/RGB/RGBA images, got {pic.mode}")
        arr = np.array(pic, dtype=np.uint8, copy=True)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous().float().div(255)


class ToPILImage:
    """Float tensor (C, H, W) in [0, 1] -> PIL image (torchvision's float rule: x * 255, truncated to uint8)."""

    def __call__(self, pic):
        if not isinstance(pic, torch.Tensor) or pic.dim() != 3:
            raise TypeError("the torchvision stand-in's ToPILImage takes a (C, H, W) tensor")
        if pic.is_floating_point():
            pic = pic.mul(255).byte()
        arr = pic.permute(1, 2, 0).cpu().numpy()
        if arr.shape[2] == 1:
            return Image.fromarray(arr[:, :, 0], mode="L")
        return Image.fromarray(arr, mode={3: "RGB", 4: "RGBA"}[arr.shape[2]])
