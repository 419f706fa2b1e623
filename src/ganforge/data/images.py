"""Image folders -> one uint8 tensor (N, C, H, W), decoded once and cached on disk.

Layout: `root/*.png` is unlabelled; `root/<class>/**/*.png` is labelled (sorted sub-folder names are
labels 0..K-1). Conversions, so that every file means the same thing:
- transparency (RGBA, LA, palette or grey with a transparent colour) is composited onto WHITE: clip art
  and icons are drawn on a transparent background that viewers show as white;
- grey/1-bit/16-bit/CMYK/palette become "L" (channels=1) or "RGB" (channels=3); 16-bit values are
  scaled to 8 bits; EXIF orientation is applied; animated GIF/WebP give their first frame;
- fit="crop" resizes to cover HxW and centre-crops; fit="pad" fits inside HxW and pads with BLACK.
`decode_image` is the one decoding path of training and `ganforge data inspect`, so both call the same files
unreadable: corrupt, truncated, over Pillow's pixel limit, or no file (a symlink loop, a dangling link, a
pipe). Those are skipped and named in one warning.

The decoded pixels are cached on disk as one raw uint8 file (`<key>.u8`, rows of C*H*W bytes, with a `<key>.json`
that marks it complete), written in one streaming pass (a chunk of files in memory at a time, whatever the folder's
size) and memory-mapped for training: the page cache holds what fits, so a folder larger than RAM trains with bounded
memory, and several processes on one machine share one copy. See docs/architecture.md ("Data larger than memory").
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import stat
import struct
import sys
import warnings
from collections import Counter
import multiprocessing
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps

from ..cache import cache_root
from ..config import CHOICES
from .spec import DataSpec
from .store import TensorData

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
FITS = CHOICES["data.fit"]
CACHE_FORMAT = 3  # bump when decoding or the cache layout changes, so old caches are not reused (3: raw .u8 memmap)
DECODE_TASK = 32  # files per task of the streaming cache pass; 4 tasks per worker in flight bound its memory
PROCESS_MIN_FILES = 1024  # from this many files the cache pass decodes in forked processes (no GIL contention)
PROGRESS_MIN_FILES = 200
# What a broken file makes Pillow raise (UnidentifiedImageError and "image file is truncated" are OSErrors).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
_RESAMPLE = Image.Resampling.LANCZOS
_T = TypeVar("_T")


class SkippedImagesWarning(UserWarning):
    """Some files in an image folder could not be decoded and were left out."""


@dataclass
class FolderScan:
    """The files of an image folder. Paths are relative to root, '/'-separated, sorted."""

    root: Path
    images: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # per image; empty when unlabelled
    class_names: list[str] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)  # images directly in root although classes exist
    other: list[str] = field(default_factory=list)  # files that are not images by their suffix
    stats: list[tuple[str, int, int]] = field(default_factory=list)  # (path, bytes, mtime_ns) per image
    unopenable: dict[str, str] = field(default_factory=dict)  # image paths that are no regular file -> why

    @property
    def label(self) -> str:
        return "'" + self.root.as_posix().rstrip("/") + "/'"


def scan_folder(root: Path) -> FolderScan:
    """List image files under root (hidden files and folders are ignored) and find class sub-folders."""
    root = Path(root)
    if not root.is_dir():
        what = "a file" if root.exists() else "missing"
        raise ValueError(f"data path '{root}' is {what}, not a folder; give --data a folder of images")
    scan = FolderScan(root)
    found: list[tuple[str, int, int]] = []
    seen: set[str] = set()  # real paths of visited folders: symlinked folders are followed, loops are not
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = Path(dirpath).relative_to(root)
        for fname in filenames:
            if fname.startswith("."):
                continue
            rel = (rel_dir / fname).as_posix()
            if not fname.lower().endswith(IMAGE_SUFFIXES):
                scan.other.append(rel)
                continue
            path = os.path.join(dirpath, fname)
            try:
                st = os.stat(path)
            except OSError as e:  # a symlink loop or a dangling link: kept, so that it is named as unreadable
                link = f"symlink to '{os.readlink(path)}': " if os.path.islink(path) else ""
                scan.unopenable[rel] = f"{link}{e.strerror}"
                found.append((rel, -1, -1))
                continue
            if not stat.S_ISREG(st.st_mode):  # a pipe or device would block or never end: never open it
                scan.unopenable[rel] = "not a regular file"
            found.append((rel, st.st_size, st.st_mtime_ns))
    found.sort()
    scan.other.sort()
    scan.class_names = sorted({rel.split("/", 1)[0] for rel, _, _ in found if "/" in rel})
    if scan.class_names:
        index = {name: i for i, name in enumerate(scan.class_names)}
        scan.loose = [rel for rel, _, _ in found if "/" not in rel]
        found = [f for f in found if "/" in f[0]]
        scan.labels = [index[rel.split("/", 1)[0]] for rel, _, _ in found]
    scan.stats = found
    scan.images = [rel for rel, _, _ in found]
    return scan


def name_some(names: list[str] | tuple[str, ...], limit: int = 10) -> str:
    """'a.jpg, b.png ... and 3 more'."""
    shown = ", ".join(names[:limit])
    return shown + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


@contextmanager
def strict_decoding() -> Iterator[None]:
    """Make Pillow raise on truncated files (someone may have set LOAD_TRUNCATED_IMAGES globally)."""
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def parallel_map(fn: Callable[[str], _T], items: list[str], title: str, quiet: bool = True) -> list[_T]:
    """fn over items on os.cpu_count() threads (Pillow releases the GIL), in order; a Rich bar if many."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(32, os.cpu_count() or 1))) as pool, \
            _progress(title, len(items), quiet) as advance:
        out: list[_T] = []
        for result in pool.map(fn, items):
            out.append(result)
            advance(1)
        return out


