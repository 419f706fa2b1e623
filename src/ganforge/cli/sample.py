"""`ganforge sample`."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Draw samples from a trained generator (the EMA weights unless --no-ema).

--out decides the format: FILE.png is one grid (a scatter plot for 2-D points), FILE.npy is a float32
array in the data's own range (images in [-1, 1] as (N, C, H, W); points as (N, 2)), and a folder
(no suffix) gets one PNG per image. The same --seed always gives the same samples.
"""

EPILOG = """\
examples:
  ganforge sample --ckpt runs/cars --n 64 --seed 0 --out grid.png
  ganforge sample --ckpt runs/cars --n 500 --out samples/          # one PNG per image
  ganforge sample --ckpt runs/cars --n 1000 --out fakes.npy
  ganforge sample --ckpt runs/cars --interpolate 10 --n 8 --out strip.png   # 8 rows of 10 steps
  ganforge sample --ckpt runs/fashion-cgan --class 7 --n 16 --out sneakers.png  # conditional families
  ganforge sample --ckpt runs/fashion-cgan --class all --n 8 --out classes.png  # one row of 8 per class
  ganforge sample --ckpt runs/fashion-infogan --code c0=3 --sweep c1 --n 8 --out c1.png  # 8 rows, c1 -1..1
  ganforge sample --ckpt runs/fashion-infogan --sweep c0 --n 8 --out c0.png  # a row per z, every category
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="sample from a trained generator", description=DESCRIPTION,
                       epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="run directory (its latest checkpoint) or a checkpoint directory")
    p.add_argument("--n", type=int, default=64, help="number of samples (rows with --interpolate; default: 64)")
    p.add_argument("--seed", type=int, default=0, help="latent seed (default: 0)")
    p.add_argument("--out", required=True, help="FILE.png, FILE.npy or a folder")
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
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    p.add_argument("--nrow", type=int, help="images per grid row (default: square grid)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..artifacts import Sampler
    from ..image import save_grid, save_images, save_scatter

    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    if args.n > 100_000:
        raise UsageError(f"--n {args.n} is more than 100000; sample in several calls")
    if not (0 <= args.seed < 2**63):
        raise UsageError(f"--seed must be in [0, 2^63), got {args.seed}")
    sampler = Sampler.from_checkpoint(args.ckpt, ema=not args.no_ema)
    nrow = args.nrow
    codes = parse_codes(args.codes, sampler) if args.codes or args.sweep else {}
    if args.sweep is not None:
        if args.interpolate is not None or args.klass is not None:
            raise UsageError("--sweep cannot be combined with --interpolate or --class")
        try:
            x, nrow = sampler.sweep(args.sweep, args.n, args.steps, seed=args.seed, codes=codes, span=tuple(args.span))
        except ValueError as e:
            raise UsageError(str(e)) from None
    elif args.interpolate is not None:
        if args.interpolate < 2:
            raise UsageError(f"--interpolate needs K >= 2 steps, got {args.interpolate}")
        x = sampler.interpolate(args.n, args.interpolate, seed=args.seed)
        nrow = args.interpolate
    elif args.klass is not None:
        if not sampler.conditional:
            raise UsageError(f"--class needs a conditional family (cgan); {args.ckpt} holds "
                             f"'{sampler.family.name}'; drop --class")
        names = list(sampler.spec.class_names)
        k = sampler.spec.n_classes
        if args.klass == "all":
            y = np.repeat(np.arange(k), args.n)
            x = sampler.generate(args.n * k, seed=args.seed, y=y)
            nrow = args.n
        else:
            if args.klass.isdigit() and int(args.klass) < k:
                cls = int(args.klass)
            elif args.klass in names:
                cls = names.index(args.klass)
            else:
                listing = ", ".join(f"{i}={c}" for i, c in enumerate(names)) or f"0..{k - 1}"
                raise UsageError(f"--class {args.klass} is not a class of this model; use 'all' or one of: {listing}")
            x = sampler.generate(args.n, seed=args.seed, y=cls)
    else:
        x = sampler.generate(args.n, seed=args.seed, codes=codes or None)
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, x.numpy().astype(np.float32))
    elif suffix in (".png", ".jpg", ".jpeg", ".webp"):
        if sampler.spec.kind == "image":
            save_grid(x, out, nrow=nrow)
        else:
            save_scatter(x, out)
    elif suffix == "":
        if sampler.spec.kind != "image":
            raise UsageError("2-D points cannot be written as one PNG each; use --out FILE.npy or FILE.png")
        save_images(x, out)
    else:
        raise UsageError(f"--out must end in .png or .npy, or be a folder; got '{out}'")
    print(f"wrote {len(x)} samples {tuple(x.shape[1:])} from {sampler.path} (step {sampler.step}, "
          f"{'EMA' if sampler.ema else 'raw'} generator) to {out}")
    return 0


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
