"""`ganforge report`."""

from __future__ import annotations

import argparse

from .common import HelpFormatter

DESCRIPTION = """\
Write one self-contained HTML page about a run: configuration, loss and D(x)/D(G(z)) curves, D accuracy,
gradient norms, metric curves, health events, sample grids over time and final metrics with provenance.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML report of a run", description=DESCRIPTION,
                       epilog="examples:\n  ganforge report runs/cars            # writes runs/cars/report.html",
                       formatter_class=HelpFormatter)
    p.add_argument("run_dir", help="run directory written by 'ganforge train'")
    p.add_argument("--out", help="output file (default: RUN/report.html)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..artifacts.report import build_report

    path = build_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0
