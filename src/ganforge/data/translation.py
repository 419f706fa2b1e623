"""Built-in image-to-image data, generated from Fashion-MNIST and the colour emoji font (no download).

Paired (x_b[i] is the target of x[i]):
  fmnist-edges2items  A = line drawing of the item (1x28x28, BLACK strokes on WHITE, as in edges2shoes):
                      pixels where the Sobel gradient magnitude is a local maximum across the edge
                      (non-maximum suppression, Canny 1986) and above a quarter of a full black-to-white
                      step; B = the item (1x28x28); y = its Fashion-MNIST class. Domains ("edges", "items").
  fmnist-lowres       A = 7x7, the 4x4 area average of B (rounded half up); B = the 28x28 item; y = class.
  emoji-gray2color    A = ITU-R BT.601 luma of B (1x64x64); B = the colour emoji (3x64x64) on white.
  emoji-lowres        A = 32x32 colour, the 4x4 area average of B; B = the emoji at 128x128.
  The emoji are every code point of the font's cmap that is an emoji on its own (sequence components
  and private-use code points left out; 1,377 with Debian's fonts-noto-color-emoji 2.042), in code point
  order, every 10th in split="test", unlabelled. Each is drawn by Pillow from the font's one bitmap
  strike (ImageFont.truetype(path, 109), embedded_color=True: 136x128, the art in the centre 128x128),
  composited onto white; 64x64 is the 2x2 area average. Rendered once (a few seconds) and cached under
  $GANFORGE_CACHE/emoji, keyed by the font's SHA-256 and the rendering settings.
Unpaired (A and B drawn independently):
  fmnist-sneaker2boot A = sneakers (class 7), B = ankle boots (class 9); y = A's class (7).
  fmnist-pair:P,Q     A = Fashion-MNIST class P, B = class Q (indices 0-9 or names, e.g. fmnist-pair:0,6).
Labelled (ordinary single-domain data with K >= 2 classes, what StarGAN trains on):
  fmnist-shoes        sandal (0), sneaker (1), ankle boot (2): Fashion-MNIST classes 5, 7 and 9.

size=(H, W) sets domain B's size; A keeps its ratio to B (equal for edges and grey, a quarter for the
lowres sets, so H and W must then be multiples of 4) and is always computed from the resized B by the
rule above, so the closed forms hold at every size. channels=3 repeats grey domains; channels=1 is an
error for the colour emoji sets. Unpaired families (cyclegan, discogan) accept paired sets as they are
(their losses never use the pairing); `as_unpaired(data)` keeps the images and drops the pairing, so
that A and B are also drawn independently, as in a truly unpaired experiment.
registry.py gives these loaders their `builtin:` names.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..cache import cache_root, sha256_file
from .builtin import FASHION_CLASSES, fashion_mnist, resize_uint8, set_channels
from .images import read_cache, write_cache
from .spec import DataSpec
from .store import TensorData

EDGE_THRESHOLD = 0.25  # of a full 0 -> 255 step's Sobel magnitude (4 * 255)
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_PPEM = 109   # the font's one bitmap strike: glyphs are 136x128 with the art in the centre 128x128
EMOJI_SIDE = 128
EMOJI_FORMAT = 2   # bump when rendering changes, so old caches are not reused
EMOJI_TEST_EVERY = 10  # glyph i (in code point order) is in the test split when i % 10 == 9


# -- closed-form derivations (uint8 in, uint8 out) ---------------------------------------------------
def area_downsample(x: Tensor, factor: int) -> Tensor:
    """(N, C, H, W) uint8 -> (N, C, H/f, W/f): the mean of each f x f block, rounded half up."""
    n, c, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"{h}x{w} images cannot be averaged over {factor}x{factor} blocks; use a multiple of {factor}")
    blocks = x.reshape(n, c, h // factor, factor, w // factor, factor).to(torch.int32).sum((3, 5))
    return ((blocks + factor * factor // 2) // (factor * factor)).to(torch.uint8)


def luma601(x: Tensor) -> Tensor:
    """(N, 3, H, W) uint8 RGB -> (N, 1, H, W) uint8: Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), rounded."""
    w = torch.tensor([299, 587, 114], dtype=torch.int32).view(1, 3, 1, 1)
    return ((x.to(torch.int32) * w).sum(1, keepdim=True) + 500).div(1000, rounding_mode="floor").to(torch.uint8)


def edge_map(x: Tensor, threshold: float = EDGE_THRESHOLD) -> Tensor:
    """(N, 1, H, W) uint8 items -> uint8 line drawings: 0 (black) on edge pixels, 255 elsewhere.

    Sobel gradients (zero padding: the background is black), then an edge pixel is one whose magnitude
    beats `threshold` of a full step's (4 * 255) and is >= both neighbours along the gradient direction,
    quantised to 0/45/90/135 degrees (non-maximum suppression, as in Canny 1986: thin lines). Integer
    arithmetic, in numpy: many small element-wise steps, which torch's thread pool only slows down.
    """
    limit = int((threshold * 4 * 255) ** 2)
    tan_lo = math.tan(math.pi / 8)
    n, _, h, w = x.shape
    out = np.empty((n, 1, h, w), dtype=np.uint8)
    for start in range(0, n, 2048):
        p = np.pad(x[start : start + 2048, 0].numpy().astype(np.int32), ((0, 0), (1, 1), (1, 1)))

        def at(img: np.ndarray, dy: int, dx: int) -> np.ndarray:  # at(img, dy, dx)[:, i, j] = img[:, i+dy, j+dx]
            return img[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

        gx = at(p, -1, 1) - at(p, -1, -1) + 2 * (at(p, 0, 1) - at(p, 0, -1)) + at(p, 1, 1) - at(p, 1, -1)
        gy = at(p, 1, -1) - at(p, -1, -1) + 2 * (at(p, 1, 0) - at(p, -1, 0)) + at(p, 1, 1) - at(p, -1, 1)
        mag2 = gx * gx + gy * gy  # exact
        m = np.pad(mag2, ((0, 0), (1, 1), (1, 1)))  # zero outside the image
        ax, ay = np.abs(gx), np.abs(gy)
        across = ay <= tan_lo * ax  # gradient ~0 degrees: compare left/right
        along = ax <= tan_lo * ay   # ~90 degrees: up/down; else a diagonal, (1, -1) when gx, gy differ in sign
        falling = (gx > 0) != (gy > 0)
        ahead = np.where(across, at(m, 0, 1), np.where(along, at(m, 1, 0),
                         np.where(falling, at(m, 1, -1), at(m, 1, 1))))
        behind = np.where(across, at(m, 0, -1), np.where(along, at(m, -1, 0),
                          np.where(falling, at(m, -1, 1), at(m, -1, -1))))
        edge = (mag2 > limit) & (mag2 >= ahead) & (mag2 >= behind)
        out[start : start + 2048, 0] = np.where(edge, 0, 255)
    return torch.from_numpy(out)


def resize(x: Tensor, size: tuple[int, int] | None) -> Tensor:
    """uint8 images to (H, W): an exact area average for whole-number shrink factors, else antialiased bilinear."""
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    h, w = x.shape[-2:]
    if h % size[0] == 0 and w % size[1] == 0 and h // size[0] == w // size[1]:
        return area_downsample(x, h // size[0])
    return resize_uint8(x, tuple(size))


def as_unpaired(data: TensorData) -> TensorData:
    """The same images with spec.pairing "unpaired": A and B are then drawn independently (cyclegan, discogan)."""
    if not data.spec.two_domain:
        raise ValueError(f"'{data.spec.name}' has one domain; unpaired training needs A and B, "
                         "e.g. builtin:fmnist-sneaker2boot")
    if data.spec.pairing == "unpaired":
        return data
    return TensorData(replace(data.spec, pairing="unpaired"), data.x, data.y, data.skipped, data.source, data.x_b)


# -- helpers ---------------------------------------------------------------------------------------
def _size(size) -> tuple[int, int] | None:
    return None if size is None else (int(size[0]), int(size[1]))


def _quarter(name: str, size: tuple[int, int]) -> tuple[int, int]:
    if size[0] % 4 or size[1] % 4:
        raise ValueError(f"builtin:{name} has A at a quarter of B's size: pass --size with H and W multiples of 4, "
                         f"e.g. {4 * max(1, round(size[0] / 4))}")
    return size[0] // 4, size[1] // 4


def _channels(name: str, x: Tensor, channels: int | None) -> Tensor:
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if channels == 1 and x.shape[1] == 3:
        raise ValueError(f"builtin:{name} holds colour images; drop --channels 1 (or use --channels 3)")
    return set_channels(x, channels)


def _two_domain(name: str, split: str, a: Tensor, b: Tensor, y: Tensor | None, pairing: str,
                domains: tuple[str, str], channels: int | None, classes: tuple[str, ...] = ()) -> TensorData:
    a, b = _channels(name, a, channels), _channels(name, b, channels)
    spec = DataSpec("image", tuple(a.shape[1:]), len(classes), classes, _split_name(name, split),
                    shape_b=tuple(b.shape[1:]), pairing=pairing, domains=domains)
    return TensorData(spec, a.contiguous(), y, source=f"builtin:{name}", x_b=b.contiguous())


def _hw(x: Tensor) -> str:
    return f"{x.shape[-2]}x{x.shape[-1]}"


def _split_name(name: str, split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return name if split == "train" else f"{name}-test"


# -- Fashion-MNIST sets ----------------------------------------------------------------------------
def _items(split: str, size) -> tuple[Tensor, Tensor]:
    _split_name("fashion-mnist", split)
    data = fashion_mnist(split=split)
    return resize(data.x, _size(size)), data.y


def fmnist_edges2items(size=None, channels=None, split: str = "train") -> TensorData:
    items, y = _items(split, size)
    return _two_domain("fmnist-edges2items", split, edge_map(items), items, y, "paired", ("edges", "items"),
                       channels, FASHION_CLASSES)


def fmnist_lowres(size=None, channels=None, split: str = "train") -> TensorData:
    if size is not None:
        _quarter("fmnist-lowres", _size(size))
    items, y = _items(split, size)
    small = area_downsample(items, 4)
    return _two_domain("fmnist-lowres", split, small, items, y, "paired", (_hw(small), _hw(items)), channels,
                       FASHION_CLASSES)


def fashion_class(text: str) -> int:
    """'7', 'sneaker', 'ankle-boot', 'Ankle_Boot' -> the Fashion-MNIST class index."""
    key = text.strip().lower().replace("-", " ").replace("_", " ")
    if key.isdigit() and 0 <= int(key) < 10:
        return int(key)
    names = {n.replace("-", " "): i for i, n in enumerate(FASHION_CLASSES)}
    names.update({"tshirt": 0, "t shirt": 0, "top": 0, "boot": 9})
    if key not in names:
        raise ValueError(f"unknown Fashion-MNIST class '{text}'; use 0-9 or one of: "
                         + ", ".join(n.replace(" ", "-") for n in FASHION_CLASSES))
    return names[key]


def fmnist_pair(classes: str, size=None, channels=None, split: str = "train", *, name: str = "") -> TensorData:
    """Unpaired: A = Fashion-MNIST class P, B = class Q, from 'P,Q' (e.g. '7,9' or 'sneaker,ankle-boot')."""
    parts = classes.split(",")
    if len(parts) != 2:
        raise ValueError(f"builtin:fmnist-pair needs two classes, e.g. builtin:fmnist-pair:7,9; got '{classes}'")
    ca, cb = fashion_class(parts[0]), fashion_class(parts[1])
    if ca == cb:
        raise ValueError(f"builtin:fmnist-pair needs two different classes; got {ca} twice")
    items, y = _items(split, size)
    name = name or f"fmnist-pair-{ca}-{cb}"
    return _two_domain(name, split, items[y == ca], items[y == cb], y[y == ca], "unpaired",
                       (FASHION_CLASSES[ca], FASHION_CLASSES[cb]), channels, FASHION_CLASSES)


def fmnist_sneaker2boot(size=None, channels=None, split: str = "train") -> TensorData:
    return fmnist_pair("7,9", size, channels, split, name="fmnist-sneaker2boot")


SHOE_CLASSES = (5, 7, 9)  # sandal, sneaker, ankle boot


def fmnist_shoes(size=None, channels=None, split: str = "train") -> TensorData:
    items, y = _items(split, size)
    keep = torch.isin(y, torch.tensor(SHOE_CLASSES))
    relabel = torch.full((10,), -1, dtype=torch.int64)
    relabel[list(SHOE_CLASSES)] = torch.arange(len(SHOE_CLASSES))
    x = _channels("fmnist-shoes", items[keep].contiguous(), channels)
    names = tuple(FASHION_CLASSES[c] for c in SHOE_CLASSES)
    spec = DataSpec("image", tuple(x.shape[1:]), len(names), names, _split_name("fmnist-shoes", split))
    return TensorData(spec, x, relabel[y[keep]], source="builtin:fmnist-shoes")


# -- colour emoji ----------------------------------------------------------------------------------
def emoji_font() -> Path:
    """The colour emoji font: $GANFORGE_EMOJI_FONT, else Debian's fonts-noto-color-emoji."""
    path = Path(os.environ.get("GANFORGE_EMOJI_FONT", EMOJI_FONT))
    if not path.is_file():
        raise RuntimeError(
            f"the colour emoji font '{path}' is missing; install it with `apt-get install fonts-noto-color-emoji` "
            "(Debian/Ubuntu), or set GANFORGE_EMOJI_FONT to a copy of NotoColorEmoji.ttf"
        )
    return path