def _wide_to_grey(im: Image.Image) -> Image.Image:
    """16/32-bit integer grey -> 8-bit by scaling 0..65535 to 0..255; float grey is clipped to 0..255."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr8 = np.clip(np.nan_to_num(arr), 0, 255)
    else:
        arr8 = np.clip(arr.astype(np.int64), 0, 65535) / 257.0
    return Image.fromarray(np.rint(arr8).astype(np.uint8), mode="L")


def to_channels(im: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode -> "L" (channels=1) or "RGB" (channels=3); transparency composited onto white."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _wide_to_grey(im)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or im.info.get("transparency") is not None:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return im.convert("L" if channels == 1 else "RGB")


def fit_image(im: Image.Image, size: tuple[int, int], fit: str) -> Image.Image:
    """Resize to (H, W): "crop" covers then centre-crops, "pad" fits inside then pads with black."""
    height, width = size
    w, h = im.size
    if fit == "crop":
        # the centre region of the source that is kept, with the target's aspect; the side that limits the
        # scale keeps its exact extent, so float rounding never puts the box outside the image (Pillow
        # rejects a box offset of -3e-14, which width / scale gave for e.g. a 750x385 image at 100x100)
        box_w, box_h = min(w, h * width / height), min(h, w * height / width)
        left, top = (w - box_w) / 2, (h - box_h) / 2
        return im.resize((width, height), _RESAMPLE, box=(left, top, left + box_w, top + box_h), reducing_gap=3.0)
    scale = min(width / w, height / h)
    inner_w = min(width, max(1, round(w * scale)))
    inner_h = min(height, max(1, round(h * scale)))
    inner = im.resize((inner_w, inner_h), _RESAMPLE, reducing_gap=3.0)
    canvas = Image.new(im.mode, (width, height), 0)
    canvas.paste(inner, ((width - inner_w) // 2, (height - inner_h) // 2))
    return canvas


def open_image(path: Path, draft_side: int | None = None) -> Image.Image:
    """Open, fully decode (so truncation raises) and apply the EXIF orientation."""
    with Image.open(path) as im:
        if draft_side and im.format == "JPEG":
            im.draft(None, (draft_side, draft_side))  # decode big JPEGs at a reduced DCT scale
        im.load()
        try:
            ImageOps.exif_transpose(im, in_place=True)
        except (*DECODE_ERRORS, KeyError, TypeError):
            pass  # a broken EXIF block over intact pixels: keep the pixels as stored
    return im


@dataclass
class Decoded:
    """One decoded file: its pixels as training gets them and what `data inspect` reports about it."""

    pixels: np.ndarray | None  # uint8 (C, H, W), converted and fitted; None when not kept
    stored_size: str           # "HxW" as stored, after the EXIF orientation
    mode: str                  # Pillow mode as stored
    format: str
    transparent: bool


def decode_image(path: Path, size: tuple[int, int] | None, channels: int, fit: str) -> Decoded:
    """The one decoding path: open, decode, convert, fit. Raises one of DECODE_ERRORS when unreadable."""
    im = open_image(path, draft_side=2 * max(size) if size else None)
    out = Decoded(None, f"{im.height}x{im.width}", im.mode, im.format or "?",
                  "A" in im.mode or im.info.get("transparency") is not None)
    im = to_channels(im, channels)
    if size is not None:
        im = fit_image(im, size, fit)
    arr = np.asarray(im, dtype=np.uint8)
    out.pixels = np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    return out


def _decode_rel(scan: FolderScan, rel: str, size: tuple[int, int] | None, channels: int, fit: str,
                keep_pixels: bool = True) -> Decoded | str:
    """decode_image of scan.root/rel, or why it is unreadable (call inside strict_decoding())."""
    if rel in scan.unopenable:
        return scan.unopenable[rel]
    try:
        out = decode_image(scan.root / rel, size, channels, fit)
    except DECODE_ERRORS as e:  # a decompression bomb would take gigabytes to decode: Pillow refuses it
        fix = " Downscale it to train on it" if isinstance(e, Image.DecompressionBombError) else ""
        return f"{type(e).__name__}: {e}{fix}"
    if not keep_pixels:
        out.pixels = None
    return out


def decode_files(scan: FolderScan, rels: list[str], size: tuple[int, int] | None, channels: int, fit: str,
                 quiet: bool = True, keep_pixels: bool = True) -> list[Decoded | str]:
    """decode_image over scan.root/rels in parallel: a Decoded per readable file, else why it is unreadable."""
    with strict_decoding():
        return parallel_map(lambda rel: _decode_rel(scan, rel, size, channels, fit, keep_pixels), rels,
                            f"decoding {scan.root.name or scan.root}", quiet)


def cache_key(scan: FolderScan, size: tuple[int, int] | None, channels: int, fit: str) -> str:
    """sha256 of everything the decoded tensor depends on: files (path, bytes, mtime), size, channels, fit."""
    payload = [CACHE_FORMAT, str(scan.root.resolve()), scan.stats, list(size) if size else None, channels, fit]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def read_cache(directory: Path, key: str) -> tuple[np.ndarray, dict] | None:
    """The cached (uint8 array, meta) of `key` in `directory`, or None when absent, unreadable or stale."""
    meta_path, x_path = directory / f"{key}.json", directory / f"{key}.npy"
    if not meta_path.is_file() or not x_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        x = np.load(x_path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # unreadable entry: decode again and overwrite it
    if meta.get("key") != key or list(x.shape) != meta.get("shape") or x.dtype != np.uint8:
        return None
    return x, meta


def write_cache(directory: Path, key: str, x: np.ndarray, meta: dict) -> None:
    """x first, then the .json that marks the entry complete; each via a temp name + os.replace."""
    tmp_tag = f".tmp-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, write in (
            (f"{key}.npy", lambda f: np.save(f, x, allow_pickle=False)),
            (f"{key}.json", lambda f: f.write(json.dumps(meta).encode())),
        ):
            tmp = directory / (name + tmp_tag)
            try:
                with open(tmp, "wb") as f:
                    write(f)
                os.replace(tmp, directory / name)
            finally:
                tmp.unlink(missing_ok=True)
    except OSError as e:
        warnings.warn(
            f"could not write the image cache in '{directory}' ({e}); the folder will be decoded again next "
            "time. Set GANFORGE_CACHE to a writable folder to cache it",
            stacklevel=3,
        )


def _mixed_sizes_error(scan: FolderScan, sizes: Counter) -> ValueError:
    common = ", ".join(f"{s} ({n} files)" for s, n in sizes.most_common(5))
    more = f" and {len(sizes) - 5} more" if len(sizes) > 5 else ""
    top = sizes.most_common(1)[0][0]
    return ValueError(
        f"image folder {scan.label} holds images of {len(sizes)} different sizes (HxW): {common}{more}; "
        f"pass --size HxW (e.g. --size {top}) to resize them all"
    )


def _empty_error(scan: FolderScan, skipped: list[str]) -> ValueError:
    found = []
    if skipped:
        found.append(f"{len(skipped)} skipped as unreadable: {name_some(skipped, 5)}")
    if scan.other:
        found.append(f"{len(scan.other)} other files: {name_some(scan.other, 5)}")
    what = "; ".join(found) if found else "no files at all"
    return ValueError(
        f"image folder {scan.label} has 0 readable images ({what}); "
        "give --data a folder of .png/.jpg/.webp/.bmp files"
    )


def _decode_all(scan: FolderScan, size: tuple[int, int] | None, channels: int, fit: str, quiet: bool):
    """-> (x uint8 (N, C, H, W), labels of the kept files, relative paths of the skipped ones)."""
    results: list = [r.pixels if isinstance(r, Decoded) else r
                     for r in decode_files(scan, scan.images, size, channels, fit, quiet)]
    kept = [i for i, r in enumerate(results) if isinstance(r, np.ndarray)]
    skipped = [scan.images[i] for i, r in enumerate(results) if not isinstance(r, np.ndarray)]
    if not kept:
        raise _empty_error(scan, skipped)
    sizes = Counter(f"{r.shape[1]}x{r.shape[2]}" for r in results if isinstance(r, np.ndarray))
    if len(sizes) > 1:
        raise _mixed_sizes_error(scan, sizes)
    first = results[kept[0]]
    assert isinstance(first, np.ndarray)
    x = np.empty((len(kept), *first.shape), dtype=np.uint8)
    for row, i in enumerate(kept):
        x[row] = results[i]
        results[i] = ""  # free each image once copied, so peak memory stays near one dataset
    labels = [scan.labels[i] for i in kept] if scan.class_names else None
    return x, labels, skipped


def format_bytes(n: int | float) -> str:
    """1234567890 -> '1.15 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def mapped_paths(directory: Path, key: str) -> tuple[Path, Path]:
    """(pixels, meta) of a cache entry: `<key>.u8` raw rows and `<key>.json`, written last, marking it complete."""
    return directory / f"{key}.u8", directory / f"{key}.json"


