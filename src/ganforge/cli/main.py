"""`ganforge` entry point."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings

from .. import __version__
from . import data as data_cmd
from . import evaluate as evaluate_cmd
from . import edit as edit_cmd
from . import export as export_cmd
from . import project as project_cmd
from . import recipes as recipes_cmd
from . import report as report_cmd
from . import sample as sample_cmd
from . import serve as serve_cmd
from . import train as train_cmd
from . import translate as translate_cmd
from .common import HelpFormatter

EPILOG = """\
examples:
  ganforge train --data builtin:fashion-mnist --family dcgan --out runs/fashion   # its recipe's settings
  ganforge recipes                                            # the tested settings and their figures
  ganforge train --data ./cars --size 100 --family dcgan --time 30m --out runs/cars
  ganforge train --out runs/cars --steps 40000 --resume        # continue up to 40k steps
  ganforge sample --ckpt runs/cars --n 64 --seed 0 --out grid.png
  ganforge evaluate --ckpt runs/cars --metrics fid,kid,pr --n 10000
  ganforge project --ckpt runs/fashion-vaegan photo.png --out proj/   # the latent of an image
  ganforge edit --ckpt runs/fashion --direction class:Sneaker:Ankle-boot --n 8 --out edit.png
  ganforge translate --ckpt runs/edges2items --input sketches/ --out translated/   # image-to-image
  ganforge upscale --ckpt runs/fmnist-sr small.png --out big/  # super-resolution (srgan)
  ganforge export --ckpt runs/cars --onnx cars.onnx --site site/ --lambda lambda/
  ganforge serve --ckpt runs/cars --port 8000                 # HTTP API + playground page at /
  ganforge data inspect ./cars
  ganforge report runs/cars                                   # one HTML page

each verb has its own --help.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganforge",
        description="Train, evaluate, diagnose, export and serve Generative Adversarial Networks.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    train_cmd.add_parser(sub)
    recipes_cmd.add_parser(sub)
    sample_cmd.add_parser(sub)
    translate_cmd.add_parser(sub)  # translate and upscale
    project_cmd.add_parser(sub)
    edit_cmd.add_parser(sub)
    evaluate_cmd.add_parser(sub)
    export_cmd.add_parser(sub)
    serve_cmd.add_parser(sub)
    data_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


# what a write, and rarely a read, fails with; a full disk's write error names no file
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM}


def describe_os_error(e: OSError, out: str | None = None) -> str:
    """`cannot write PATH: reason` for a failed write (PATH: the file, else the verb's --out), else `PATH: reason`."""
    path = e.filename if e.filename is not None else out
    reason = e.strerror or str(e)
    unreadable = path is not None and os.path.exists(path) and not os.access(path, os.R_OK)
    if e.errno in WRITE_ERRNOS and not unreadable:
        return f"cannot write {path}: {reason}" if path is not None else f"cannot write: {reason}"
    return f"error: {path}: {reason}" if path is not None else f"error: {reason}"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning  # users see the message, not our source line
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ValueError as e:  # bad input: one line that names the fix
        print(f"ganforge {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine said no (read-only folder, full disk): one line, earlier files intact
        print(f"ganforge {args.verb}: {describe_os_error(e, getattr(args, 'out', None))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ganforge {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
