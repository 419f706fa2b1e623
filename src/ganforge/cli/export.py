"""`ganforge export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import HelpFormatter, UsageError
from ..files import writing
from .sample import writable_folder

DESCRIPTION = """\
Export a trained generator (the EMA weights unless --no-ema) for use outside ganforge. Give one or more
of the targets:

  --onnx OUT.onnx   the generator as ONNX (dynamic batch axis; inputs `z`, and `y` for conditional
                    families). After writing it, onnxruntime and the eager model run on the same inputs
                    and the export fails if they differ by more than 1e-4 (max abs). A table model's graph
                    outputs encoded rows; decoding them into the table's columns (argmax of one-hot
                    blocks, inverse transforms, types) runs outside the graph, in numpy, from the fitted
                    transforms written beside it as OUT.table.json (also in the model's metadata).
  --site OUT/       a static web site that runs the generator in the visitor's browser (onnxruntime-web,
                    fetched from the npm registry at export time); put the folder on any static host.
  --lambda OUT/     an AWS Lambda package: OUT/app.py (handler `app.handler`, onnxruntime + numpy + Pillow,
                    no torch), the model, requirements.txt, function.zip and an AWS SAM template
                    (template.yaml); see OUT/README.md for `sam deploy`.
                    Table models answer rows as JSON or CSV (decoded in numpy in the handler).

A model card (JSON + Markdown: family, data, size, steps, metrics with provenance) travels with every export.
"""

EPILOG = """\
examples:
  ganforge export --ckpt runs/fashion --onnx fashion.onnx
  ganforge export --ckpt runs/fashion --site site/ && python -m http.server -d site 8080
  ganforge export --ckpt runs/fashion --lambda lambda/ && (cd lambda && sam deploy --guided)
  ganforge export --ckpt runs/sneaker2boot --onnx boot2sneaker.onnx --direction BtoA   # cyclegan
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a generator: ONNX, a static web site, an AWS Lambda package",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="run directory (its latest checkpoint) or a checkpoint directory")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write the generator as ONNX (checked against eager)")
    p.add_argument("--site", metavar="OUT/", help="write a static site that generates in the browser")
    p.add_argument("--lambda", dest="lambda_dir", metavar="OUT/", help="write an AWS Lambda deployment package")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                   help="two-way translation families (cyclegan, discogan): which generator --onnx exports "
                        "(default: AtoB)")
    p.add_argument("--no-vendor", action="store_true",
                   help="--lambda: leave the dependencies out of function.zip (`sam build` installs them "
                        "from requirements.txt) instead of downloading Linux wheels now")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not (args.onnx or args.site or args.lambda_dir):
        raise UsageError("nothing to export: give --onnx OUT.onnx, --site OUT/ and/or --lambda OUT/")
    if args.onnx and Path(args.onnx).suffix != ".onnx":
        raise UsageError(f"--onnx needs a file name ending in .onnx, got {args.onnx}")
    from ..artifacts.onnx import ExportError
    from ..serve.site import SiteError

    try:
        return _export(args)
    except (ExportError, SiteError) as e:  # the model could not be exported faithfully: one line, no traceback
        print(f"ganforge export: error: {e}", file=sys.stderr)
        return 1


def _export(args: argparse.Namespace) -> int:
    from ..artifacts import Sampler
    from ..artifacts.card import model_card, write_card
    from ..artifacts.onnx import export_onnx

    sampler = Sampler.from_checkpoint(args.ckpt, ema=not args.no_ema)
    where = f"{sampler.family.name}, step {sampler.step}, {'EMA' if sampler.ema else 'raw'} generator"
    # every destination is created and checked before any export work (a missing parent is created)
    for target, into in ((args.onnx, "--onnx"), (args.site, "--site"), (args.lambda_dir, "--lambda")):
        if target:
            writable_folder(Path(target).parent, f"{into} {target}")
    if args.onnx:
        with writing(args.onnx):
            result = export_onnx(sampler, args.onnx, opset=args.opset, direction=args.direction)
            js, md = write_card(model_card(sampler, result.as_dict()), Path(args.onnx).with_suffix(".card"))
        print(f"ONNX: {result.path} ({where}; {result.size_bytes / 1e6:.2f} MB, exported in {result.seconds:.2f} s, "
              f"max abs diff vs eager {result.max_abs_diff:.2g} <= 1e-4)")
        print(f"model card: {js}, {md}")
        if result.table_state:
            print(f"table transforms: {result.table_state}; the graph outputs ENCODED rows and decoding (argmax of "
                  f"one-hot blocks, VGM modes, inverse transforms, types) runs outside it, in numpy: "
                  f"ganforge.serve.table_rows.decode_rows(state, rows)")
    if args.site:
        from ..serve.site import build_site

        with writing(args.site):
            report = build_site(sampler, Path(args.site), opset=args.opset)
        print(f"static site: {report['index']} ({where}; {report['total_mb']:.1f} MB, onnxruntime-web "
              f"{report['ort_version']})")
        print(f"  try it: python -m http.server -d {args.site} 8080, then open http://127.0.0.1:8080/")
    if args.lambda_dir:
        from ..serve.lambda_package import build_lambda

        with writing(args.lambda_dir):
            report = build_lambda(sampler, Path(args.lambda_dir), vendor=not args.no_vendor, opset=args.opset)
        print(f"Lambda package: {report['zip']} ({where}; unzipped {report['unzipped_mb']:.1f} MB of the "
              f"250 MB limit{'' if report['vendored'] else ', dependencies not included: use sam build'})")
        print(f"  handler app.handler in {report['app']}; template {report['template']}; "
              f"deploy: see {report['readme']}")
    return 0