def map_pixels(path: Path, shape: tuple[int, ...]) -> tuple[torch.Tensor, mmap.mmap | None]:
    """(uint8 tensor, its mmap) over the raw file `path`: memory-mapped copy-on-write (nothing writes to the file)."""
    if int(np.prod(shape)) == 0:
        return torch.empty(shape, dtype=torch.uint8), None
    arr = np.memmap(path, dtype=np.uint8, mode="c", shape=tuple(shape))
    return torch.from_numpy(arr), arr._mmap


class TruncatedCacheWarning(UserWarning):
    """A decoded-image cache file is shorter or longer than its entry says (an interrupted copy, a full disk)."""


def read_mapped(directory: Path, key: str) -> tuple[tuple[torch.Tensor, mmap.mmap | None], dict] | None:
    """The memory-mapped pixels and meta of `key`, or None when absent, stale or damaged (then it is rebuilt).

    A pixel file whose length is not the entry's N*C*H*W bytes is reported (TruncatedCacheWarning) and ignored.
    """
    x_path, meta_path = mapped_paths(directory, key)
    if not meta_path.is_file() or not x_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        length = x_path.stat().st_size
    except (OSError, ValueError):
        return None
    shape = meta.get("shape")
    if meta.get("key") != key or meta.get("format") != CACHE_FORMAT or not isinstance(shape, list):
        return None
    expected = int(np.prod(shape))
    if length != expected:
        warnings.warn(f"the decoded-image cache '{x_path}' holds {length:,} bytes where its entry says {expected:,} "
                      "(an interrupted copy or a full disk?); decoding the folder again", TruncatedCacheWarning,
                      stacklevel=3)
        return None
    return map_pixels(x_path, tuple(shape)), meta


