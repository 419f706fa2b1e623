"""`ganforge train`."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from ..config import DataConfig, apply_override, format_duration, from_dict, load_file, merge, parse_duration, validate
from ..data.registry import builtin_names
from ..families import FAMILIES
from ..losses import LOSSES
from ..recipes import Recipe
from ..recipes import get as get_recipe
from ..recipes import select as select_recipe
from .common import HelpFormatter, UsageError


def _wrapped(words: list[str], indent: str = "  ") -> str:
    """Comma-separated words wrapped at 110 columns, never breaking one (builtin:fmnist-pair:P,Q stays whole)."""
    return textwrap.fill(", ".join(words), 110, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


DESCRIPTION = """\
Train a GAN on a folder of images, a table or a built-in dataset.

--data takes a folder (class sub-folders become labels; unreadable files are skipped and named), a table
(.csv, .tsv, .parquet: column types are inferred, --columns overrides them; tables train fatgan or ctgan, and
samples come back in the table's own units and types), or one of the built-in sets:
""" + _wrapped(builtin_names()) + """
Everything the run writes goes under --out: config.json, log.jsonl, tb/ (TensorBoard), samples/*.png and
checkpoints/step_N/.

Settings come from, in order: the family's defaults, a recipe, --config FILE.yaml, the flags below, then
--set key=value (e.g. --set train.lr_d=1e-4 --set model.width=32 --set log.ckpt_every=1000). A recipe is a
tested set of settings for a dataset, family and loss, with the figure it reaches (`ganforge recipes`
lists them): the matching one is taken unless --recipe names another or none, and the first line of
output says which. --out/config.json records every value and where it came from ("sources").

--steps is the total: with --resume, training continues the latest checkpoint in --out up to --steps.
--time 10m trains until 10 minutes are spent instead (with --steps too: whichever comes first); a resumed
run continues the budget. Ctrl-C stops after the current step and writes a checkpoint. Evaluation during
training: --set eval.every=1000 (with eval.metrics=fid,kid, eval.n=2000, eval.features=fashion) logs the
metrics and keeps the best checkpoint by FID in --out/best/.
"""

EPILOG = "families:\n" + "\n".join(f"  {n:8s} {cls.description}" for n, cls in FAMILIES.items()) + """

losses (--loss): """ + ", ".join(LOSSES) + """

examples:
  ganforge train --data builtin:ring8 --family gan --out runs/ring8          # the ring8-gan recipe
  ganforge train --data ./cars --size 100 --family dcgan --time 30m --out runs/cars
  ganforge train --data builtin:ring8 --family gan --loss minimax --steps 5000 --out runs/ring8-minimax
  ganforge train --data ./faces --size 96x64 --config configs/dcgan.yaml --precision fp32 --out runs/faces
  ganforge train --data builtin:fashion-mnist --family cgan --out runs/fashion-cgan
  ganforge train --data builtin:fashion-mnist --family infogan --recipe none --steps 6000 --out runs/plain-infogan
  ganforge train --data builtin:eprime --family fatgan --time 10m --out runs/ev    # physics events (a table)
  ganforge train --data sales.csv --columns spec.yaml --family ctgan --steps 5000 --out runs/sales
  ganforge train --out runs/cars --steps 40000 --resume
  torchrun --nproc_per_node=4 -m ganforge train --data ./cars --size 64 --batch-size 256 --out runs/cars4

multi-process (torchrun): the same command under torchrun trains with DistributedDataParallel, gloo on CPU
and NCCL on GPUs; --batch-size is the global batch, split evenly over the processes; rank 0 writes
everything; --out must be on a filesystem every node can read (to resume and to roll back).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GAN", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=HelpFormatter)
    p.add_argument("--data", help="image folder, table (.csv, .tsv, .parquet) or builtin:NAME (default: "
                                  "builtin:fashion-mnist)")
    p.add_argument("--family", choices=sorted(FAMILIES), help="GAN family (default: the matching recipe's, e.g. gan for builtin:ring8; else dcgan)")
    p.add_argument("--size", help="image size N or HxW, e.g. 100 or 96x64 (default: the data's own)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 = grey, 3 = RGB (default: the data's own; 3 for folders)")
    p.add_argument("--pairs", choices=("auto", "labels", "side-by-side"),
                   help="image-to-image folders: auto (A/ and B/ sub-folders: paired when names match, else "
                        "unpaired; otherwise sub-folders are classes), labels (sub-folders are classes/domains), "
                        "side-by-side (each image is A | B, as in the pix2pix datasets) (default: auto)")
    p.add_argument("--cache", metavar="DIR",
                   help="image folders: keep the decoded-image cache (a memory-mapped file of N*C*H*W bytes; "
                        "`ganforge data inspect FOLDER --size N` gives its size) in DIR (default: $GANFORGE_CACHE or "
                        "~/.cache/ganforge)")
    p.add_argument("--flip", action="store_true",
                   help="augment: mirror half of every batch left-right (cars, faces; not text or digits)")
    p.add_argument("--columns", metavar="SPEC.yaml",
                   help="tables: per-column settings (type, bounds, transform, missing, label); see `ganforge data "
                        "inspect TABLE` for what is inferred")
    p.add_argument("--rows", type=int, metavar="N",
                   help="built-in generated tables (builtin:eprime): how many rows to make (default: 100000)")
    p.add_argument("--data-seed", type=int, metavar="S", help="seed of a built-in generated table (default: 0)")
    p.add_argument("--steps", type=int, help="total training steps (default: the recipe's, else 1000)")
    p.add_argument("--time", metavar="DURATION",
                   help="wall-clock budget such as 90s, 10m, 1h or 1h30m: train until it is spent, then write the "
                        "final checkpoint (with --steps too: whichever comes first); --resume continues the budget")
    p.add_argument("--recipe", metavar="NAME|none",
                   help="start from a named recipe (`ganforge recipes` lists them) or none (family defaults only); "
                        "default: the recipe that matches --data, --family and --loss, if any")
    p.add_argument("--batch-size", type=int, help="images per step (default: 64)")
    p.add_argument("--loss", choices=sorted(LOSSES), help="adversarial loss (default: ns, non-saturating)")
    p.add_argument("--augment", choices=("none", "diffaugment", "ada"),
                   help="augment every image the discriminator sees, real and fake, so that it cannot memorise a "
                        "small training set: diffaugment (Zhao et al. 2020: colour, translation, cutout) or ada "
                        "(Karras et al. 2020: a probability p steered by D's overfitting, logged as aug/p); "
                        "train.augment_policy, train.ada_target and train.ada_kimg tune them (default: none, "
                        "or the recipe's)")
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


def _flag_values(args: argparse.Namespace) -> dict[str, tuple[str, object]]:
    """'section.key' -> (the flag that set it, value) for every flag given."""
    flags = {
        "data.source": ("--data", args.data),
        "data.channels": ("--channels", args.channels),
        "data.pairs": ("--pairs", args.pairs),
        "data.flip": ("--flip", True if args.flip else None),
        "data.cache": ("--cache", args.cache),
        "data.columns": ("--columns", args.columns),
        "data.rows": ("--rows", args.rows),
        "data.seed": ("--data-seed", args.data_seed),
        "train.steps": ("--steps", args.steps),
        "train.time": ("--time", parse_duration(args.time) if args.time is not None else None),
        "train.batch_size": ("--batch-size", args.batch_size),
        "train.precision": ("--precision", args.precision),
        "train.augment": ("--augment", args.augment),
        "train.amp": ("--amp", args.amp),
        "train.channels_last": ("--channels-last", args.channels_last),
        "train.compile": ("--compile", True if args.compile else None),
        "train.seed": ("--seed", args.seed),
        "model.loss": ("--loss", args.loss),
        "model.labels_per_class": ("--labels-per-class", args.labels_per_class),
        "family": ("--family", args.family),
    }
    if args.size is not None:
        from ..data import parse_size

        flags["data.size"] = ("--size", list(parse_size(args.size)))
    if args.quiet:
        flags["log.progress"] = ("--quiet", False)
    return {k: v for k, v in flags.items() if v[1] is not None}


def _leaves(data: dict, prefix: str = "") -> dict[str, object]:
    """{'train.steps': 3000, 'model.loss': 'ns', 'family': 'gan'} from a nested settings dict."""
    out: dict[str, object] = {}
    for k, v in data.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _layer(data: dict, layer: dict, origin: str, sources: dict[str, str]) -> dict:
    """`layer` merged over `data`, with every value it sets recorded as coming from `origin`."""
    for key in _leaves(layer):
        sources[key] = origin
    return merge(data, layer)


def _folder_size(source: str) -> int | None:
    """How many images a --data folder (a quick listing, nothing decoded) or shard set (its index) holds, for folder
    recipes."""
    from ..data.shards import is_shard_source, read_index

    if is_shard_source(source):
        try:
            return read_index(source).total
        except ValueError:
            return None
    path = Path(source)
    if source.startswith("builtin:") or not path.is_dir():
        return None
    from ..data.images import scan_folder

    try:
        return len(scan_folder(path).images)
    except (OSError, ValueError):
        return None


def choose_recipe(args: argparse.Namespace, user: dict) -> Recipe | None:
    """The recipe a new run starts from: --recipe NAME, none, or the one matching data, family and loss."""
    choice = (args.recipe or "auto").strip()
    if choice.lower() == "none":
        return None
    source = user.get("data", {}).get("source", DataConfig.source)
    family, loss = user.get("family"), user.get("model", {}).get("loss")
    if choice != "auto":
        recipe = get_recipe(choice)
        if family is not None and family != recipe.family:
            raise UsageError(f"--recipe {recipe.name} is for the '{recipe.family}' family, not '{family}'; "
                             f"drop --family, or pick a recipe with `ganforge recipes`")
        return recipe
    from ..data.table import is_table_path
    from ..data.table_builtins import is_table_builtin

    table = is_table_path(source) or is_table_builtin(source)
    return select_recipe(source, family, loss, _folder_size(source), table=table)


def effective_config(args: argparse.Namespace) -> dict:
    """Defaults < the saved run (with --resume) < recipe < --config < flags < --set, with each value's origin
    in data['sources'] and the recipe in data['recipe']."""
    data: dict = {}
    sources: dict[str, str] = {}
    saved = Path(args.out) / "config.json"
    resuming = args.resume and saved.exists()
    if resuming:
        data = json.loads(saved.read_text())
        sources = dict(data.pop("sources", {}) or {})
        if args.recipe is not None:  # the same command again plus --resume is fine; another recipe is not
            asked = "none" if args.recipe.strip().lower() == "none" else get_recipe(args.recipe.strip()).name
            have = (data.get("recipe") or "none").split("@", 1)[0]
            if asked != have:
                raise UsageError(f"--recipe applies when a run starts: {args.out} was started with recipe {have} "
                                 f"and keeps its settings (change them with flags or --set), or use another --out")
    user: dict = {}
    user_sources: dict[str, str] = {}
    if args.config:
        user = _layer(user, load_file(args.config), f"--config {args.config}", user_sources)
    for key, (flag, value) in _flag_values(args).items():
        section, _, name = key.rpartition(".")
        user = _layer(user, {section: {name: value}} if section else {name: value}, flag, user_sources)
    for assignment in args.overrides:
        one: dict = {}
        apply_override(one, assignment)
        user = _layer(user, one, "--set", user_sources)
    if args.family is not None and resuming and data.get("family") not in (None, args.family):
        raise UsageError(f"--out {args.out} holds a '{data['family']}' run; drop --family or choose another --out")
    if not resuming:
        recipe = choose_recipe(args, user)
        data["recipe"] = recipe.tag if recipe is not None else "none"
        if recipe is not None:
            data = _layer(data, recipe.run_settings(user.get("data", {}).get("source")), f"recipe {recipe.tag}",
                          sources)
    recipe_augment = data.get("train", {}).get("augment")
    data = merge(data, user)
    sources.update(user_sources)
    # a policy names one augmentation's operations (DiffAugment: color,translation,cutout; ADA: blit,geom,color):
    # --augment ada over a recipe's DiffAugment policy takes ADA's default policy instead of an invalid one
    train = data.get("train", {})
    if ("train.augment" in user_sources and "train.augment_policy" not in user_sources
            and train.get("augment_policy") and train.get("augment") != recipe_augment):
        train["augment_policy"] = ""
        sources["train.augment_policy"] = (f"default for {user_sources['train.augment']} {train.get('augment')} "
                                           f"(the policy set with {recipe_augment} does not apply)")
    family_defaults = FAMILIES[data["family"]].train_defaults if data.get("family") in FAMILIES else {}
    if family_defaults and not resuming:  # under everything else: only the settings nobody else set
        unset = {k: v for k, v in family_defaults.items() if f"train.{k}" not in sources}
        data = merge(data, {"train": unset})
        sources.update({f"train.{k}": "family default" for k in unset})
    # a time budget without a step count of the user's own: train until the time is spent
    time_set = user_sources.get("train.time") is not None and data.get("train", {}).get("time", 0)
    steps_from_user = "train.steps" in user_sources
    if time_set and not steps_from_user and not resuming:
        data["train"]["steps"] = 0
        sources["train.steps"] = f"{user_sources['train.time']} (no step limit)"
    data["sources"] = sources
    if args.labels_per_class is not None and data.get("family") != "sgan":
        raise UsageError(f"--labels-per-class is for the semi-supervised family: add --family sgan "
                         f"(this run's family is '{data.get('family', 'dcgan')}')")
    return data


def complete_sources(cfg) -> None:
    """Name an origin for every setting: "default" for the run's own, "family default" for the family's options."""
    from dataclasses import fields

    from ..families import get_family

    run = cfg.to_dict()
    keys = [f"{section}.{k}" for section in ("data", "train", "log", "health", "eval") for k in run[section]]
    keys += [f"model.{f.name}" for f in fields(get_family(cfg.family).Config)] + ["family"]
    for key in keys:
        cfg.sources.setdefault(key, "family default" if key.startswith("model.") else "default")


def describe_recipe(cfg) -> str:
    """The first line of `ganforge train`: which recipe the run took, and how to change that."""
    if not cfg.recipe or cfg.recipe == "none":
        line = ("recipe: none (family defaults"
                + (", --recipe none" if cfg.sources.get("recipe") else "") + "); `ganforge recipes` lists the tested ones")
        if cfg.sources.get("recipe"):
            return line
        # no recipe for this loss: say which losses of this data and family have one (digits x dcgan x wgan: none)
        from ..recipes import data_key, recipes

        key = data_key(cfg.data.source)
        tested = sorted({loss for r in recipes() if r.data == key and r.family == cfg.family for loss in r.losses})
        if tested and "any" not in tested:
            line += (f"; for {key} with {cfg.family} the tested ones are for --loss {', '.join(tested)}, not "
                     f"{cfg.model.get('loss', 'the default loss')}")
        return line
    name = cfg.recipe.split("@", 1)[0]
    try:
        r = get_recipe(name)
    except ValueError:
        return f"recipe: {cfg.recipe}"
    mine = sorted(k for k, v in cfg.sources.items()
                  if not v.startswith("recipe ") and v not in ("default", "family default") and k != "data.source")
    over = f"; yours: {', '.join(mine)}" if mine else ""
    return (f"recipe: {cfg.recipe} ({r.summary}; {r.figure} in {r.budget}){over}; --recipe none to train without it")


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
    complete_sources(cfg)
    extra = []
    if FAMILIES[cfg.family].grows:  # progan: SWD per pyramid level at the end of each stage
        from ..metrics.callback import StageSWD

        extra.append(StageSWD(seed=cfg.train.seed))
    if cfg.eval.every > 0 and FAMILIES[cfg.family].kind == "classifier":
        raise UsageError(f"--set eval.every measures generated samples; {cfg.family} is a classifier and draws none: "
                         f"drop eval.every and measure it afterwards with `ganforge evaluate --ckpt RUN --classifier`")
    if cfg.eval.every > 0:
        from ..metrics.callback import EvalCallback
        from ..train.run import load_run_data

        data = load_run_data(cfg, quiet=True)
        extra.append(EvalCallback(cfg.eval, data, seed=cfg.train.seed))
        trainer = build_run(cfg, out, resume=args.resume, data=data, extra_callbacks=extra)
    else:
        trainer = build_run(cfg, out, resume=args.resume, extra_callbacks=extra)
    data = trainer.data
    if not args.quiet:
        print(describe_recipe(cfg))
        spec = data.spec
        count = f"{data.stream.index.total:,} images in {len(data.stream.index.urls)} shards, streamed" \
            if data.stream is not None else f"{len(data)} samples"
        print(f"data: {data.source} -> {count} of shape {tuple(spec.shape)}"
              + (f", {spec.n_classes} classes" if spec.n_classes else "")
              + (f" ({len(data.skipped)} unreadable files skipped)" if data.skipped else ""))
        n_g = sum(p.numel() for p in trainer.family.G.parameters())
        # D's parameters as the phases declare them: none for D-less baselines (pix2pix L1-only, SRResNet-MSE)
        d_params = {id(p): p for spec in trainer.phase_list if "D" in spec.networks for p in trainer.params[spec.name]}
        d_text = f"D {sum(p.numel() for p in d_params.values()):,} params" if d_params else "no D"
        loss = trainer.family.loss_name or "n/a"
        if cfg.train.time > 0:
            limit = (f"{int(trainer.total_steps)} steps or " if trainer.total_steps != float("inf") else "") + \
                f"{format_duration(trainer.time_left or 0)} of training left"
        else:
            limit = f"step {trainer.step} of {cfg.train.steps}"
        start = "resuming at" if trainer.step else "starting at"
        print(f"model: {cfg.family} (loss {loss}), G {n_g:,} params, {d_text}; "
              + (f"{start} step {trainer.step}, {limit}" if cfg.train.time > 0 else f"{start} {limit}"))
        print(f"speed: {trainer.describe_speed()}")
    try:
        trainer.fit()
    except TrainingStopped as e:
        print(f"ganforge train: stopped: {e}")
        return 1
    if not args.quiet:
        print(f"\n{'interrupted' if trainer.stop_reason else 'done'} at step {trainer.step}; results in {out}/")
        table = data.spec.kind == "table"
        if trainer.family.kind != "classifier":
            print(f"  samples      {out / 'samples' / 'final.png'}"
                  + (f" and {out / 'samples' / 'final.csv'}" if table else ""))
        print(f"  checkpoint   {out / 'checkpoints' / f'step_{trainer.step:08d}'}")
        print(f"  log          {out / 'log.jsonl'}")
        if cfg.log.tensorboard:
            print(f"  tensorboard  tensorboard --logdir {out / 'tb'}")
        if trainer.family.kind == "classifier":  # dann: a classifier, measured on the target domain
            target = getattr(trainer.family.cfg, "target", "builtin:NAME")
            print(f"  measure      ganforge evaluate --ckpt {out} --classifier --data {target}")
        elif trainer.family.kind == "translation":  # image-to-image families translate inputs instead
            print(f"  translate    ganforge translate --ckpt {out} --input IMAGES_OR_FOLDER --out translated/")
        elif table:
            print(f"  sample more  ganforge sample --ckpt {out} --n 100000 --seed 0 --out rows.csv   (or .parquet)")
            print(f"  evaluate     ganforge evaluate --ckpt {out}")
        else:
            print(f"  sample more  ganforge sample --ckpt {out} --n 64 --seed 0 --out grid.png")
    return 130 if trainer.stop_reason else 0
