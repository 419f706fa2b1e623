"""The HTTP API: a FastAPI app around one Sampler, with a playground page at `/`.

    GET  /health          liveness: {"status": "ok"}
    GET  /v1/info         family, image shape, classes, latent codes, limits
    POST /v1/generate     {"n", "seed", "class", "truncation", "codes", "format": png|npy|json}
    POST /v1/interpolate  {"seed_a", "seed_b", "t" | "steps", "class", "truncation", "codes", "format"}

Generation runs in a fixed pool of worker threads (`workers`), never on the event loop. Memory stays
bounded: requests carry at most `max_n` images, bodies at most `max_body` bytes, and the server (uvicorn's
`limit_concurrency`, set by `ganforge serve`) answers 503 beyond a fixed number of open requests.
"""

import asyncio
import base64
import io
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Dict, Literal, Optional, Union

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..artifacts.card import model_info
from ..image import make_grid, to_pil, to_uint8
from ..latent import MAX_SEED

STATIC = Path(__file__).parent / "static"
MEDIA = {"png": "image/png", "npy": "application/octet-stream", "json": "application/json"}


class BadRequest(ValueError):
    """A request that validates but cannot be served (unknown class, code, ...): 422 with the message."""


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    klass: Optional[Union[int, str]] = Field(
        None, alias="class", description="conditional families: class index or name (default: cycle through classes)")
    truncation: float = Field(1.0, gt=0, le=1, description="scale the noise towards its mean (1 = none)")
    codes: Optional[Dict[str, float]] = Field(None, description="infogan: fix latent codes, e.g. {\"c0\": 3, \"c1\": 0.5}")
    format: Literal["png", "npy", "json"] = Field("png", description="png (one image or a grid), npy (float32 "
                                                  "N,C,H,W in [-1, 1]) or json (base64 PNG per image)")


class GenerateRequest(_Common):
    n: int = Field(1, ge=1, description="number of images (at most the server's max_n)")
    seed: Optional[int] = Field(None, ge=0, le=MAX_SEED, description="latent seed (random when left out; echoed "
                                                                       "in the X-Seed header)")


class InterpolateRequest(_Common):
    seed_a: int = Field(..., ge=0, le=MAX_SEED)
    seed_b: int = Field(..., ge=0, le=MAX_SEED)
    t: Optional[float] = Field(None, ge=0, le=1, description="one image a fraction t of the way from seed_a to seed_b")
    steps: Optional[int] = Field(None, ge=2, description="a strip of `steps` images from seed_a to seed_b (default 8)")


