"""`ganforge edit`: move latents along a direction and draw the strips (vector arithmetic, closed-form directions)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Move latents along a direction in a trained generator's latent space and draw what happens: one row per latent,
--steps images along the direction.

Directions (--direction):
  class:A:B  vector arithmetic (Radford et al. 2015): the mean latent of samples a classifier puts in class B minus
             that of samples in class A (the samples of --tag-n of seed --tag-seed that it classifies with probability
             >= --tag-confidence; classes by name or index). A row goes
             from its latent (t = 0) to latent + --span x direction (default span 1: one whole mean difference).
             The classifier is --features (default: fashion for 1x28x28 models); the share of rows it calls B at
             each t is printed and written to OUT.json.
  sefa:K     the K-th closed-form direction (Shen & Zhou 2021, SeFa): eigenvectors of A^T A for the generator's first
             linear map A of z (dcgan, the autoencoders' decoders). A row goes from -span to +span (default 3) along
             the unit direction.

Style-based generators (stylegan) are edited in w, the mapping network's output (--space w, their default):
class means are means of w, sefa:K factorises the synthesis layers' style affines, and a row moves a w.

Latents (--latent): .npy files written by `ganforge project` (one latent, or a stack; NAME.w.npy holds a w), or
else --n latents of --seed (as `ganforge sample` draws them; in w space, their w); for class:A:B, the first --n of
them that the classifier puts in A."""

