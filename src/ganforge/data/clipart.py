"""`builtin:clipart:CATEGORY`: one category of Debian's openclipart-png, composited on white.

openclipart-png (`apt-get install openclipart-png`) installs public-domain clip art under
/usr/share/openclipart/png/CATEGORY/ (animals, buildings, food, transportation, ...), in mixed sizes and modes
(RGBA, LA, P with transparency). A category is every PNG below its folder, sub-folders included, each file
counted once (the package links some drawings into several places). Each drawing is composited onto white,
scaled to fit inside the target size (the whole drawing stays visible; no crop) and centred on a white canvas.
`builtin:clipart:transportation` is the project's stand-in for "a few hundred pictures of cars".

The decoded tensor is cached like a user folder's (data/images.py's cache format, under cache_root()/clipart),
keyed by the files' paths, sizes and mtimes and the target size. Unreadable files are skipped and counted.
Every 10th drawing (in path order) is the test split. $GANFORGE_CLIPART points at another copy of the png/ tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..cache import cache_root
from .images import (DECODE_ERRORS, SkippedImagesWarning, name_some, open_image, parallel_map, read_cache,
                     strict_decoding, to_channels, write_cache)
from .spec import DataSpec
from .store import TensorData

CLIPART_ROOT = "/usr/share/openclipart/png"
CLIPART_FORMAT = 1         # bump when decoding changes, so old caches are not reused
CLIPART_SIZE = (64, 64)    # default (H, W) when --size is not given
TEST_EVERY = 10            # every 10th drawing is held out


def clipart_root() -> Path:
    root = Path(os.environ.get("GANFORGE_CLIPART", CLIPART_ROOT))
    if not root.is_dir():
        raise RuntimeError(f"the clip art folder '{root}' is missing; install it with `apt-get install "
                           "openclipart-png` (Debian/Ubuntu), or set GANFORGE_CLIPART to a folder of category folders")
    return root


def clipart_categories() -> list[str]:
    return sorted(p.name for p in clipart_root().iterdir() if p.is_dir())


def clipart_files(category: str) -> list[Path]:
    """Every PNG under the category's folder (links followed), each target file once, in path order."""
    root = clipart_root()
    folder = root / category
    if not category or "/" in category or not folder.is_dir():
        raise ValueError(f"no clip art category '{category}'; choose one of: {', '.join(clipart_categories())} "
                         f"(e.g. --data builtin:clipart:transportation)")
    seen: set[Path] = set()
    files = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() != ".png":
            continue
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # a dangling or looping link: not a drawing
            continue
        if target in seen or not target.is_file():
            continue
        seen.add(target)
        files.append(path)
    if not files:
        raise ValueError(f"clip art category '{category}' in {root} holds no PNG files")
    return files


def fit_on_white(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to fit inside (H, W) keeping the aspect, centred on a white canvas of that size."""
    height, width = size
    w, h = im.size
    scale = min(width / w, height / h)
    inner = im.resize((min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))),
                      Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = Image.new(im.mode, (width, height), (255,) * len(im.getbands()) if len(im.getbands()) > 1 else 255)
    canvas.paste(inner, ((width - inner.width) // 2, (height - inner.height) // 2))
    return canvas


def _decode(path: Path, size: tuple[int, int], channels: int) -> np.ndarray | str:
    try:
        im = fit_on_white(to_channels(open_image(path, draft_side=2 * max(size)), channels), size)
    except DECODE_ERRORS as e:
        return f"{type(e).__name__}: {e}"
    arr = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))


def clipart_images(category: str, size: tuple[int, int], channels: int) -> tuple[np.ndarray, list[str]]:
    """(N, C, H, W) uint8 of the category's readable drawings, and the unreadable ones (relative paths)."""
    root = clipart_root()
    files = clipart_files(category)
    stats = []
    for p in files:
        st = p.stat()
        stats.append([str(p.relative_to(root)), st.st_size, st.st_mtime_ns])
    key = hashlib.sha256(json.dumps([CLIPART_FORMAT, str(root.resolve()), category, stats, list(size), channels],
                                    separators=(",", ":")).encode()).hexdigest()
    directory = cache_root() / "clipart"
    cached = read_cache(directory, key)
    if cached is not None:
        x, meta = cached
        return x, list(meta["skipped"])
    with strict_decoding():
        decoded = parallel_map(lambda p: _decode(p, size, channels), files, f"decoding clip art: {category}",
                               quiet=len(files) < 200)
    skipped = [f"{p.relative_to(root)} ({d})" for p, d in zip(files, decoded) if isinstance(d, str)]
    kept = [d for d in decoded if not isinstance(d, str)]
    if not kept:
        raise ValueError(f"no readable drawing in clip art category '{category}': {name_some(skipped)}")
    x = np.stack(kept)
    write_cache(directory, key, x, {"key": key, "shape": list(x.shape), "skipped": skipped, "category": category,
                                    "format": CLIPART_FORMAT})
    return x, skipped


def clipart(category: str, size=None, channels=None, split: str = "train") -> TensorData:
    """builtin:clipart:CATEGORY (see the module doc): unlabelled RGB (or grey with channels=1) drawings."""
    if split not in ("train", "test"):
        raise ValueError(f"builtin:clipart has a train and a test split, not '{split}'")
    size = tuple(int(s) for s in size) if size is not None else CLIPART_SIZE
    channels = 3 if channels is None else int(channels)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    x, skipped = clipart_images(category, size, channels)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable clip art files in '{category}': {name_some(skipped)}",
                      SkippedImagesWarning, stacklevel=2)
    test = np.arange(len(x)) % TEST_EVERY == TEST_EVERY - 1
    x = x[test] if split == "test" else x[~test]
    spec = DataSpec(kind="image", shape=tuple(int(s) for s in x.shape[1:]), n_classes=0, class_names=(),
                    name=f"clipart-{category}")
    return TensorData(spec=spec, x=torch.from_numpy(np.ascontiguousarray(x)), y=None, skipped=tuple(skipped),
                      source=f"builtin:clipart:{category}")
