"""`ganforge serve`."""

from __future__ import annotations

import argparse
import os

from .common import HelpFormatter, UsageError

DESCRIPTION = """\
Serve a trained generator over HTTP (FastAPI + uvicorn), with a playground page at / (generate from a
seed or at random, pick a class, slide between two seeds, download a PNG) and the OpenAPI docs at /docs.

  GET  /health          liveness
  GET  /v1/info         family, image shape, classes, latent codes, limits
  POST /v1/generate     {"n": 4, "seed": 0, "class": 7, "truncation": 0.8, "format": "png|npy|json"}
  POST /v1/interpolate  {"seed_a": 0, "seed_b": 1, "t": 0.5}  or  {"seed_a": 0, "seed_b": 1, "steps": 8}

A table model answers /v1/generate {"n": 100, "seed": 0, "format": "json|csv"} with rows in the training
table's columns, units and types: json {"seed", "n", "columns", "kinds", "rows": [[...], ...]} or csv (the
same rows as `ganforge sample --seed`); --max-n bounds the rows a request.

Generation runs on --workers threads; requests beyond --max-concurrency open at once get 503, so memory
stays bounded under any load. Bind to 0.0.0.0 only behind a proxy you trust.
"""

EPILOG = """\
examples:
  ganforge serve --ckpt runs/fashion                      # http://127.0.0.1:8000/
  ganforge serve --ckpt runs/fashion --port 9000 --max-n 16 --workers 2
  curl -s -X POST localhost:8000/v1/generate -H 'content-type: application/json' \\
       -d '{"n": 16, "seed": 3}' -o grid.png
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a generator over HTTP, with a playground page",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="run directory (its latest checkpoint) or a checkpoint directory")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--max-n", type=int, default=64, help="most images one request may ask for (default: 64)")
    p.add_argument("--workers", type=int, default=2, help="generation threads (default: 2)")
    p.add_argument("--max-concurrency", type=int, default=64,
                   help="open requests before the server answers 503 (default: 64)")
    p.add_argument("--max-body", type=int, default=64 * 1024, help="largest request body in bytes (default: 65536)")
    p.add_argument("--max-upload", type=int, default=2 * 1024 * 1024,
                   help="largest /v1/project body (an uploaded image, base64) in bytes (default: 2 MiB)")
    p.add_argument("--max-project-steps", type=int, default=300,
                   help="most gradient steps one /v1/project request may ask for (default: 300)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for name in ("max_n", "workers", "max_concurrency", "max_body", "max_upload", "max_project_steps"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    try:
        import uvicorn
    except ImportError as e:
        raise UsageError("ganforge serve needs FastAPI and uvicorn: pip install 'ganforge[serve]'") from e
    import torch

    from ..artifacts import Sampler
    from ..serve.http import create_app

    sampler = Sampler.from_checkpoint(args.ckpt, ema=not args.no_ema)
    # the worker threads share the cores: one intra-op thread each keeps them from oversubscribing
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.workers))
    app = create_app(sampler, max_n=args.max_n, workers=args.workers, max_body=args.max_body,
                     max_upload=args.max_upload, max_project_steps=args.max_project_steps)
    print(f"serving {sampler.family.name} (step {sampler.step}) on http://{args.host}:{args.port}/ "
          f"(API docs: /docs; Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, limit_concurrency=args.max_concurrency,
                log_level="warning", timeout_graceful_shutdown=5)
    return 0