class BodyLimit:
    """ASGI middleware: 413 for request bodies over `limit` bytes, declared or streamed. A body without a
    content-length is read here (never more than `limit` bytes) and replayed to the app."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                return await _too_large(self.limit, send)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await _too_large(self.limit, send)
            more = message.get("more_body", False)
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


async def _too_large(limit: int, send) -> None:
    body = f'{{"detail": "request body over {limit} bytes; ask for fewer images per request"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _first_error(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "the body is not valid JSON; send a JSON object such as {\"n\": 4, \"seed\": 0}"
    parts = []
    for e in errors[:3]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg')}")
    return 422, "; ".join(parts)


def create_app(sampler, *, max_n: int = 64, workers: int = 2, max_body: int = 64 * 1024) -> FastAPI:
    """The API for one Sampler. Generation runs on `workers` threads; at most `max_n` images a request."""
    if getattr(sampler, "is_translation", False):
        raise ValueError(f"ganforge serve generates from seeds; {sampler.family.name} translates images: use "
                         f"`ganforge translate`, or `ganforge export --onnx` and your own runtime")
    info = {**model_info(sampler), "max_n": max_n}
    names = {name.lower(): i for i, name in enumerate(info["class_names"])}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ganforge-gen")

    @asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=f"ganforge: {info['family']} generator",
                  description="Generate samples from a trained GAN. `GET /v1/info` describes the model.",
                  version=info["ganforge_version"], lifespan=lifespan)
    app.state.pool = pool

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, message = _first_error(exc)
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(BadRequest)
    async def _bad(request: Request, exc: BadRequest):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    def labels(klass, n: int):
        if klass is None:
            return None
        if not info["conditional"]:
            raise BadRequest(f"this {info['family']} model has no classes; leave out 'class'")
        if isinstance(klass, str):
            if klass.strip().lower() in names:
                return names[klass.strip().lower()]
            if not klass.strip().isdigit():
                raise BadRequest(f"unknown class '{klass}'; classes: {', '.join(info['class_names'])}")
            klass = int(klass)
        if not 0 <= klass < info["n_classes"]:
            raise BadRequest(f"class {klass} does not exist; use 0..{info['n_classes'] - 1} or a name: "
                             f"{', '.join(info['class_names'])}")
        return klass

    def check(req: _Common, n: int) -> None:
        if n > max_n:
            raise BadRequest(f"n = {n} is over this server's maximum of {max_n}; ask for fewer images per request")
        if req.format == "png" and info["kind"] != "image":
            raise BadRequest("this model makes points, not images: use format json or npy")
        if req.codes and not info["latent"]["codes"]:
            raise BadRequest(f"this {info['family']} model has no latent codes; leave out 'codes'")

    def encode(x: torch.Tensor, fmt: str, seed: Optional[int], classes) -> tuple[bytes, str]:
        if fmt == "npy":
            buf = io.BytesIO()
            np.save(buf, x.numpy().astype(np.float32))
            return buf.getvalue(), MEDIA[fmt]
        if fmt == "png":
            img = to_uint8(x)[0] if len(x) == 1 else make_grid(x, nrow=min(len(x), 8))
            return _png(to_pil(img)), MEDIA[fmt]
        if info["kind"] == "image":
            items = [base64.b64encode(_png(to_pil(im))).decode() for im in to_uint8(x)]
            payload = {"seed": seed, "n": len(x), "shape": list(x.shape[1:]), "classes": classes, "images": items}
        else:
            payload = {"seed": seed, "n": len(x), "shape": list(x.shape[1:]), "classes": classes,
                       "points": x.tolist()}
        return json.dumps(payload).encode(), MEDIA[fmt]

    async def run(fn):
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    def classes_of(y, n):
        if not info["conditional"]:
            return None
        return [int(c) for c in sampler.family.labels(n, y, device=torch.device("cpu"))]

    @app.get("/health", summary="liveness")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/info", summary="what this model generates")
    async def v1_info():
        return info

    @app.post("/v1/generate", summary="generate n samples from a seed",
              responses={200: {"content": {m: {} for m in MEDIA.values()}}})
    async def generate(req: GenerateRequest):
        check(req, req.n)
        y = labels(req.klass, req.n)
        seed = req.seed if req.seed is not None else secrets.randbelow(MAX_SEED + 1)

        def work():
            x = sampler.generate(req.n, seed, y=y, codes=req.codes, truncation=req.truncation)
            return encode(x, req.format, seed, classes_of(y, req.n))

        body, media = await run(work)
        return Response(body, media_type=media, headers={"X-Seed": str(seed)})

    @app.post("/v1/interpolate", summary="slide between two seeds")
    async def interpolate(req: InterpolateRequest):
        if req.t is not None and req.steps is not None:
            raise BadRequest("give either t (one image) or steps (a strip), not both")
        ts = [req.t] if req.t is not None else list(np.linspace(0, 1, req.steps or 8))
        check(req, len(ts))
        y = labels(req.klass, len(ts))
        if y is None and info["conditional"]:
            y = 0  # one class along the strip (default: the first)

        def work():
            z = sampler.between_seeds(req.seed_a, req.seed_b, ts, req.truncation)
            x = sampler.generate(len(z), z=z, y=y, codes=req.codes)
            return encode(x, req.format, req.seed_a, classes_of(y, len(ts)))

        body, media = await run(work)
        return Response(body, media_type=media)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground():
        return HTMLResponse((STATIC / "playground.html").read_text())

    @app.get("/playground.js", include_in_schema=False)
    async def playground_js():
        return Response((STATIC / "playground.js").read_text(), media_type="text/javascript")

    app.add_middleware(BodyLimit, limit=max_body)
    return app


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