def _check_disk(directory: Path, need: int, what: str) -> None:
    free = shutil.disk_usage(directory).free
    if need > free:
        raise ValueError(f"{what} needs {format_bytes(need)} of disk for its decoded-image cache, but '{directory}' has "
                         f"{format_bytes(free)} free; pass --cache DIR on a disk with room (or train at a smaller --size, "
                         "or from shards: `ganforge data pack`)")


class CacheUnwritable(OSError):
    """The cache folder or its temporary file cannot be created (read-only, no permission)."""


def decode_to_cache(scan: FolderScan, size: tuple[int, int] | None, channels: int, fit: str, quiet: bool,
                    directory: Path, key: str) -> tuple[tuple[torch.Tensor, mmap.mmap | None], dict]:
    """Decode every image of `scan` in one streaming pass into the raw cache file, then map it.

    Workers decode tasks of DECODE_TASK files and write each image's row straight into a temporary file at the row of
    its file (pwrite), so no pixels pass between processes and memory is bounded by the tasks in flight (4 per
    worker), whatever the folder's size. From PROCESS_MIN_FILES files on (on Linux) the workers are forked processes
    (decode_image holds the GIL for part of each image: threads scale poorly). Unreadable files leave holes that one
    sequential pass closes at the end (rows move up, the file is cut to the kept rows); the file is flushed to disk
    and renamed into place, and the .json that marks the entry complete is written last. A cache that cannot fit on
    the disk is refused up front, and a disk that fills up during the pass is an error (ValueError naming the size
    needed). Raises CacheUnwritable when `directory` or the temporary file cannot be created.
    """
    x_path, meta_path = mapped_paths(directory, key)
    n = len(scan.images)
    what = f"image folder {scan.label} ({n:,} images)"
    tmp = directory / f"{key}.u8.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    results: list[str | tuple[int, ...] | None] = [None] * n  # why unreadable, or the decoded (C, H, W)
    first = 0
    with strict_decoding():  # once around the pool: threads share Pillow's flag, forked workers inherit it
        if size is not None:
            shape: tuple[int, ...] = (channels, *size)
        else:  # native size: the first readable image's
            while first < n:
                r = _decode_rel(scan, scan.images[first], None, channels, fit)
                if isinstance(r, Decoded):
                    shape = r.pixels.shape
                    break
                results[first] = r
                first += 1
            if first == n:
                raise _empty_error(scan, list(scan.images))
        row = int(np.prod(shape))
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheUnwritable(e.errno, e.strerror, str(directory)) from None
        _check_disk(directory, n * row, what)
        try:
            with open(tmp, "wb") as f:
                f.truncate(n * row)  # sparse until written
        except OSError as e:
            raise CacheUnwritable(e.errno, e.strerror, str(directory)) from None
        try:
            job = (scan, size, channels, fit, str(tmp), shape)
            tasks = [(i, scan.images[i:i + DECODE_TASK]) for i in range(first, n, DECODE_TASK)]  # (start, files)
            try:
                for (start, _), out in run_tasks(_decode_rows, tasks, job, n, f"decoding {scan.root.name or scan.root}",
                                                 quiet):
                    results[start:start + len(out)] = out
                skipped = [rel for rel, r in zip(scan.images, results) if isinstance(r, str)]
                sizes = Counter(f"{r[1]}x{r[2]}" for r in results if isinstance(r, tuple))
                if not sizes:
                    raise _empty_error(scan, skipped)
                if len(sizes) > 1:
                    raise _mixed_sizes_error(scan, sizes)
                kept = [i for i, r in enumerate(results) if isinstance(r, tuple)]
                _close_holes(tmp, kept, row)
            except OSError as e:  # a full disk (ENOSPC) or an I/O error while writing
                raise ValueError(f"writing the decoded-image cache of {what} into '{directory}' failed "
                                 f"({e.strerror or e}); it needs {format_bytes(n * row)}: pass --cache DIR on a disk "
                                 "with room") from None
            labels = [scan.labels[i] for i in kept] if scan.class_names else None
            meta = {"key": key, "shape": [len(kept), *shape], "labels": labels, "class_names": scan.class_names,
                    "skipped": skipped, "source": str(scan.root.resolve()), "format": CACHE_FORMAT}
            os.replace(tmp, x_path)
            meta_tmp = meta_path.with_name(meta_path.name + tmp.name[-14:])
            try:
                meta_tmp.write_text(json.dumps(meta))
                os.replace(meta_tmp, meta_path)
            finally:
                meta_tmp.unlink(missing_ok=True)
        finally:
            tmp.unlink(missing_ok=True)
    return map_pixels(x_path, tuple(meta["shape"])), meta


