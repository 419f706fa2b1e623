"""`ganforge train`."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from ..config import apply_override, from_dict, load_file, merge, validate
from ..data.registry import builtin_names
from ..families import FAMILIES
from ..losses import LOSSES
from .common import HelpFormatter, UsageError


def _wrapped(words: list[str], indent: str = "  ") -> str:
    """Comma-separated words wrapped at 110 columns, never breaking one (builtin:fmnist-pair:P,Q stays whole)."""
    return textwrap.fill(", ".join(words), 110, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


DESCRIPTION = """\
Train a GAN on a folder of images or a built-in dataset.

--data takes a folder (class sub-folders become labels; unreadable files are skipped and named) or one of
the built-in sets:
""" + _wrapped(builtin_names()) + """
Everything the run writes goes under --out: config.json, log.jsonl, tb/ (TensorBoard), samples/*.png and
checkpoints/step_N/.

Settings come from, in order: defaults, --config FILE.yaml, the flags below, then --set key=value
(e.g. --set train.lr_d=1e-4 --set model.width=32 --set log.ckpt_every=1000). Evaluation during
training: --set eval.every=1000 (with eval.metrics=fid,kid, eval.n=2000, eval.features=fashion) logs the
metrics and keeps the best checkpoint by FID in --out/best/. --steps is the total:
with --resume, training continues the latest checkpoint in --out up to --steps. Ctrl-C stops after the
current step and writes a checkpoint.
"""

EPILOG = "families:\n" + "\n".join(f"  {n:8s} {cls.description}" for n, cls in FAMILIES.items()) + """

losses (--loss): """ + ", ".join(LOSSES) + """

examples:
  ganforge train --data ./cars --size 100 --family dcgan --steps 20000 --out runs/cars
  ganforge train --data builtin:ring8 --family gan --loss minimax --steps 5000 --out runs/ring8
  ganforge train --data ./faces --size 96x64 --config configs/dcgan.yaml --precision fp32 --out runs/faces
  ganforge train --data builtin:fashion-mnist --family cgan --steps 6000 --out runs/fashion-cgan
  ganforge train --data builtin:fashion-mnist --family infogan --steps 6000 --out runs/fashion-infogan
  ganforge train --data builtin:fashion-mnist --family sgan --labels-per-class 10 --batch-size 100 --out runs/fashion-sgan
  ganforge train --out runs/cars --steps 40000 --resume
  torchrun --nproc_per_node=4 -m ganforge train --data ./cars --size 64 --batch-size 256 --out runs/cars4

multi-process (torchrun): the same command under torchrun trains with DistributedDataParallel, gloo on CPU
and NCCL on GPUs; --batch-size is the global batch, split evenly over the processes; rank 0 writes
everything; --out must be on a filesystem every node can read (to resume and to roll back).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GAN", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("--data", help="image folder or builtin:NAME (default: builtin:fashion-mnist)")
    p.add_argument("--family", choices=sorted(FAMILIES), help="GAN family (default: dcgan)")
    p.add_argument("--size", help="image size N or HxW, e.g. 100 or 96x64 (default: the data's own)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 = grey, 3 = RGB (default: the data's own; 3 for folders)")
    p.add_argument("--pairs", choices=("auto", "labels", "side-by-side"),
                   help="image-to-image folders: auto (A/ and B/ sub-folders: paired when names match, else "
                        "unpaired; otherwise sub-folders are classes), labels (sub-folders are classes/domains), "
                        "side-by-side (each image is A | B, as in the pix2pix datasets) (default: auto)")
    p.add_argument("--flip", action="store_true",
                   help="augment: mirror half of every batch left-right (cars, faces; not text or digits)")
    p.add_argument("--steps", type=int, help="total training steps (default: 1000)")
    p.add_argument("--batch-size", type=int, help="images per step (default: 64)")
    p.add_argument("--loss", choices=sorted(LOSSES), help="adversarial loss (default: ns, non-saturating)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="auto: bf16 autocast (fp32 weights, fp32 losses and penalties) for image data where the "
                        "hardware has native bf16 (AVX512-BF16/AMX CPUs, Ampere+ GPUs), else fp32 (default: auto)")
    p.add_argument("--amp", choices=("none", "bf16"), help=argparse.SUPPRESS)  # the old spelling of --precision
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format for convolutions (default: on)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile G and D (tens of seconds of warm-up; measured gains on CPU are small)")
    p.add_argument("--seed", type=int, help="seed for weights, noise and data order (default: 0)")
    p.add_argument("--labels-per-class", type=int, metavar="N",
                   help="sgan: keep the labels of N training images per class (picked reproducibly with "
                        "model.label_seed), train on every image; 0 = all labels (default: 10)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--config", help="YAML or JSON file with settings (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. train.lr_d=1e-4; repeatable")
    p.add_argument("--resume", action="store_true", help="continue the latest checkpoint in --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def effective_config(args: argparse.Namespace) -> dict:
    """Defaults < the saved run (with --resume) < --config < flags < --set."""
    data: dict = {}
    saved = Path(args.out) / "config.json"
    if args.resume and saved.exists():
        data = json.loads(saved.read_text())
    if args.config:
        data = merge(data, load_file(args.config))
    flags = {
        ("data", "source"): args.data,
        ("data", "channels"): args.channels,
        ("data", "pairs"): args.pairs,
        ("data", "flip"): True if args.flip else None,
        ("train", "steps"): args.steps,
        ("train", "batch_size"): args.batch_size,
        ("train", "precision"): args.precision,
        ("train", "amp"): args.amp,
        ("train", "channels_last"): args.channels_last,
        ("train", "compile"): True if args.compile else None,
        ("train", "seed"): args.seed,
        ("model", "loss"): args.loss,
        ("model", "labels_per_class"): args.labels_per_class,
    }
    if args.size is not None:
        from ..data import parse_size

        flags[("data", "size")] = list(parse_size(args.size))
    if args.quiet:
        flags[("log", "progress")] = False
    for (section, key), value in flags.items():
        if value is not None:
            data.setdefault(section, {})[key] = value
    if args.family is not None:
        if args.resume and data.get("family") not in (None, args.family):
            raise UsageError(f"--out {args.out} holds a '{data['family']}' run; drop --family or choose another --out")
        data["family"] = args.family
    for assignment in args.overrides:
        apply_override(data, assignment)
    if args.labels_per_class is not None and data.get("family") != "sgan":
        raise UsageError(f"--labels-per-class is for the semi-supervised family: add --family sgan "
                         f"(this run's family is '{data.get('family', 'dcgan')}')")
    return data


def run(args: argparse.Namespace) -> int:
    from ..train import distributed

    info = distributed.init_from_env(_device_hint(args))
    try:
        rc = _run(args, info)
    except BaseException:
        distributed.shutdown(wait=False)
        raise
    distributed.shutdown()
    return rc


def _device_hint(args: argparse.Namespace) -> str:
    for assignment in args.overrides:
        if assignment.replace(" ", "").startswith("train.device="):
            return assignment.split("=", 1)[1].strip()
    return "auto"


def _run(args: argparse.Namespace, info) -> int:
    from ..train import TrainingStopped, build_run

    if not info.is_main:
        args.quiet = True  # rank 0 alone prints (and writes)
    out = Path(args.out)
    if args.resume and not (out / "config.json").exists():
        raise UsageError(f"--resume: '{out}' holds no run to continue; drop --resume to start one there")
    cfg = from_dict(effective_config(args))
    if cfg.data.size is not None:  # 64 or "96x64" (YAML, --set) -> [H, W], the form validate checks
        from ..data import parse_size

        cfg.data.size = list(parse_size(cfg.data.size))
    validate(cfg)  # before the data is loaded and long before --out is created
    extra = []
    if cfg.eval.every > 0:
        from ..data import load_data
        from ..metrics.callback import EvalCallback

        size = tuple(cfg.data.size) if cfg.data.size else None
        data = load_data(cfg.data.source, size=size, channels=cfg.data.channels, fit=cfg.data.fit,
                         pairs=cfg.data.pairs, quiet=True)
        extra.append(EvalCallback(cfg.eval, data, seed=cfg.train.seed))
        trainer = build_run(cfg, out, resume=args.resume, data=data, extra_callbacks=extra)
    else:
        trainer = build_run(cfg, out, resume=args.resume)
    data = trainer.data
    if not args.quiet:
        spec = data.spec
        print(f"data: {data.source} -> {len(data)} samples of shape {tuple(spec.shape)}"
              + (f", {spec.n_classes} classes" if spec.n_classes else "")
              + (f" ({len(data.skipped)} unreadable files skipped)" if data.skipped else ""))
        n_g = sum(p.numel() for p in trainer.family.G.parameters())
        # D's parameters as the phases declare them: none for D-less baselines (pix2pix L1-only, SRResNet-MSE)
        d_params = {id(p): p for spec in trainer.phase_list if "D" in spec.networks for p in trainer.params[spec.name]}
        d_text = f"D {sum(p.numel() for p in d_params.values()):,} params" if d_params else "no D"
        loss = trainer.family.loss_name or "n/a"
        print(f"model: {cfg.family} (loss {loss}), G {n_g:,} params, {d_text};"
              f" {'resuming at' if trainer.step else 'starting at'} step {trainer.step} of {cfg.train.steps}")
        print(f"speed: {trainer.describe_speed()}")
    try:
        trainer.fit()
    except TrainingStopped as e:
        print(f"ganforge train: stopped: {e}")
        return 1
    if not args.quiet:
        print(f"\n{'interrupted' if trainer.stop_reason else 'done'} at step {trainer.step}; results in {out}/")
        print(f"  samples      {out / 'samples' / 'final.png'}")
        print(f"  checkpoint   {out / 'checkpoints' / f'step_{trainer.step:08d}'}")
        print(f"  log          {out / 'log.jsonl'}")
        if cfg.log.tensorboard:
            print(f"  tensorboard  tensorboard --logdir {out / 'tb'}")
        if trainer.family.kind == "translation":  # image-to-image families translate inputs instead
            print(f"  translate    ganforge translate --ckpt {out} --input IMAGES_OR_FOLDER --out translated/")
        else:
            print(f"  sample more  ganforge sample --ckpt {out} --n 64 --seed 0 --out grid.png")
    return 130 if trainer.stop_reason else 0
