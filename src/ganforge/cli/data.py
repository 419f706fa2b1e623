"""`ganforge data inspect`."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Look at a dataset before training: file counts, image sizes and modes (sound files: durations, sample rates,
channels), classes (sub-folders), and the files that cannot be read; for a table, each column's inferred type, range, most frequent values, missing
values (and what is done with them) and encoding. Nothing is written.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect datasets", description=DESCRIPTION, formatter_class=HelpFormatter)
    verbs = p.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    i = verbs.add_parser("inspect", help="print counts, sizes, modes, classes and unreadable files",
                         description=DESCRIPTION, formatter_class=HelpFormatter,
                         epilog="examples:\n  ganforge data inspect ./cars\n  ganforge data inspect builtin:fashion-mnist\n"
                                "  ganforge data inspect sales.csv --columns spec.yaml\n"
                                "  ganforge data inspect builtin:eprime --rows 10000")
    i.add_argument("path", help="image or sound folder, table (.csv, .tsv, .parquet) or builtin:NAME")
    i.add_argument("--columns", metavar="SPEC.yaml", help="tables: per-column settings, as `ganforge train --columns`")
    i.add_argument("--rows", type=int, help="built-in generated tables (builtin:eprime): rows to make")
    i.add_argument("--size", help="image folders: the training --size (N or HxW), for the decoded size and cache entry "
                                  "(default: the images' own size)")
    i.add_argument("--channels", type=int, choices=(1, 3), help="image folders: the training --channels (default: 3)")
    i.add_argument("--fit", choices=("crop", "pad"), default="crop", help="image folders: the training fit")
    i.add_argument("--cache", metavar="DIR", help="image folders: the training --cache (default: $GANFORGE_CACHE or "
                                                  "~/.cache/ganforge)")
    i.set_defaults(run=inspect)
    k = verbs.add_parser("pack", help="write an image folder into tar shards to stream from (WebDataset format)",
                         description=PACK_DESCRIPTION, formatter_class=HelpFormatter,
                         epilog="examples:\n  ganforge data pack ./cars --out cars-shards/\n"
                                "  ganforge train --data cars-shards/ --size 128 --out runs/cars\n"
                                "  ganforge train --data 'https://host/cars/shard-{000000..000199}.tar' --size 128 "
                                "--out runs/cars")
    k.add_argument("folder", help="image folder (class sub-folders become labels, as for training)")
    k.add_argument("--out", required=True, help="folder to write shard-NNNNNN.tar and index.json into")
    k.add_argument("--shard-images", type=int, default=1000, metavar="N", help="images per shard at most")
    k.add_argument("--shard-mb", type=float, default=128, metavar="MB", help="megabytes per shard at most")
    k.add_argument("--quiet", action="store_true", help="no progress bar")
    k.set_defaults(run=pack)


PACK_DESCRIPTION = """\
Write an image folder's readable images, as stored (no re-encoding), into tar shards (WebDataset's format) and an
index.json, for datasets beyond a local disk budget and for training on several machines. `ganforge train --data
SHARDS/` (or a brace pattern of paths or URLs, e.g. https://host/shard-{000000..000199}.tar, with index.json beside
them) streams them: DataLoader worker processes read and decode (`--set data.workers=N`, default 2), each process
under torchrun reads only its own shards, and --resume continues exactly where the run stopped. Unreadable files
are skipped and named.
"""


def pack(args: argparse.Namespace) -> int:
    from ..data.images import format_bytes
    from ..data.shards import pack_folder

    try:
        index = pack_folder(args.folder, args.out, shard_images=args.shard_images,
                            shard_bytes=int(args.shard_mb * (1 << 20)), quiet=args.quiet)
    except ValueError as e:
        raise UsageError(str(e)) from None
    stored = sum((Path(args.out) / name).stat().st_size for name in index.shards)
    print(f"packed {index.total:,} images into {len(index.shards)} shards ({format_bytes(stored)}) in {args.out}/"
          + (f"; {len(index.skipped)} unreadable files skipped" if index.skipped else ""))
    print(f"  train        ganforge train --data {args.out} --size N --out RUN")
    return 0


def inspect_shards(path: str) -> int:
    from ..data.shards import read_index

    try:
        index = read_index(path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"shards '{path}': {index.total:,} images in {len(index.urls)} shards (packed from {index.source})")
    sizes = ", ".join(f"{k} x{v}" for k, v in sorted(index.sizes.items(), key=lambda kv: -kv[1])[:8])
    print(f"  sizes (HxW)  {sizes}")
    if index.class_names:
        print(f"  classes      {len(index.class_names)}: {', '.join(index.class_names[:20])}")
    if index.skipped:
        print(f"  skipped      {len(index.skipped)} unreadable when packed")
    return 0


def inspect_table(args: argparse.Namespace) -> int:
    """Per-column types, ranges, modes, missing counts and encodings of a table (file or built-in)."""
    from ..data import load_any_table
    from ..data.table import format_report

    try:
        data = load_any_table(args.path, columns=args.columns, rows=args.rows or 0)
    except ValueError as e:
        raise UsageError(str(e)) from None
    report = data.table.report()
    for name, entry in report["columns"].items():  # the encoding a run would use (fatgan's; ctgan: vgm)
        for col, _, t in data.transformer.columns:
            if col == name:
                entry["transform"] = t.state()["name"]
    print(format_report(report))
    print(f"encoded for training: {data.spec.shape[0]} values per row (numeric columns standardised unless a "
          f"transform is set; --family ctgan uses its mode-specific normalisation)")
    return 0


def inspect(args: argparse.Namespace) -> int:
    from ..data.table import is_table_path
    from ..data.table_builtins import is_table_builtin

    if is_table_path(args.path) or is_table_builtin(args.path):
        return inspect_table(args)
    if args.columns or args.rows:
        raise UsageError("--columns and --rows apply to tables (.csv, .parquet, builtin:eprime)")
    from ..data.shards import is_shard_source

    if is_shard_source(args.path):
        return inspect_shards(args.path)
    if args.path.startswith("builtin:"):
        from ..data import load_data

        data = load_data(args.path)
        spec = data.spec
        print(f"{args.path}: {len(data)} samples, {spec.kind}, shape {tuple(spec.shape)}")
        if spec.two_domain:
            names = spec.domains or ("A", "B")
            print(f"two domains, {spec.pairing}: A = {names[0]} {tuple(spec.shape)} ({data.x.shape[0]} images), "
                  f"B = {names[1]} {tuple(spec.shape_b)} ({data.x_b.shape[0]} images)")
        if spec.n_classes and data.y is not None:
            counts = Counter(data.y.tolist())
            print(f"classes ({spec.n_classes}):")
            for k in range(spec.n_classes):
                print(f"  {k:3d} {spec.class_names[k]:20s} {counts.get(k, 0)}")
        return 0
    from ..data.audio import is_audio_folder
    from ..data.inspect import format_inspection, inspect_folder

    path = Path(args.path)
    if not path.is_dir():
        raise UsageError(f"'{path}' is not a folder; give a folder of images or sound files, or builtin:NAME")
    if is_audio_folder(path):
        return inspect_audio(path)
    info = inspect_folder(path)
    print(format_inspection(info))
    if "domains" not in info and info["readable"]:
        print(cache_report(path, info, args))
    return 0


def cache_report(path: Path, info: dict, args: argparse.Namespace) -> str:
    """Where training's decoded-image cache of this folder lives, how large it is, and whether it exists yet."""
    import shutil

    from ..data import parse_size
    from ..data.images import cache_directory, cache_key, format_bytes, mapped_paths, scan_folder

    try:
        size = parse_size(args.size) if args.size else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    channels = args.channels or 3
    if size is None and len(info["sizes"]) > 1:
        return "  cache        mixed sizes: pass --size to see the decoded size of the training cache"
    h, w = size or tuple(int(v) for v in info["sizes"].most_common(1)[0][0].split("x"))
    n = info["readable"]
    need = n * channels * h * w
    directory = cache_directory(args.cache)
    x_path, meta_path = mapped_paths(directory, cache_key(scan_folder(path), size, channels, args.fit))
    state = "built" if meta_path.is_file() and x_path.is_file() else "not built yet: the first `ganforge train` writes it"
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    room = "" if need <= free else f"; only {format_bytes(free)} free there: pass --cache DIR on a larger disk"
    return (f"  decoded      {n:,} images x {channels}x{h}x{w} uint8 = {format_bytes(need)} (memory-mapped while training: "
            f"the page cache holds what fits)\n"
            f"  cache        {x_path} ({state}{room})")


