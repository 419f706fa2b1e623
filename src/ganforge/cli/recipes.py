"""`ganforge recipes`."""

from __future__ import annotations

import argparse
import json
import textwrap

import yaml

from ..recipes import get, recipes
from .common import HelpFormatter

DESCRIPTION = """\
List the recipes: tested settings for a dataset, family and loss, each with the figure it reaches within its
budget and the bench that measures it (bench/recipes.py). `ganforge train` takes the matching recipe on its
own (its first line of output names it); --recipe NAME picks one, --recipe none trains with the family's
defaults. Your --config, flags and --set still win over a recipe's values.
"""

EPILOG = """\
examples:
  ganforge recipes                       # the table
  ganforge recipes ring8-gan             # one recipe: its command, settings and measured figure
  ganforge recipes --json                # everything, for scripts
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="tested settings per dataset and family, with their figures",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("name", nargs="?", help="show one recipe in full")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def _as_dict(r) -> dict:
    return {"name": r.name, "version": r.version, "data": r.data, "images": list(r.images) if r.images else None,
            "family": r.family, "losses": list(r.losses), "priority": r.priority, "summary": r.summary,
            "command": r.command, "budget": r.budget, "figure": r.figure, "measured": r.measured,
            "bench": r.bench, "settings": r.settings}


def _images(bounds) -> str:
    lo, hi = bounds
    return f"{lo:,}+" if hi is None else f"{lo:,} to {hi - 1:,}"


def run(args: argparse.Namespace) -> int:
    if args.name:
        r = get(args.name)
        if args.json:
            print(json.dumps(_as_dict(r), indent=2))
            return 0
        where = r.data + (f" with {_images(r.images)} images" if r.images else "")
        print(f"{r.tag}: {r.summary}")
        print(f"  for        {where}, family {r.family}, losses {', '.join(r.losses)}")
        print(f"  command    {r.command}")
        print(f"  figure     {r.figure} within {r.budget}")
        print(f"  measured   {r.measured or 'not measured yet'}")
        print(f"  bench      {r.bench or '-'}")
        print("  settings")
        print(textwrap.indent(yaml.safe_dump(r.settings, sort_keys=False, default_flow_style=False).rstrip(), "    "))
        return 0
    rows = recipes()
    if args.json:
        print(json.dumps([_as_dict(r) for r in rows], indent=2))
        return 0
    print(f"{len(rows)} recipes (`ganforge recipes NAME` for one in full):\n")
    for r in rows:
        data = r.data + (f" ({_images(r.images)} images)" if r.images else "")
        print(f"{r.tag}: {r.summary}")
        print(f"    for       {data}, family {r.family}, loss {', '.join(r.losses)}")
        print(f"    figure    {r.figure} in {r.budget}")
        print(f"    measured  {r.measured or 'not measured yet'}")
        print(f"    command   {r.command}\n")
    return 0
