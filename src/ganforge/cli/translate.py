"""`ganforge translate` and `ganforge upscale`: run an image-to-image generator on image files."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Translate images with a trained image-to-image model (pix2pix, cyclegan, discogan, stargan, srgan; the EMA
weights unless --no-ema).

--input is an image file, a folder of images (the files directly inside it), or builtin:NAME (the first
--n images of that data set's test split: domain A, or domain B with --direction BtoA). Images are
converted to the model's channels and resized to its input size (a file of another aspect ratio is
centre-cropped); files Pillow cannot read are skipped and counted. --out gets one PNG per input with the
input's name, and grid.png: input | output pairs (inputs smaller than the outputs are shown enlarged).
--domain picks a stargan model's target domain (index or name); `all` (its default) writes one PNG per
domain and one grid row per input.
"""

EPILOG = """\
examples:
  ganforge translate --ckpt runs/edges2items --input builtin:fmnist-edges2items --n 64 --out out/
  ganforge translate --ckpt runs/sketches --input my_sketches/ --out translated/
  ganforge translate --ckpt runs/sneaker2boot --input boots/ --direction BtoA --out sneakers/
  ganforge translate --ckpt runs/shoes-stargan --input shoe.png --domain "ankle boot" --out out/
  ganforge translate --ckpt runs/shoes-stargan --input builtin:fmnist-shoes --n 8 --domain all --out out/
"""

UPSCALE_DESCRIPTION = """\
Upscale images with a trained super-resolution model (srgan). Each image is converted to the model's
channels and resized to its input size first (the model upscales a fixed size, e.g. 7x7 -> 28x28); OUT gets
one PNG per image with the image's name. Other image-to-image models: use `ganforge translate`.
"""

UPSCALE_EPILOG = """\
examples:
  ganforge upscale --ckpt runs/fmnist-sr small1.png small2.png --out big/
  ganforge upscale --ckpt runs/emoji-sr thumbnails/ --out big/
"""