def inspect_audio(path: Path) -> int:
    """Durations, sample rates, channels and formats of a folder of sound files, its classes and unreadable files."""
    from ..data.audio import AUDIO_SUFFIXES, CLIP_SAMPLES, SAMPLE_RATE, describe_file

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    infos, bad = [], []
    for f in files:
        try:
            infos.append((f, describe_file(f)))
        except (RuntimeError, OSError, ValueError) as e:
            bad.append(f"{f.relative_to(path)} ({type(e).__name__}: {str(e)[:80]})")
    print(f"{path}: {len(files)} sound files, {len(infos)} readable")
    if infos:
        durations = sorted(i["duration_s"] for _, i in infos)
        print(f"durations: {durations[0]:.3f} to {durations[-1]:.3f} s (median {durations[len(durations) // 2]:.3f})")
        for what, key in (("sample rates", "sample_rate"), ("channels", "channels"), ("formats", "format")):
            counts = Counter(i[key] for _, i in infos)
            print(f"{what}: " + ", ".join(f"{k} ({n})" for k, n in counts.most_common()))
        classes = Counter(f.relative_to(path).parts[0] for f, _ in infos if len(f.relative_to(path).parts) > 1)
        if classes:
            print(f"classes ({len(classes)}): " + ", ".join(f"{k} ({n})" for k, n in sorted(classes.items())))
        print(f"training reads each file as {CLIP_SAMPLES:,} samples at {SAMPLE_RATE:,} Hz, mono "
              f"({CLIP_SAMPLES / SAMPLE_RATE:.3f} s): resampled, the sound centred, padded or its middle kept")
    if bad:
        print(f"unreadable ({len(bad)}, skipped by training):")
        for b in bad[:20]:
            print(f"  {b}")
    return 0