COPY_CHUNK = 64 << 20  # bytes per read/write when _close_holes moves a run of rows


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _close_holes(path: Path, kept: list[int], row: int) -> None:
    """Move rows kept[k] to row k and cut the file there; then flush it to disk (fsync), so that a power cut after
    the rename cannot leave a file of the right length but lost contents.

    Runs of consecutive kept rows move together in COPY_CHUNK pieces, in ascending order, so nothing is overwritten
    before it is read (a destination never lies after its source)."""
    with open(path, "r+b") as f:
        fd = f.fileno()
        k = 0
        while k < len(kept):
            j = k
            while j + 1 < len(kept) and kept[j + 1] == kept[j] + 1:
                j += 1  # kept[k..j] is a run of consecutive rows
            src, dst, length = kept[k] * row, k * row, (j - k + 1) * row
            if src != dst:
                for at in range(0, length, COPY_CHUNK):
                    _pwrite_all(fd, os.pread(fd, min(COPY_CHUNK, length - at), src + at), dst + at)
            k = j + 1
        f.truncate(len(kept) * row)
        os.fsync(fd)


def _decode_rows(start: int, rels: list[str], job: tuple | None) -> list[str | tuple[int, ...]]:
    """Decode rels (files start, start+1, ...) and pwrite each image's pixels at its row of the cache file; per file
    its (C, H, W), or why it is unreadable. An image of another shape is not written (the caller reports mixed sizes).
    Runs inside the caller's strict_decoding()."""
    scan, size, channels, fit, path, shape = job if job is not None else _JOB
    row = int(np.prod(shape))
    out: list[str | tuple[int, ...]] = []
    fd = os.open(path, os.O_WRONLY)
    try:
        for k, rel in enumerate(rels):
            r = _decode_rel(scan, rel, size, channels, fit)
            if not isinstance(r, Decoded):
                out.append(r)
                continue
            out.append(tuple(r.pixels.shape))
            if r.pixels.shape == shape:
                _pwrite_all(fd, r.pixels, (start + k) * row)
    finally:
        os.close(fd)
    return out