def font_codepoints(path: Path) -> list[int]:
    """The code points a TrueType font maps to a glyph, from its 'cmap' table (formats 12 and 4)."""
    data = Path(path).read_bytes()
    n_tables = struct.unpack_from(">H", data, 4)[0]
    tables = {}
    for i in range(n_tables):
        tag, _, offset, _ = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        tables[tag] = offset
    if b"cmap" not in tables:
        raise ValueError(f"'{path}' has no cmap table; give GANFORGE_EMOJI_FONT a TrueType colour emoji font")
    cmap = tables[b"cmap"]
    subtables = {}
    for i in range(struct.unpack_from(">H", data, cmap + 2)[0]):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        fmt = struct.unpack_from(">H", data, cmap + offset)[0]
        subtables.setdefault(fmt, cmap + offset)
    found: set[int] = set()
    if 12 in subtables:
        base = subtables[12]
        for g in range(struct.unpack_from(">I", data, base + 12)[0]):
            start, end, glyph = struct.unpack_from(">III", data, base + 16 + 12 * g)
            found.update(c for c in range(start, end + 1) if glyph + c - start)
    elif 4 in subtables:
        base = subtables[4]
        segs = struct.unpack_from(">H", data, base + 6)[0] // 2
        ends = struct.unpack_from(f">{segs}H", data, base + 14)
        starts = struct.unpack_from(f">{segs}H", data, base + 16 + 2 * segs)
        deltas = struct.unpack_from(f">{segs}h", data, base + 16 + 4 * segs)
        ranges_at = base + 16 + 6 * segs
        ranges = struct.unpack_from(f">{segs}H", data, ranges_at)
        for s, (start, end, delta, rng) in enumerate(zip(starts, ends, deltas, ranges)):
            for c in range(start, min(end, 0xFFFE) + 1):
                if rng == 0:
                    glyph = (c + delta) & 0xFFFF
                else:
                    glyph = struct.unpack_from(">H", data, ranges_at + 2 * s + rng + 2 * (c - start))[0]
                    glyph = (glyph + delta) & 0xFFFF if glyph else 0
                if glyph:
                    found.add(c)
    else:
        raise ValueError(f"'{path}' has no Unicode cmap (format 4 or 12)")
    return sorted(found)


