"""`ganforge sample`."""

from __future__ import annotations

import argparse
import errno
import itertools
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..families import FAMILIES
from ..files import replace_atomically, writing
from ..image import save_grid, save_scatter, to_pil, to_uint8
from ..latent import no_truncation_message
from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Draw samples from a trained generator (the EMA weights unless --no-ema).

--out decides the format: FILE.png is one grid (a scatter plot for 2-D points), FILE.npy is a float32
array in the data's own range (images in [-1, 1] as (N, C, H, W); points as (N, 2)), and a folder
(no suffix) gets one PNG per image. Audio models: a folder gets one 16-bit WAV per clip and spectrograms.png,
FILE.png a grid of spectrograms, FILE.wav one clip (--n 1). The same --seed always gives the same samples.

A table model (trained on a .csv/.parquet table or builtin:eprime) writes its rows to FILE.csv, FILE.tsv
(optionally .gz, .bz2, .xz) or FILE.parquet, decoded into the training table's columns, units and types,
streamed in chunks of 65,536 rows (up to 100 million rows per call; memory stays flat).

One call writes at most 100,000 images or points. FILE.npy and folders are written batch by batch, so memory stays
small whatever --n is; a grid PNG holds at most 4,096 images (write a folder or FILE.npy for more).
"""

EPILOG = """\
examples:
  ganforge sample --ckpt runs/cars --n 64 --seed 0 --out grid.png
  ganforge sample --ckpt runs/ev --n 1000000 --out events.parquet     # table models: rows, streamed
  ganforge sample --ckpt runs/cars --n 500 --out samples/          # one PNG per image
  ganforge sample --ckpt runs/cars --n 1000 --out fakes.npy
  ganforge sample --ckpt runs/cars --interpolate 10 --n 8 --out strip.png   # 8 rows of 10 steps
  ganforge sample --ckpt runs/fashion-cgan --class 7 --n 16 --out sneakers.png  # conditional families
  ganforge sample --ckpt runs/fashion-cgan --class all --n 8 --out classes.png  # one row of 8 per class
  ganforge sample --ckpt runs/fashion-infogan --code c0=3 --sweep c1 --n 8 --out c1.png  # 8 rows, c1 -1..1
  ganforge sample --ckpt runs/fashion-infogan --sweep c0 --n 8 --out c0.png  # a row per z, every category
  ganforge sample --ckpt runs/faces-stylegan --truncation 0.7 --n 16 --out grid.png  # w_avg + 0.7 (w - w_avg)
  ganforge sample --ckpt runs/fashion-text --text "a dark wide coat" --n 8 --out coats.png  # text-to-image
  ganforge sample --ckpt runs/fashion-text --text-file prompts.txt --n 8 --out grid.png  # a row of 8 per line
  ganforge sample --ckpt runs/fashion-text --text-file prompts.txt --n 8 --labels --out grid.png  # captions beside
  ganforge sample --ckpt runs/fashion-text --interpolate-text "a dark coat" "a bright coat" --n 4 --out strip.png
