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
    i.set_defaults(run=inspect)


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
    print(format_inspection(inspect_folder(path)))
    return 0


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
