"""torchvision.transforms.functional.resize (PIL images), and the centre crop CenterCrop uses."""

from __future__ import annotations

from PIL import Image, ImageOps

__all__ = ["center_crop", "resize"]


def _pair(size) -> tuple[int, int]:
    """int -> (size, size); (h, w) or [h, w] -> (h, w); a 1-element sequence -> (s, s)."""
    if isinstance(size, int):
        return size, size
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(f"size must be an int or (h, w), got {size!r}")
    return size


def resize(img, size, interpolation=Image.Resampling.BILINEAR, max_size=None, antialias=True):
    """int size: scale so the shorter side is `size` (the longer side truncated, as torchvision does);
    (h, w): exactly that size."""
    if not isinstance(img, Image.Image):
        raise TypeError(f"the torchvision stand-in's resize takes PIL images, got {type(img).__name__}")
    if max_size is not None:
        raise NotImplementedError("the torchvision stand-in does not implement resize(max_size=...)")
    w, h = img.size
    if isinstance(size, int) or len(size) == 1:
        short = size if isinstance(size, int) else int(size[0])
        if w <= h:
            new_w, new_h = short, int(short * h / w)
        else:
            new_w, new_h = int(short * w / h), short
        if (new_w, new_h) == (w, h):
            return img
    else:
        new_h, new_w = _pair(size)
    return img.resize((new_w, new_h), interpolation)


def center_crop(img, output_size):
    """The centre (th, tw) crop; an image smaller than that is first padded with black on both sides."""
    th, tw = _pair(output_size)
    w, h = img.size
    if tw > w or th > h:
        left, top = (tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0
        right, bottom = (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0
        img = ImageOps.expand(img, border=(left, top, right, bottom), fill=0)
        w, h = img.size
        if (w, h) == (tw, th):
            return img
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return img.crop((left, top, left + tw, top + th))