UPSCALE_FAMILIES = ("srgan",)
GRID_MAX = 64  # inputs shown in grid.png


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate images with an image-to-image model (pix2pix, cyclegan, ...)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="run directory (its latest checkpoint) or a checkpoint directory")
    p.add_argument("--input", required=True, metavar="PATH", help="an image file, a folder of images, or builtin:NAME")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the translated PNGs and grid.png")
    p.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"),
                   help="AtoB, or BtoA for two-way families (cyclegan, discogan) (default: AtoB)")
    p.add_argument("--domain", metavar="K|NAME|all", help="stargan: target domain index or name, or all (default: all)")
    p.add_argument("--n", type=int, default=64, help="builtin:NAME inputs: how many test images (default: 64)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    p.set_defaults(run=run)

    u = sub.add_parser("upscale", help="upscale images with a super-resolution model (srgan)",
                       description=UPSCALE_DESCRIPTION, epilog=UPSCALE_EPILOG, formatter_class=HelpFormatter)
    u.add_argument("--ckpt", required=True, help="run directory (its latest checkpoint) or a checkpoint directory")
    u.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    u.add_argument("--out", required=True, metavar="DIR", help="folder for the upscaled PNGs")
    u.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    u.set_defaults(run=run_upscale)


# ---- inputs -------------------------------------------------------------------------------------------

def image_files(path: Path) -> list[Path]:
    """A file -> [it]; a folder -> its image files (directly inside it), sorted by name."""
    from ..data.images import IMAGE_SUFFIXES

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(f"{path}: no such file or folder; give an image file, a folder of images or builtin:NAME")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        subdirs = sorted(p.name for p in path.iterdir() if p.is_dir())
        hint = f" (it has sub-folders {', '.join(subdirs[:5])}: give one of them)" if subdirs else ""
        raise UsageError(f"folder {path} holds no {'/'.join(IMAGE_SUFFIXES)} files{hint}")
    return files


def load_files(files: list[Path], shape: tuple[int, ...], fit: str = "crop") -> tuple[Tensor, list[str], list[str], int]:
    """Decode files to (N, C, H, W) in [-1, 1] at `shape` -> (images, stems, skipped names, n resized)."""
    import numpy as np

    from ..data.images import DECODE_ERRORS, fit_image, open_image, strict_decoding, to_channels

    c, h, w = shape
    arrays, stems, skipped, resized = [], [], [], 0
    with strict_decoding():
        for f in files:
            try:
                im = to_channels(open_image(f), c)
            except DECODE_ERRORS:
                skipped.append(f.name)
                continue
            if im.size != (w, h):
                resized += 1
                im = fit_image(im, (h, w), fit)
            arr = np.asarray(im, dtype=np.uint8)
            arrays.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            stems.append(f.stem)
    if not arrays:
        raise UsageError(f"none of the {len(files)} input file(s) could be read ({', '.join(skipped[:10])}); "
                         "give .png/.jpg images")
    x = torch.from_numpy(np.stack(arrays)).float().mul_(2.0 / 255.0).sub_(1.0)
    return x, unique_stems(stems), skipped, resized


def unique_stems(stems: list[str]) -> list[str]:
    """File-name-safe stems, made unique (a.png and a.jpg -> a, a-1); 'grid' is kept for the grid."""
    seen: set[str] = {"grid"}
    out = []
    for s in stems:
        base = re.sub(r"[^\w.-]+", "_", s).strip("._") or "image"
        name, i = base, 1
        while name in seen:
            name, i = f"{base}-{i}", i + 1
        seen.add(name)
        out.append(name)
    return out


def fit_tensor(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Images in [-1, 1] -> `shape` (C, H, W): luma / repeated grey for channels, antialiased bilinear size."""
    from ..metrics.features import adapt_channels

    x = adapt_channels(x, shape[0], "the model")
    if tuple(x.shape[-2:]) != tuple(shape[1:]):
        x = F.interpolate(x, size=tuple(shape[1:]), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(-1, 1)


def load_builtin_inputs(name: str, n: int, direction: str, shape: tuple[int, ...]) -> tuple[Tensor, list[str]]:
    """The first n test images of builtin:NAME (domain B for BtoA), fitted to `shape`."""
    from ..data import load_builtin

    data = load_builtin(name, split="test")
    images = data.x_b if direction == "BtoA" and data.x_b is not None else data.x
    x = fit_tensor(data.to_float(images[:n]), shape)
    return x, [f"{name}-{i:05d}" for i in range(len(x))]


# ---- the model ----------------------------------------------------------------------------------------

def load_translator(ckpt: str, no_ema: bool):
    from ..artifacts import Sampler

    sampler = Sampler.from_checkpoint(ckpt, ema=not no_ema)
    if not sampler.is_translation:
        raise UsageError(f"{ckpt} holds a {sampler.family.name} model, which generates from latents rather than "
                         f"translating images: use `ganforge sample --ckpt {ckpt}`")
    return sampler


def input_shape(sampler, direction: str) -> tuple[int, ...]:
    """The shape the model takes in `direction`: domain A's for AtoB, domain B's for BtoA."""
    spec = sampler.spec
    if direction == "BtoA" and spec.shape_b:
        return tuple(spec.shape_b)
    return tuple(sampler.family.in_shape)


def takes_domain(sampler) -> bool:
    """Whether the model translates to a chosen domain (stargan: labelled data, no second domain)."""
    return sampler.family.conditioning == "image+domain"


def parse_domain(text: str | None, names: list[str]) -> list[int]:
    """--domain K|NAME|all -> the target domain indices."""
    listing = ", ".join(f"{i}={c}" for i, c in enumerate(names))
    if text is None or text == "all":
        return list(range(len(names)))
    if text.isdigit() and int(text) < len(names):
        return [int(text)]
    lowered = [c.lower() for c in names]
    if text.lower() in lowered:
        return [lowered.index(text.lower())]
    raise UsageError(f"--domain {text} is not a domain of this model; use all or one of: {listing}")


def as_shown(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Inputs as grid cells beside outputs of `shape`: grey repeated to RGB, smaller images enlarged."""
    from ..metrics.features import adapt_channels

    x = adapt_channels(x, shape[0], "the grid")
    if tuple(x.shape[-2:]) != tuple(shape[1:]):
        x = F.interpolate(x, size=tuple(shape[1:]), mode="nearest")
    return x


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "domain"


# ---- the verbs ----------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    from ..image import save_grid, to_pil, to_uint8

    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    sampler = load_translator(args.ckpt, args.no_ema)
    family = sampler.family
    if args.direction not in family.directions:
        raise UsageError(f"{family.name} translates {' and '.join(family.directions)} only; drop --direction "
                         f"{args.direction}" + ("" if len(family.directions) > 1 else " (it is a one-way model)"))
    names = list(sampler.spec.class_names)
    if takes_domain(sampler):
        domains = parse_domain(args.domain, names)
    elif args.domain is not None:
        raise UsageError(f"--domain picks a stargan model's target domain; {family.name} has none: drop --domain")
    else:
        domains = [None]
    shape = input_shape(sampler, args.direction)
    skipped: list[str] = []
    resized = 0
    if args.input.startswith("builtin:"):
        x, stems = load_builtin_inputs(args.input.split(":", 1)[1], args.n, args.direction, shape)
    else:
        fit = sampler.config.get("run", {}).get("data", {}).get("fit", "crop")
        x, stems, skipped, resized = load_files(image_files(Path(args.input)), shape, fit)

    outputs = [sampler.translate(x, args.direction, domain=d) for d in domains]  # each (N, C', H', W')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for k, d in enumerate(domains):
        for stem, img in zip(stems, to_uint8(outputs[k])):
            suffix = "" if d is None or len(domains) == 1 else f"_{_safe(names[d])}"
            to_pil(img).save(out / f"{stem}{suffix}.png")
            written += 1
    shown = min(len(x), GRID_MAX)
    out_shape = tuple(outputs[0].shape[1:])
    cells = torch.stack([as_shown(x[:shown], out_shape)] + [o[:shown] for o in outputs], 1)  # (n, 1 + K, C, H, W)
    if len(domains) > 1:
        nrow = 1 + len(domains)  # one row per input: it, then every domain
    else:
        nrow = 2 * max(1, min(8, math.ceil(math.sqrt(shown))))  # input | output pairs
    grid = save_grid(cells.flatten(0, 1), out / "grid.png", nrow=nrow)

    where = f"{sampler.path} ({family.name}, step {sampler.step}, {'EMA' if sampler.ema else 'raw'} generator)"
    what = args.direction + ("" if domains == [None] else " to " + ", ".join(names[d] for d in domains))
    print(f"translated {len(x)} image(s) {tuple(shape)} -> {out_shape} {what} with {where}")
    if resized:
        print(f"  {resized} input(s) resized to the model's {shape[1]}x{shape[2]} first")
    if skipped:
        print(f"  skipped {len(skipped)} unreadable file(s): {', '.join(skipped[:10])}"
              + (" ..." if len(skipped) > 10 else ""))
    print(f"wrote {written} PNG(s) to {out}/ and {grid}" + (f" (first {shown} inputs)" if shown < len(x) else ""))
    return 0


def run_upscale(args: argparse.Namespace) -> int:
    from ..image import to_pil, to_uint8

    sampler = load_translator(args.ckpt, args.no_ema)
    if sampler.family.name not in UPSCALE_FAMILIES:
        raise UsageError(f"{args.ckpt} holds a {sampler.family.name} model, not a super-resolution one "
                         f"({', '.join(UPSCALE_FAMILIES)}): use `ganforge translate --ckpt {args.ckpt} --input PATH "
                         f"--out DIR`")
    shape = input_shape(sampler, "AtoB")
    files = [f for image in args.images for f in image_files(Path(image))]
    fit = sampler.config.get("run", {}).get("data", {}).get("fit", "crop")
    x, stems, skipped, resized = load_files(files, shape, fit)
    y = sampler.translate(x, "AtoB")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stem, img in zip(stems, to_uint8(y)):
        to_pil(img).save(out / f"{stem}.png")
    factor = y.shape[-1] / x.shape[-1]
    print(f"upscaled {len(x)} image(s) {shape[1]}x{shape[2]} -> {y.shape[-2]}x{y.shape[-1]} (x{factor:g}) with "
          f"{sampler.path} (step {sampler.step}, {'EMA' if sampler.ema else 'raw'} generator)")
    if resized:
        print(f"  {resized} image(s) resized to the model's {shape[1]}x{shape[2]} input first")
    if skipped:
        print(f"  skipped {len(skipped)} unreadable file(s): {', '.join(skipped[:10])}")
    print(f"wrote {len(x)} PNG(s) to {out}/")
    return 0