"""

MAX_PROMPTS = 256  # captions in one --text-file


# One grid PNG holds at most MAX_GRID images (a 64 x 64 grid; more is unviewable and its pixels alone take
# gigabytes); FILE.npy and folders take up to MAX_SAMPLES per call, written batch by batch, so memory stays
# at one batch of images (plus the latents, 1% of that) whatever --n is.
MAX_GRID = 4096
MAX_SAMPLES = 100_000
MAX_TABLE_ROWS = 100_000_000  # table rows are decoded and written a chunk at a time: only disk space limits them


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample from a trained generator", description=DESCRIPTION,
                       epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="run directory (its latest checkpoint) or a checkpoint directory")
    p.add_argument("--n", type=int, default=64, help="number of samples (rows with --interpolate; default: 64)")
    p.add_argument("--seed", type=int, default=0, help="latent seed (default: 0)")
    p.add_argument("--out", required=True, help="FILE.png, FILE.npy or a folder; table models: FILE.csv or "
                                                 "FILE.parquet")
    p.add_argument("--interpolate", type=int, metavar="K", help="write --n strips of K steps between two latents")
    p.add_argument("--class", dest="klass", metavar="K",
                   help="conditional families: class index or name for every sample, or 'all' for one row "
                        "of --n samples per class")
    p.add_argument("--code", dest="codes", action="append", default=[], metavar="NAME=VALUE",
                   help="families with latent codes (infogan): fix a code for every sample, e.g. c0=3 or "
                        "c1=0.5; repeatable")
    p.add_argument("--sweep", metavar="NAME",
                   help="families with latent codes: --n rows, each varying code NAME with everything else "
                        "fixed (every category, or --steps values over --span for a continuous code)")
    p.add_argument("--steps", type=int, default=10, help="columns of a continuous --sweep (default: 10)")
    p.add_argument("--span", type=float, nargs=2, default=(-1.0, 1.0), metavar=("LO", "HI"),
                   help="range of a continuous --sweep (default: -1 1, the training range)")
    w_families = ", ".join(sorted(name for name, cls in FAMILIES.items() if cls.truncation == "w"))
    no_families = ", ".join(sorted(name for name, cls in FAMILIES.items()
                                   if cls.truncation is None and cls.kind != "translation"))
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="the truncation trick, 0 < PSI <= 1 (1 = none): fewer odd samples, less variety. Families "
                        f"that truncate in w ({w_families}) move each mapped latent towards the average, "
                        f"w_avg + PSI (w - w_avg); families without the trick ({no_families}) refuse PSI != 1; "
                        "the other latent families scale the noise z by PSI (infogan's "
                        "codes stay). Default: none, or a w family's model.truncation")
    p.add_argument("--text", metavar="CAPTION",
                   help="text-to-image families (gan-int-cls): draw --n images of this caption")
    p.add_argument("--text-file", metavar="FILE",
                   help="text-to-image families: one caption per line (UTF-8, at most 256); a row of --n images per "
                        "caption, the same --seed latents in every row")
    p.add_argument("--interpolate-text", nargs=2, metavar=("A", "B"),
                   help="text-to-image families: --n rows of --steps images whose caption embedding slides from A "
                        "to B (the noise fixed along each row)")
    p.add_argument("--labels", action="store_true",
                   help="with --text-file and a .png --out: write each caption left of its row")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    p.add_argument("--nrow", type=int, help="images per grid row (default: square grid)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..artifacts import Sampler

    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    if not (0 <= args.seed < 2**63):
        raise UsageError(f"--seed must be in [0, 2^63), got {args.seed}")
    if args.truncation is not None and not 0 < args.truncation <= 1:
        raise UsageError(f"--truncation must be in (0, 1] (1 = none; smaller: closer to the average sample), "
                         f"got {args.truncation:g}")
    out = Path(args.out)
    sampler = Sampler.from_checkpoint(args.ckpt, ema=not args.no_ema)
    if sampler.spec.kind == "table":
        return sample_table(args, sampler, out)
    audio = sampler.spec.kind == "audio"
    kind = {".npy": "npy", "": "folder", ".png": "grid", ".jpg": "grid", ".jpeg": "grid", ".webp": "grid",
            **({".wav": "wav"} if audio else {})}.get(out.suffix.lower())
    if kind is None:
        raise UsageError(f"--out must end in .png or .npy, or be a folder{' or a .wav file' if audio else ''}; "
                         f"got '{out}'")
    if args.truncation is not None and args.truncation != 1 and sampler.truncation_space == "none":
        raise UsageError(no_truncation_message(f"{args.ckpt} holds a {sampler.family.name} model, which",
                                               sampler.family.truncation_reason, args.truncation, "--truncation"))
    images = sampler.spec.kind == "image"
    if kind == "folder" and not images and not audio:
        raise UsageError("2-D points cannot be written as one PNG each; use --out FILE.npy or FILE.png")
    if args.labels and not (args.text_file and kind == "grid"):
        raise UsageError("--labels writes the captions of --text-file beside a .png grid; give --text-file and "
                         "--out FILE.png, or drop --labels")
    chunks, total, nrow = plan(args, sampler)
    if total > MAX_SAMPLES:
        raise UsageError(f"this asks for {total:,} samples, more than {MAX_SAMPLES:,} per call; sample in several "
                         f"calls with different --seed values")
    if kind == "grid" and images and total > MAX_GRID:
        raise UsageError(f"a grid of {total:,} images is too large to view (at most {MAX_GRID:,}); use --out FOLDER/ "
                         f"or FILE.npy, which stream any number up to {MAX_SAMPLES:,} to disk in batches")
    if kind == "wav" and total != 1:
        raise UsageError(f"--out {out.name} holds one clip but this asks for {total}; give --n 1, or --out FOLDER/ "
                         "for one WAV per clip and a spectrogram grid")
    writable_folder(out if kind == "folder" else out.parent, f"--out {args.out}")  # before generating anything
    if kind == "npy":
        shape = write_npy(chunks, total, out)
    elif kind == "folder" and audio:
        shape = write_clips(chunks, out, sampler.spec.sample_rate)
    elif kind == "folder":
        shape = write_folder(chunks, out)
    elif kind == "wav":
        from ..data.audio import wav_bytes

        x = torch.cat(list(chunks))
        shape = tuple(x.shape[1:])
        replace_atomically(out, lambda tmp: Path(tmp).write_bytes(wav_bytes(x[0], sampler.spec.sample_rate)))
    elif audio:  # a grid of spectrograms
        from ..data.audio import spectrogram_images

        x = torch.cat(list(chunks))
        shape = tuple(x.shape[1:])
        replace_atomically(out, lambda tmp: save_grid(spectrogram_images(x), tmp, nrow=nrow))
    else:
        x = torch.cat(list(chunks))
        shape = tuple(x.shape[1:])
        labels = read_prompts(Path(args.text_file)) if args.labels else None
        replace_atomically(out, lambda tmp: save_grid(x, tmp, nrow=nrow, row_labels=labels) if images
                           else save_scatter(x, tmp))
    print(f"wrote {total} samples {shape} from {sampler.path} (step {sampler.step}, "
          f"{'EMA' if sampler.ema else 'raw'} generator) to {out}")
    return 0


def sample_table(args: argparse.Namespace, sampler, out: Path) -> int:
    """Rows of a table model, decoded into the training table's columns, units and types, streamed to
    CSV/Parquet in chunks (memory stays flat whatever --n is)."""
    import time

    from ..data.table import CSV_SUFFIXES, PARQUET_SUFFIXES, write_table_chunks

    name = out.name.lower()
    if not name.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES) or name.endswith(".csv.zip"):
        raise UsageError(f"{args.ckpt} generates table rows: --out must end in .csv, .tsv (optionally .gz, .bz2, "
                         f".xz) or .parquet; got '{out}'")
    unused = [flag for flag, given in (("--interpolate", args.interpolate is not None), ("--class", args.klass),
                                        ("--text", args.text), ("--text-file", args.text_file),
                                        ("--interpolate-text", args.interpolate_text),
                                        ("--code", args.codes), ("--sweep", args.sweep),
                                        ("--truncation", args.truncation not in (None, 1.0)), ("--nrow", args.nrow))
              if given]
    if unused:
        raise UsageError(f"{', '.join(unused)} apply to image and point models; a table model takes --n, --seed "
                         f"and --out")
    if args.n > MAX_TABLE_ROWS:
        raise UsageError(f"this asks for {args.n:,} rows, more than {MAX_TABLE_ROWS:,} per call; sample in several "
                         f"calls with different --seed values")
    writable_folder(out.parent, f"--out {args.out}")
    t0 = time.perf_counter()
    rows = write_table_chunks(sampler.iter_tables(args.n, seed=args.seed), out)
    wall = time.perf_counter() - t0
    columns = len(sampler.transformer.columns)
    print(f"wrote {rows:,} rows x {columns} columns from {sampler.path} (step {sampler.step}, "
          f"{'EMA' if sampler.ema else 'raw'} generator) to {out} in {wall:.1f} s ({rows / max(wall, 1e-9):,.0f} rows/s)")
    return 0


def plan(args: argparse.Namespace, sampler) -> tuple[Iterator[torch.Tensor], int, int | None]:
    """(batches of samples, how many in all, images per grid row) for what the flags ask."""
    nrow, psi = args.nrow, args.truncation
    codes = parse_codes(args.codes, sampler) if args.codes or args.sweep else {}
    if args.text is not None or args.text_file or args.interpolate_text:
        return plan_text(args, sampler)
    if args.sweep is not None:
        if args.interpolate is not None or args.klass is not None:
            raise UsageError("--sweep cannot be combined with --interpolate or --class")
        try:
            z, nrow = sampler.sweep_latents(args.sweep, args.n, args.steps, seed=args.seed, codes=codes,
                                            span=tuple(args.span), truncation=psi)
        except ValueError as e:
            raise UsageError(str(e)) from None
        return sampler.iter_generate(len(z), z=z, truncation=psi), len(z), nrow
    if args.interpolate is not None:
        if args.interpolate < 2:
            raise UsageError(f"--interpolate needs K >= 2 steps, got {args.interpolate}")
        z = sampler.interpolation_latents(args.n, args.interpolate, seed=args.seed, truncation=psi)
        return sampler.iter_generate(len(z), z=z, truncation=psi), len(z), args.interpolate
    if args.klass is None:
        return sampler.iter_generate(args.n, seed=args.seed, codes=codes or None, truncation=psi), args.n, nrow
    if not sampler.conditional:
        raise UsageError(f"--class needs a conditional family (cgan); {args.ckpt} holds "
                         f"'{sampler.family.name}'; drop --class")
    names = list(sampler.spec.class_names)
    k = sampler.spec.n_classes
    if args.klass == "all":
        y = np.repeat(np.arange(k), args.n)
        return sampler.iter_generate(args.n * k, seed=args.seed, y=y, truncation=psi), args.n * k, args.n
    if args.klass.isdigit() and int(args.klass) < k:
        cls = int(args.klass)
    elif args.klass in names:
        cls = names.index(args.klass)
    else:
        listing = ", ".join(f"{i}={c}" for i, c in enumerate(names)) or f"0..{k - 1}"
        raise UsageError(f"--class {args.klass} is not a class of this model; use 'all' or one of: {listing}")
    return sampler.iter_generate(args.n, seed=args.seed, y=cls, truncation=psi), args.n, nrow


def plan_text(args: argparse.Namespace, sampler) -> tuple[Iterator[torch.Tensor], int, int | None]:
    """--text / --text-file / --interpolate-text: (batches, how many, images per grid row)."""
    from ..text import check_text

    given = [f for f, v in (("--text", args.text is not None), ("--text-file", args.text_file),
                            ("--interpolate-text", args.interpolate_text)) if v]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} cannot be combined; choose one")
    clash = [f for f, v in (("--class", args.klass), ("--interpolate", args.interpolate is not None),
                            ("--sweep", args.sweep), ("--code", args.codes)) if v]
    if clash:
        raise UsageError(f"{given[0]} cannot be combined with {', '.join(clash)}")
    if not sampler.takes_text:
        raise UsageError(f"{given[0]} needs a text-to-image family (gan-int-cls); {args.ckpt} holds "
                         f"'{sampler.family.name}'; drop {given[0]}")
    psi = args.truncation
    try:
        if args.text is not None:
            return sampler.iter_generate(args.n, seed=args.seed, text=check_text(args.text, "--text"),
                                         truncation=psi), args.n, args.nrow
        z = sampler.latents(args.n, args.seed, psi)
        if args.interpolate_text:
            if args.steps < 2:
                raise UsageError(f"--interpolate-text needs --steps >= 2, got {args.steps}")
            a, b = (check_text(t, f"--interpolate-text {w}") for t, w in zip(args.interpolate_text, "AB"))
            ends = sampler.text_embeddings(2, [a, b])
            t = torch.linspace(0, 1, args.steps)[:, None]
            emb = ((1 - t) * ends[0] + t * ends[1]).repeat(args.n, 1)  # row r: steps embeddings, A -> B
            z = z.repeat_interleave(args.steps, 0)
            return sampler.iter_generate(len(z), z=z, text=emb, truncation=psi), len(z), args.steps
        prompts = read_prompts(Path(args.text_file))
        emb = sampler.text_embeddings(len(prompts), prompts).repeat_interleave(args.n, 0)  # a row per caption
        z = z.repeat(len(prompts), 1)
        return sampler.iter_generate(len(z), z=z, text=emb, truncation=psi), len(z), args.n
    except ValueError as e:
        raise UsageError(str(e)) from None


def read_prompts(path: Path) -> list[str]:
    """The captions of a --text-file: one per non-blank line, each checked; UsageError naming the line."""
    from ..text import check_text

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"--text-file {path} does not exist") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UsageError(f"--text-file {path} is not UTF-8 text (line {line}): save it as UTF-8") from None
    prompts = [check_text(line, f"{path} line {i}") for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not prompts:
        raise UsageError(f"--text-file {path} holds no caption; write one caption per line")
    if len(prompts) > MAX_PROMPTS:
        raise UsageError(f"--text-file {path} holds {len(prompts)} captions, more than {MAX_PROMPTS}; split it")
    return prompts


def writable_folder(folder: Path, flag: str) -> None:
    """Create `folder` (and its parents) and check that a file can be written there (`flag`: the option
    that named it, for the message when a file stands in the way)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next(p for p in (folder, *folder.parents) if p.exists() and not p.is_dir())
        raise UsageError(f"{flag}: '{blocker}' is a file, not a folder; choose another path") from None
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:  # name the folder, not the probe's random file name
        raise OSError(e.errno, e.strerror, str(folder)) from None