# Unicode's Emoji_Component code points (emoji-data.txt): the parts of sequences (keycap bases # * 0-9, the
# keycap, joiner and selector, regional indicators, skin-tone and hair modifiers, tags), not emoji alone.
EMOJI_COMPONENTS = ((0x23, 0x23), (0x2A, 0x2A), (0x30, 0x39), (0x200D, 0x200D), (0x20E3, 0x20E3),
                    (0xFE0F, 0xFE0F), (0x1F1E6, 0x1F1FF), (0x1F3FB, 0x1F3FF), (0x1F9B0, 0x1F9B3),
                    (0xE0020, 0xE007F))


def _standalone_emoji(c: int) -> bool:
    """Not a sequence component, not private use (the font's legacy carrier code points), not ASCII/control."""
    if c < 0xA0 or 0xE000 <= c <= 0xF8FF or c >= 0xF0000:
        return False
    return not any(lo <= c <= hi for lo, hi in EMOJI_COMPONENTS)


def _render_emoji(path: Path) -> tuple[np.ndarray, list[int]]:
    """Every non-empty standalone emoji of the font's cmap -> (N, 3, 128, 128) uint8 RGB on white, code points."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(path), EMOJI_PPEM, layout_engine=ImageFont.Layout.BASIC)
    images, kept = [], []
    for c in font_codepoints(path):
        if not _standalone_emoji(c):
            continue
        char = chr(c)
        try:
            box = font.getbbox(char)
        except OSError:
            continue
        if box is None or box[2] <= box[0] or box[3] <= box[1]:
            continue  # nothing to draw (space, joiners, tag characters, selectors)
        w, h = box[2] - box[0], box[3] - box[1]
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        ImageDraw.Draw(layer).text((-box[0], -box[1]), char, font=font, embedded_color=True)
        if layer.getextrema()[3][1] == 0:
            continue
        glyph = Image.alpha_composite(Image.new("RGBA", (w, h), (255, 255, 255, 255)), layer).convert("RGB")
        square = Image.new("RGB", (EMOJI_SIDE, EMOJI_SIDE), (255, 255, 255))
        # centred: Noto's 136x128 glyphs lose 4 blank columns on each side
        square.paste(glyph, ((EMOJI_SIDE - w) // 2, (EMOJI_SIDE - h) // 2))
        images.append(np.asarray(square).transpose(2, 0, 1))
        kept.append(c)
    if not images:
        raise ValueError(f"the font '{path}' has no colour glyphs; give GANFORGE_EMOJI_FONT NotoColorEmoji.ttf")
    return np.stack(images), kept


def emoji_images() -> tuple[Tensor, list[int]]:
    """All colour emoji at 128x128 RGB uint8 and their code points; rendered once, then read from the cache."""
    from PIL import __version__ as pillow_version

    path = emoji_font()
    font_sha = sha256_file(path)
    settings = [EMOJI_FORMAT, font_sha, EMOJI_PPEM, EMOJI_SIDE, "white", "basic", pillow_version]
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()
    directory = cache_root() / "emoji"
    cached = read_cache(directory, key)
    if cached is not None:
        x, meta = cached
        return torch.from_numpy(x), list(meta["codepoints"])
    x, codepoints = _render_emoji(path)
    meta = {"key": key, "shape": list(x.shape), "codepoints": codepoints, "font": str(path), "font_sha256": font_sha}
    write_cache(directory, key, x, meta)
    return torch.from_numpy(x), codepoints


def _emoji_split(split: str) -> Tensor:
    x, _ = emoji_images()
    test = torch.arange(len(x)) % EMOJI_TEST_EVERY == EMOJI_TEST_EVERY - 1
    return x[test if split == "test" else ~test]


def emoji_gray2color(size=None, channels=None, split: str = "train") -> TensorData:
    _split_name("emoji-gray2color", split)
    colour = resize(_emoji_split(split), _size(size) or (64, 64))
    return _two_domain("emoji-gray2color", split, luma601(colour), colour, None, "paired", ("grey", "colour"), channels)


def emoji_lowres(size=None, channels=None, split: str = "train") -> TensorData:
    _split_name("emoji-lowres", split)
    size = _size(size) or (EMOJI_SIDE, EMOJI_SIDE)
    _quarter("emoji-lowres", size)
    colour = resize(_emoji_split(split), size)
    small = area_downsample(colour, 4)
    return _two_domain("emoji-lowres", split, small, colour, None, "paired", (_hw(small), _hw(colour)), channels)
