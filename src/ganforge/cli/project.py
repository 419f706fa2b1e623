"""`ganforge project`: find the latents that make a trained generator draw given images (GAN inversion)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Project images into a trained generator: for each image, find the latent z whose generated image is closest to it
(Zhu et al. 2016), by gradient descent on z with the generator frozen. The loss is the mean squared pixel error,
plus --feature-weight x the squared distance of feature-network features (a perceptual loss; --features, by
default `fashion` for 28x28 grey models and none otherwise), plus --prior-weight x mean(z^2).

The start (--init): the model's encoder when it has one (ae, vae, aae, vaegan), else the best of --candidates
random latents (search), or z = 0 (zero). Each image keeps the best latent seen, so the result is never worse than
the start.

Style-based generators (stylegan) are projected into w, the mapping network's output, by default (--space w):
the latent optimised is w itself, started from the average w (--init zero) or from the w of the best random
latent (search), with --prior-weight x mean((w - w_avg)^2). --space z optimises z through the mapping instead.

Writes, in --out: NAME.png (the projection), NAME.npy (its latent, the sampler's z: `ganforge edit` and
`Sampler.generate(z=...)` take it; NAME.w.npy for a w, which `ganforge edit` takes), grid.png (targets beside
projections) and projection.json (per image: pixel mean squared error, feature distance, loss; time per
image)."""

EPILOG = """\
examples:
  ganforge project --ckpt runs/fashion-vaegan photo.png --out proj/
  ganforge project --ckpt runs/fashion-dcgan builtin:fashion-mnist --n 200 --out proj/   # the test split's first 200
  ganforge project --ckpt runs/fashion-vaegan builtin:fashion-mnist --init search --steps 500 --out proj/
  ganforge project --ckpt runs/cars-sg car.jpg --out proj/   # stylegan: into w, edit with --latent proj/car.w.npy
"""

GRID_MAX = 32


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("project", help="find the latents of given images in a trained generator (GAN inversion)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="run directory (its latest checkpoint) or a checkpoint directory")
    p.add_argument("images", nargs="+", metavar="IMAGES", help="image files, folders of images, or builtin:NAME")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the projections and latents")
    p.add_argument("--n", type=int, default=64, help="builtin:NAME inputs: how many test images (default: 64)")
    p.add_argument("--init", choices=("auto", "encoder", "search", "zero"), default="auto",
                   help="the starting latent: auto (encoder when the model has one, else search) (default: auto)")
    p.add_argument("--candidates", type=int, default=256, help="random latents tried by --init search (default: 256)")
    p.add_argument("--steps", type=int, default=200, help="gradient steps on z (default: 200; 0: the start only)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam's learning rate on z (default: 0.05)")
    p.add_argument("--features", default="auto", metavar="NAME",
                   help="feature network of the perceptual loss: fashion, clipart, inception or none "
                        "(default: fashion for 1x28x28 models, none otherwise)")
    p.add_argument("--feature-weight", type=float, default=1.0, help="weight of the feature loss (default: 1)")
    p.add_argument("--prior-weight", type=float, default=1e-3, help="weight of mean(z^2) (default: 0.001)")
    p.add_argument("--space", choices=("auto", "z", "w"), default="auto",
                   help="the latent optimised: w for style-based generators, z otherwise (auto, the default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --init search candidates (default: 0)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    p.set_defaults(run=run)


def load_targets(args: argparse.Namespace, shape: tuple[int, ...], fit: str):
    from .translate import image_files, load_builtin_inputs, load_files

    xs, stems, skipped = [], [], []
    for item in args.images:
        if item.startswith("builtin:"):
            try:
                x, names = load_builtin_inputs(item.split(":", 1)[1], args.n, "AtoB", shape)
            except ValueError as e:
                raise UsageError(str(e)) from None
            xs.append(x)
            stems += names
        else:
            x, s, sk, _ = load_files(image_files(Path(item)), shape, fit)
            xs.append(x)
            stems += s
            skipped += sk
    return torch.cat(xs), stems, skipped


def resolve_features(name: str, shape: tuple[int, ...]):
    from ..artifacts.projection import perceptual_features

    try:
        return perceptual_features(name, shape)
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(f"--features {name}: {e}") from None


def run(args: argparse.Namespace) -> int:
    from ..artifacts import Sampler
    from ..artifacts.projection import describe, latent_space, project_images, start_kind
    from ..image import save_grid, to_pil, to_uint8
    from .translate import unique_stems

    for flag, value, low in (("--n", args.n, 1), ("--candidates", args.candidates, 1), ("--steps", args.steps, 0)):
        if value < low:
            raise UsageError(f"{flag} must be >= {low}, got {value}")
    if not (args.lr > 0 and args.feature_weight >= 0 and args.prior_weight >= 0):
        raise UsageError("--lr must be > 0 and --feature-weight, --prior-weight >= 0")
    sampler = Sampler.from_checkpoint(args.ckpt, ema=not args.no_ema)
    family = sampler.family
    shape = tuple(sampler.spec.shape)
    fit = sampler.config.get("run", {}).get("data", {}).get("fit", "crop")
    try:
        space = latent_space(sampler, args.space)
        init = start_kind(sampler, args.init)
    except ValueError as e:
        raise UsageError(str(e)) from None
    x, stems, skipped = load_targets(args, shape, fit)
    stems = unique_stems(stems)
    features, feature_name = resolve_features(args.features, shape)
    result = project_images(sampler, x, init=init, space=space, steps=args.steps, lr=args.lr, features=features,
                            feature_weight=args.feature_weight, prior_weight=args.prior_weight,
                            candidates=args.candidates, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stem, img, z in zip(stems, to_uint8(result.images), result.latents):
        to_pil(img).save(out / f"{stem}.png")
        np.save(out / (f"{stem}.w.npy" if space == "w" else f"{stem}.npy"), z.numpy().astype(np.float32))
    shown = min(len(x), GRID_MAX)
    cells = torch.stack([x[:shown], result.images[:shown]], 1).flatten(0, 1)
    grid = save_grid(cells, out / "grid.png", nrow=2 * max(1, min(8, math.ceil(math.sqrt(shown)))))
    summary = {"ckpt_step": sampler.step, "family": family.name, "space": space, "features": feature_name,
               "feature_weight": args.feature_weight, "prior_weight": args.prior_weight, "lr": args.lr,
               **describe(result), "seconds_per_image": round(result.seconds / len(x), 4), "n": len(x),
               "images": [{"name": s, "pixel_mse": round(float(result.pixel_mse[i]), 6),
                           **({"feature_l2": round(float(result.feature_l2[i]), 6)} if result.feature_l2 is not None
                              else {}), "loss": round(float(result.loss[i]), 6)} for i, s in enumerate(stems)]}
    (out / "projection.json").write_text(json.dumps(summary, indent=1) + "\n")
    feat = f", feature distance {summary['feature_l2_mean']:.4g} ({feature_name})" if "feature_l2_mean" in summary else ""
    print(f"projected {len(x)} image(s) into {family.name}'s {space} (step {sampler.step}) from --init {init}: pixel MSE "
          f"{summary['pixel_mse_mean']:.4g}{feat}; loss {summary['loss_start']:.4g} -> {summary['loss_end']:.4g} in "
          f"{args.steps} steps, {summary['seconds_per_image']:.3g} s per image")
    if skipped:
        print(f"  skipped {len(skipped)} unreadable file(s): {', '.join(skipped[:10])}")
    print(f"wrote {len(x)} PNG + {'.w.npy' if space == 'w' else '.npy'} pair(s), {grid} and {out / 'projection.json'}")
    return 0