_JOB: tuple | None = None  # the job of a decode pass (decode_to_cache, shards.pack_folder), inherited by forked workers


def _decode_task(rels: list[str], job: tuple | None) -> list[Decoded | str]:
    """decode_files' work for shards.pack_folder (inside the caller's strict_decoding())."""
    scan, size, channels, fit, keep = job if job is not None else _JOB
    return [_decode_rel(scan, rel, size, channels, fit, keep) for rel in rels]


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextmanager
def _decode_pool(n: int, job: tuple) -> Iterator[tuple[Executor, int, bool]]:
    """(pool, workers, forked): forked processes (Linux, n >= PROCESS_MIN_FILES, several CPUs), which find the job
    in _JOB, else threads, which are given it."""
    global _JOB
    workers = min(32, usable_cpus())
    if n >= PROCESS_MIN_FILES and workers > 1 and sys.platform.startswith("linux"):
        _JOB = job
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                     initializer=_drop_inherited_locks) as pool:
                yield pool, workers, True
        finally:
            _JOB = None
    else:
        with ThreadPoolExecutor(workers) as pool:
            yield pool, workers, False


_HELD_LOCKS: set[int] = set()  # descriptors of the cache locks this process holds (see _drop_inherited_locks)


def _drop_inherited_locks() -> None:
    """Forked decode workers close their copies of the cache lock, so that a killed parent's lock dies with it."""
    for fd in list(_HELD_LOCKS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


def run_tasks(fn: Callable, tasks: list[tuple], job: tuple, n_files: int, title: str,
              quiet: bool) -> Iterator[tuple[tuple, list]]:
    """(task, fn(*task, job)) for each task, in order, on a _decode_pool: at most 4 tasks per worker in flight (so
    memory is bounded whatever the number of tasks), and a progress bar over n_files advanced by each result's length.
    Forked workers find the job in _JOB (they are given None)."""
    with _decode_pool(n_files, job) as (pool, workers, forked):
        window: deque = deque()
        todo = iter(tasks)

        def refill() -> None:
            for task in todo:
                window.append((task, pool.submit(fn, *task, None if forked else job)))
                if len(window) >= 4 * workers:
                    return

        refill()  # processes are forked here, before the progress bar's thread starts
        with _progress(title, n_files, quiet) as advance:
            while window:
                task, fut = window.popleft()
                result = fut.result()
                refill()
                yield task, result
                advance(len(result))


@contextmanager
def cache_lock(directory: Path, key: str) -> Iterator[None]:
    """An exclusive lock on cache entry `key` (flock on `<key>.lock`), so that processes that want the same entry at
    once (torchrun's ranks, two runs) build it once: the others wait, then find it. No lock where none can be taken
    (no fcntl, a read-only folder, a file system without flock)."""
    try:
        import fcntl

        directory.mkdir(parents=True, exist_ok=True)
        f = open(directory / f"{key}.lock", "a+b")
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    except OSError:  # e.g. ENOLCK, or ENOSYS on a mount without flock
        f.close()
        yield
        return
    _HELD_LOCKS.add(f.fileno())
    try:
        yield
    finally:
        _HELD_LOCKS.discard(f.fileno())
        f.close()  # releases the lock


@contextmanager
def _progress(title: str, total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A Rich bar on stderr (when not quiet and the job is large), as an advance(n) function."""
    if quiet or total <= PROGRESS_MIN_FILES:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(title, total=total)
        yield lambda n: bar.advance(task, n)


def cache_directory(cache_dir: str | Path | None) -> Path:
    """Where decoded image folders are cached: cache_dir/images, default cache_root()/images."""
    directory = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return directory / "images"


def load_image_folder(
    root: Path,
    size: tuple[int, int] | None,
    channels: int = 3,
    fit: str = "crop",
    cache_dir: str | Path | None = None,
    quiet: bool = False,
    captions: bool = False,
) -> TensorData:
    """A folder of images -> TensorData with uint8 x (N, C, H, W); see the module docstring for the rules.
    captions: attach the images' captions (IMAGE.txt or captions.csv, see data/captions.py) when the folder has any.

    size (H, W) resizes with `fit`; None requires all images to share one size. Decoded tensors are cached
    under cache_dir/images (default: cache_root(), i.e. $GANFORGE_CACHE or ~/.cache/ganforge), keyed by the
    files' paths, sizes and mtimes, so a second load of an unchanged folder decodes nothing. Nothing is
    written to root.
    """
    root = Path(root)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if fit not in FITS:
        raise ValueError(f"unknown fit '{fit}'; choose one of: {', '.join(FITS)}")
    if size is not None:
        size = (int(size[0]), int(size[1]))
        if min(size) < 1:
            raise ValueError(f"size must be positive (H, W), got {size}")
    scan = scan_folder(root)
    if scan.loose:
        raise ValueError(
            f"image folder {scan.label} has class sub-folders ({name_some(scan.class_names, 5)}) and also "
            f"{len(scan.loose)} images directly inside it ({name_some(scan.loose, 5)}); move those into a "
            "class sub-folder, or point --data at a folder without sub-folders for unlabelled data"
        )
    if not scan.images:
        raise _empty_error(scan, [])

    directory = cache_directory(cache_dir)
    key = cache_key(scan, size, channels, fit)
    cached = read_mapped(directory, key)
    if cached is None:
        try:
            with cache_lock(directory, key):  # torchrun's ranks: one builds the entry, the others then read it
                cached = read_mapped(directory, key) or decode_to_cache(scan, size, channels, fit, quiet, directory, key)
        except CacheUnwritable as e:  # no writable cache: decode into memory (bounded by RAM, as before the cache)
            warnings.warn(f"could not write the image cache in '{directory}' ({e}); decoding into memory, and "
                          "again next time. Pass --cache DIR (or set GANFORGE_CACHE) to a writable folder",
                          stacklevel=2)
            xa, labels, skipped = _decode_all(scan, size, channels, fit, quiet)
            cached = ((torch.from_numpy(xa), None), {"labels": labels, "skipped": skipped})
    (x, mapped), meta = cached
    labels, skipped = meta["labels"], list(meta["skipped"])
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable image files in {scan.label}: {name_some(skipped)}; "
            f"`ganforge data inspect {scan.root}` says why",
            SkippedImagesWarning,
            stacklevel=2,
        )
    spec = DataSpec(
        kind="image",
        shape=tuple(int(s) for s in x.shape[1:]),
        n_classes=len(scan.class_names),
        class_names=tuple(scan.class_names),
        name=root.resolve().name,
    )
    y = torch.tensor(labels, dtype=torch.int64) if labels is not None else None
    data = TensorData(spec=spec, x=x, y=y, skipped=tuple(skipped), source=str(root), mapped=mapped)
    if captions:  # IMAGE.txt / captions.csv: the text families' captions (data/captions.py)
        from .captions import attach_folder_captions

        gone = set(skipped)
        data = attach_folder_captions(data, root, [r for r in scan.images if r not in gone])
    return data
