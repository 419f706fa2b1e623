"""`ganforge data inspect`."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Look at a dataset before training: file counts, image sizes and modes, classes (sub-folders), and the
files that cannot be read. Nothing is written.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect datasets", description=DESCRIPTION, formatter_class=HelpFormatter)
    verbs = p.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    i = verbs.add_parser("inspect", help="print counts, sizes, modes, classes and unreadable files",
                         description=DESCRIPTION, formatter_class=HelpFormatter,
                         epilog="examples:\n  ganforge data inspect ./cars\n  ganforge data inspect builtin:fashion-mnist")
    i.add_argument("path", help="image folder or builtin:NAME")
    i.set_defaults(run=inspect)


def inspect(args: argparse.Namespace) -> int:
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
    from ..data.inspect import format_inspection, inspect_folder

    path = Path(args.path)
    if not path.is_dir():
        raise UsageError(f"'{path}' is not a folder; give a folder of images or builtin:NAME")
    print(format_inspection(inspect_folder(path)))
    return 0