def write_npy(chunks: Iterator[torch.Tensor], total: int, out: Path) -> tuple[int, ...]:
    """Stream float32 batches into one .npy array of `total` rows; checks the free space first."""
    first = next(chunks)
    shape = tuple(first.shape[1:])
    need = 128 + total * math.prod(shape) * 4
    free = shutil.disk_usage(out.parent).free
    if need > free:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (needs {need / 1e6:,.1f} MB, "
                                    f"{free / 1e6:,.1f} MB free)", str(out))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (total, *shape)})
            for x in itertools.chain([first], chunks):
                fh.write(x.numpy().astype("<f4", copy=False).tobytes())

    replace_atomically(out, write)
    return shape


def write_folder(chunks: Iterator[torch.Tensor], folder: Path) -> tuple[int, ...]:
    """One PNG per image (00000.png, ...), batch by batch."""
    i, shape = 0, ()
    for x in chunks:
        shape = tuple(x.shape[1:])
        for img in to_uint8(x):
            path = folder / f"{i:05d}.png"
            with writing(path):
                to_pil(img).save(path)
            i += 1
    return shape


def write_clips(chunks: Iterator[torch.Tensor], folder: Path, sample_rate: int) -> tuple[int, ...]:
    """One 16-bit WAV per clip (00000.wav, ...), batch by batch, and spectrograms.png of the first 64."""
    from ..data.audio import spectrogram_images, wav_bytes

    i, shape, first = 0, (), []
    for x in chunks:
        shape = tuple(x.shape[1:])
        if len(first) < 64:
            first.extend(x[:64 - len(first)])
        for clip in x:
            path = folder / f"{i:05d}.wav"
            with writing(path):
                path.write_bytes(wav_bytes(clip, sample_rate))
            i += 1
    if first:
        save_grid(spectrogram_images(torch.stack(first)), folder / "spectrograms.png")
    return shape


def parse_codes(assignments: list[str], sampler) -> dict[str, float]:
    """--code NAME=VALUE pairs -> {name: value}, checked against the model's codes."""
    if not sampler.codes:
        raise UsageError(f"--code/--sweep need a family with latent codes (infogan); this model is "
                         f"'{sampler.family.name}'; drop them")
    codes: dict[str, float] = {}
    for a in assignments:
        name, sep, raw = a.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = None
        if not sep or value is None:
            raise UsageError(f"--code expects NAME=NUMBER such as c0=3 or c1=-0.5, got '{a}'")
        codes[name.strip()] = value
    try:  # validate names and values now, with the model's own message
        sampler.family.set_codes(sampler.latents(1, 0), codes)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return codes