EPILOG = """\
examples:
  ganforge edit --ckpt runs/fashion --direction class:Sneaker:Ankle-boot --n 8 --out sneaker2boot.png
  ganforge edit --ckpt runs/fashion-vaegan --direction class:0:3 --latent proj/fashion-mnist-00000.npy --out e.png
  ganforge edit --ckpt runs/fashion --direction sefa:0 --n 6 --steps 9 --out sefa0.png
  ganforge edit --ckpt runs/cars-sg --direction sefa:1 --latent proj/car.w.npy --out car_sefa1.png
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help="move latents along a class or closed-form direction and draw the strips",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="run directory (its latest checkpoint) or a checkpoint directory")
    p.add_argument("--direction", required=True, metavar="class:A:B|sefa:K", help="the direction (see above)")
    p.add_argument("--latent", nargs="+", metavar="FILE.npy", help="latents to move (default: --n of --seed)")
    p.add_argument("--n", type=int, default=8, help="latents of --seed when no --latent is given (default: 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=7, help="images per row (default: 7)")
    p.add_argument("--span", type=float, help="how far to go: class, 0..span x the direction (default 1); sefa, "
                                              "-span..span along the unit direction (default 3)")
    p.add_argument("--features", default="auto", metavar="NAME",
                   help="classifier of class directions: fashion, clipart or a model path (default: fashion for "
                        "1x28x28 models)")
    p.add_argument("--tag-n", type=int, default=20000, help="samples tagged for class means (default: 20000)")
    p.add_argument("--tag-confidence", type=float, default=0.9, metavar="P",
                   help="only samples the classifier gives their class with probability >= P enter a class mean "
                        "(default: 0.9; 0 takes every sample)")
    p.add_argument("--tag-seed", type=int, default=12345)
    p.add_argument("--space", choices=("auto", "z", "w"), default="auto",
                   help="move z, or w (the mapping's output, style-based generators only); auto: w for them, or "
                        "when every --latent file is a .w.npy, else z")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the strips (and FILE.json beside it)")
    p.set_defaults(run=run)


def class_index(text: str, names: list[str], n: int) -> int:
    if text.isdigit() and int(text) < n:
        return int(text)
    norm = {name.lower().replace(" ", "-"): i for i, name in enumerate(names)}
    key = text.lower().replace(" ", "-")
    if key in norm:
        return norm[key]
    listing = ", ".join(f"{i}={c}" for i, c in enumerate(names)) or f"0..{n - 1}"
    raise UsageError(f"class '{text}' is not a class of the classifier; use one of: {listing}")


def load_latents(files: list[str], dim: int) -> torch.Tensor:
    rows = []
    for f in files:
        try:
            a = np.load(f)
        except (OSError, ValueError) as e:
            raise UsageError(f"--latent {f}: not a .npy array ({e})") from None
        a = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
        if a.shape[1] != dim:
            raise UsageError(f"--latent {f} holds latents of width {a.shape[1]}; this model's are {dim} wide")
        rows.append(torch.from_numpy(a.astype(np.float32)))
    return torch.cat(rows)


def run(args: argparse.Namespace) -> int:
    from ..artifacts import Sampler
    from ..artifacts.projection import (class_direction, draw_latents, latent_space, latent_width, sefa_directions,
                                        style_based, tag_latents, to_space)
    from ..image import save_grid
    from ..metrics.features import load

    if args.steps < 2 or args.n < 1 or args.tag_n < 10:
        raise UsageError("--steps must be >= 2, --n >= 1 and --tag-n >= 10")
    if not 0.0 <= args.tag_confidence < 1.0:
        raise UsageError(f"--tag-confidence must be in [0, 1), got {args.tag_confidence}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must end in .png, got '{out}'")
    sampler = Sampler.from_checkpoint(args.ckpt, ema=not args.no_ema)
    family, G = sampler.family, sampler.G
    w_files = bool(args.latent) and all(f.endswith(".w.npy") for f in args.latent)
    try:
        asked = args.space
        if asked == "auto" and args.latent:  # the files say which space they hold
            asked = "w" if w_files else "z"
        space = latent_space(sampler, asked)
    except ValueError as e:
        raise UsageError(f"edit: {e}") from None
    if args.latent and any(f.endswith(".w.npy") for f in args.latent) != (space == "w"):
        raise UsageError(f"--latent: give all z files (.npy) or all w files (.w.npy), matching --space ({space})")
    dim = latent_width(sampler, space)
    z = load_latents(args.latent, dim) if args.latent else to_space(sampler, sampler.latents(args.n, args.seed), space)
    kind, _, rest = args.direction.partition(":")
    info: dict = {"direction": args.direction, "ckpt_step": sampler.step, "family": family.name, "space": space}
    classifier, b = None, None
    if kind == "class":
        a_text, _, b_text = rest.partition(":")
        if not a_text or not b_text:
            raise UsageError(f"--direction class:A:B names two classes, got '{args.direction}'")
        name = args.features if args.features != "auto" else (
            "fashion" if tuple(sampler.spec.shape) == (1, 28, 28) else None)
        if name is None:
            raise UsageError("class directions need a classifier for this model's images: give --features "
                             "(clipart, or a model of yours that returns (features, logits))")
        try:
            classifier = load(name)
        except (ValueError, FileNotFoundError) as e:
            raise UsageError(f"--features {name}: {e}") from None
        if not classifier.is_classifier:
            raise UsageError(f"--features {name} is not a classifier (it gives no logits)")
        if name == "fashion":
            from ..data.builtin import FASHION_CLASSES

            names = list(FASHION_CLASSES)
        else:  # another classifier's class names are not known here: its classes go by index
            names = []
        a, b = (class_index(t, names, int(classifier.n_classes)) for t in (a_text, b_text))
        try:
            d, counts = class_direction(sampler, classifier, a, b, args.tag_n, args.tag_seed, args.tag_confidence,
                                        space)
        except ValueError as e:
            raise UsageError(str(e)) from None
        info.update(counts, classes=[a, b])
        if not args.latent:  # rows that start in class A: the first --n latents of --seed the classifier puts there
            pool = max(20 * args.n, 500)
            z_all, pred = tag_latents(sampler, classifier, pool, args.seed, space=space)
            z = z_all[pred == a][:args.n]
            if not len(z):
                raise UsageError(f"none of {pool} samples of seed {args.seed} is classified as class {a}; give "
                                 "--latent files or another --seed")
            info["rows_from"] = f"the first {len(z)} of {pool} latents of seed {args.seed} classified as class {a}"
        ts = torch.linspace(0, args.span if args.span is not None else 1.0, args.steps)
    elif kind == "sefa":
        if space == "z" and style_based(G):
            raise UsageError(f"--direction {args.direction}: a style-based generator's closed-form directions live in "
                             "w; drop --space z")
        try:
            k = int(rest)
            dirs, values = sefa_directions(G)
        except ValueError as e:
            raise UsageError(f"--direction {args.direction}: {e}") from None
        if not 0 <= k < len(dirs):
            raise UsageError(f"--direction sefa:K needs K in 0..{len(dirs) - 1}")
        d = dirs[k]
        info["eigenvalue"] = round(float(values[k]), 6)
        span = args.span if args.span is not None else 3.0
        ts = torch.linspace(-span, span, args.steps)
    else:
        raise UsageError(f"--direction must be class:A:B or sefa:K, got '{args.direction}'")
    moved = (z[:, None, :] + ts[None, :, None] * d[None, None, :]).reshape(-1, dim)
    x = draw_latents(sampler, moved, space)
    if classifier is not None:
        pred = classifier.logits(x).argmax(1).view(len(z), len(ts))
        info["share_classified_b"] = [round(float((pred[:, j] == b).float().mean()), 4) for j in range(len(ts))]
    info["t"] = [round(float(t), 4) for t in ts]
    out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(x, out, nrow=len(ts))
    out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    extra = (f"; share classified as class {b}: {info['share_classified_b'][0]:.0%} at t=0 -> "
             f"{info['share_classified_b'][-1]:.0%} at t={ts[-1]:.3g}") if classifier is not None else ""
    print(f"moved {len(z)} latent(s) along {args.direction} in {len(ts)} steps{extra}; wrote {out} and "
          f"{out.with_suffix('.json')}")
    return 0
