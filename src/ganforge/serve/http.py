"""The HTTP API: a FastAPI app around one Sampler, with a playground page at `/`.

    GET  /health          liveness: {"status": "ok"}
    GET  /v1/info         family, image shape, classes, latent codes, limits
    POST /v1/generate     {"n", "seed", "class", "truncation", "codes", "format": png|npy|json}
    POST /v1/interpolate  {"seed_a", "seed_b", "t" | "steps", "class", "truncation", "codes", "format"}
    POST /v1/project      {"image": base64 PNG/JPEG, "steps"}: the image's latent (serve/latent_api.py)
    POST /v1/edit         {"latent", "direction": "sefa:K" | "class:A:B", "t", "format"}: latent + t x direction
    HEAD                  wherever GET is: the same status and headers, no body

A table model answers /v1/generate {"n", "seed", "format": json|csv} with rows decoded into the training
table's columns, units and types (serve/table_rows.py, numpy; the same rows as `ganforge sample --seed`):
json {"seed", "n", "columns", "kinds", "rows": [[...], ...]} (one list per row), or csv (text/csv, a header
line, then one line per row). Image options (class, truncation, codes, png, npy) and /v1/interpolate answer 422.

Generation runs in a fixed pool of worker threads (`workers`), never on the event loop. Memory stays
bounded: requests carry at most `max_n` images, bodies at most `max_body` bytes, and the server (uvicorn's
`limit_concurrency`, set by `ganforge serve`) answers 503 beyond a fixed number of open requests.
"""

import asyncio
import dataclasses
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Dict, Literal, Optional, Union

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..artifacts.card import model_info
from ..artifacts.sampler import TABLE_BATCH
from ..text.checks import check_text
from . import request_core as core
from . import table_rows
from .latent_api import LatentTools

STATIC = Path(__file__).parent / "static"


def _bounded(name: str, default: Any, description: str = "") -> Any:
    """A body field with request_core's range for `name`, so that the OpenAPI schema shows it."""
    lo, hi, lo_open = core.BOUNDS[name]
    return Field(default, description=description, le=hi, **{"gt" if lo_open else "ge": lo})


class _Common(BaseModel):
    """The JSON body, for the OpenAPI schema only: request_core checks every body, as in the Lambda handler."""

    model_config = ConfigDict(extra="forbid")

    klass: Optional[Union[int, str]] = Field(
        None, alias="class", description="conditional families: class index or name (default: cycle through classes)")
    truncation: float = _bounded("truncation", 1.0, "the truncation trick, psi (1 = none): a model whose /v1/info "
                                 "has truncation.space 'w' (stylegan) moves w towards its average, w_avg + psi "
                                 "(w - w_avg), and defaults to truncation.default; one whose truncation.space is "
                                 "'none' (progan) has no truncation trick and refuses psi != 1 (422); the others "
                                 "scale the noise z by psi")
    codes: Optional[Dict[str, float]] = Field(
        None, description="infogan: fix latent codes, e.g. {\"c0\": 3, \"c1\": 0.5}")
    text: Optional[str] = Field(
        None, description="text-to-image families (gan-int-cls): the caption of every image, e.g. \"a dark wide "
        "coat\" (default: the model's preview captions, listed in /v1/info's text.preview_captions)")
    format: Literal["png", "npy", "json", "csv", "wav"] = Field(
        "png", description="png (one image or a grid), npy (float32 N,C,H,W in [-1, 1]) or json (base64 PNG per "
        "image); audio models: wav (the default; one clip, or the clips with 0.25 s of silence between), npy, or "
        "json (base64 WAV per clip); table models: json (default; {seed, n, columns, kinds, rows}) or csv, and no "
        "class, truncation, codes")


class GenerateRequest(_Common):
    n: int = _bounded("n", 1, "number of images (at most the server's max_n)")
    seed: Optional[int] = _bounded("seed", None, "latent seed (random when left out; echoed in the X-Seed header)")


class InterpolateRequest(_Common):
    seed_a: int = _bounded("seed_a", ...)
    seed_b: int = _bounded("seed_b", ...)
    t: Optional[float] = _bounded("t", None, "one image a fraction t of the way from seed_a to seed_b")
    steps: Optional[int] = _bounded("steps", None, f"a strip of `steps` images from seed_a to seed_b "
                                                   f"(default {core.DEFAULT_STEPS})")


class ProjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(..., description="the image, base64-encoded PNG or JPEG (a data: URL is accepted)")
    steps: int = Field(100, ge=1, description="gradient steps (at most /v1/info's latent_tools.max_steps)")


class EditRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latent: list[float] = Field(..., description="a latent /v1/project returned (latent_tools.width numbers)")
    direction: str = Field(..., description="sefa:K (latent_tools.directions) or class:A:B (models with a "
                                            "classifier, latent_tools.class_names)")
    t: float = Field(0.0, ge=-10, le=10, description="how far along the direction")
    format: Literal["png", "npy", "json"] = "png"


class BodyLimit:
    """ASGI middleware: 413 for request bodies over `limit` bytes (or `paths[path]` for the paths it names),
    declared or streamed. A body without a content-length is read here (never more than the limit) and replayed
    to the app."""

    def __init__(self, app, limit: int, paths: Optional[Dict[str, int]] = None) -> None:
        self.app, self.default, self.paths = app, limit, paths or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.paths.get(scope.get("path", ""), self.default)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > limit:
                return await _too_large(limit, send)
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await _too_large(limit, send)
            more = message.get("more_body", False)
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


class HeadAsGet:
    """ASGI middleware: HEAD is GET without the body (RFC 9110, 9.3.2), so it works wherever GET does."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message):
            await send({**message, "body": b""} if message["type"] == "http.response.body" else message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


async def _too_large(limit: int, send) -> None:
    body = json.dumps({"detail": core.too_large(limit).detail}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(sampler, *, max_n: int = 64, workers: int = 2, max_body: int = 64 * 1024,
               max_upload: int = 2 * 1024 * 1024, max_project_steps: int = 300) -> FastAPI:
    """The API for one Sampler. Generation runs on `workers` threads; at most `max_n` images a request. An
    unconditional image generator also gets /v1/project (bodies up to `max_upload` bytes, at most
    `max_project_steps` steps) and /v1/edit."""
    if sampler.is_translation:
        raise ValueError(f"ganforge serve generates from seeds; {sampler.family.name} translates images: use "
                         f"`ganforge translate`, or `ganforge export --onnx` and your own runtime")
    info = {**model_info(sampler), "max_n": max_n}
    try:
        tools = LatentTools(sampler, max_project_steps)
        info["latent_tools"] = tools.info()
    except ValueError:  # conditional, tables, points, ...: no projection
        tools = None
    # projections take seconds: one at a time, on a thread of their own, so /v1/generate never waits behind them
    project_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganforge-project")
    projecting = threading.Semaphore(1)
    decoder = table_rows.RowDecoder(info["table"]["state"]) if core.is_table(info) else None
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ganforge-gen")

    @asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)
        project_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=f"ganforge: {info['family']} generator",
                  description="Generate samples from a trained GAN. `GET /v1/info` describes the model.",
                  version=info["ganforge_version"], lifespan=lifespan)
    app.state.pool = pool

    @app.exception_handler(core.RequestError)
    async def _bad(request: Request, exc: core.RequestError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    async def respond(work, fmt: str, headers: Optional[dict] = None) -> Response:
        body = await asyncio.get_running_loop().run_in_executor(pool, work)
        return Response(body, media_type=core.MEDIA[fmt], headers=headers)

    @app.get("/health", summary="liveness")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/info", summary="what this model generates")
    async def v1_info():
        return info

    @app.post("/v1/generate", summary="generate n samples from a seed",
              responses={200: {"content": {m: {} for m in core.MEDIA.values()}}},
              openapi_extra=_body(GenerateRequest))
    async def generate(request: Request):
        params = await _params(request)
        if decoder is not None:  # a table model: rows as JSON or CSV
            rows_req = core.parse_rows(params, info, max_n)

            def rows_work() -> bytes:  # the latents and batch of Sampler.iter_tables: `ganforge sample`'s rows
                x = sampler.generate(rows_req.n, rows_req.seed, batch=TABLE_BATCH).numpy()
                return table_rows.encode_rows(decoder.values(x), decoder.kinds, rows_req.format, seed=rows_req.seed)

            return await respond(rows_work, rows_req.format, {"X-Seed": str(rows_req.seed)})
        req = _checked_text(core.parse_generate(params, info, max_n))

        def work() -> bytes:
            x = sampler.generate(req.n, req.seed, y=req.cls, codes=req.codes, truncation=req.truncation, text=req.text)
            classes = core.labels(info, req.n, req.cls)
            return core.encode(x.numpy(), req.format, kind=info["kind"], seed=req.seed, classes=classes,
                               sample_rate=info.get("sample_rate", 0))

        return await respond(work, req.format, {"X-Seed": str(req.seed)})

    @app.post("/v1/interpolate", summary="slide between two seeds", openapi_extra=_body(InterpolateRequest))
    async def interpolate(request: Request):
        req = _checked_text(core.parse_interpolate(await _params(request), info, max_n))

        def work() -> bytes:
            z = sampler.between_seeds(req.seed_a, req.seed_b, req.ts, req.truncation)
            x = sampler.generate(len(z), z=z, y=req.cls, codes=req.codes, truncation=req.truncation,  # w-space psi
                                 text=req.text)
            classes = core.labels(info, len(req.ts), req.cls)
            return core.encode(x.numpy(), req.format, kind=info["kind"], seed=req.seed_a, classes=classes,
                               sample_rate=info.get("sample_rate", 0))

        return await respond(work, req.format)

    if tools is not None:
        @app.post("/v1/project", summary="project an uploaded image into the generator (its latent and image)",
                  openapi_extra=_body(ProjectRequest))
        async def project(request: Request):
            params = await _params(request)
            if not projecting.acquire(blocking=False):
                raise core.RequestError("another projection is running; retry in a few seconds", 503,
                                        {"Retry-After": "5"})
            try:
                body = await asyncio.get_running_loop().run_in_executor(project_pool, tools.project, params)
            finally:
                projecting.release()
            return JSONResponse(body)

        @app.post("/v1/edit", summary="the image of a latent moved t along a direction",
                  responses={200: {"content": {m: {} for m in core.MEDIA.values()}}},
                  openapi_extra=_body(EditRequest))
        async def edit(request: Request):
            params = await _params(request)
            fmt = params.get("format", "png")
            if fmt not in ("png", "npy", "json"):
                raise core.RequestError(f'"format" must be png, npy or json, got {fmt!r}')

            def work() -> bytes:
                x = tools.edit(params)
                return core.encode(x.numpy(), fmt, kind="image", seed=0, classes=None)

            return await respond(work, fmt)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground():
        return HTMLResponse((STATIC / "playground.html").read_text())

    @app.get("/playground.js", include_in_schema=False)
    async def playground_js():
        return Response((STATIC / "playground.js").read_text(), media_type="text/javascript")

    app.add_middleware(BodyLimit, limit=max_body, paths={"/v1/project": max(max_body, max_upload)})
    app.add_middleware(HeadAsGet)
    return app


def _checked_text(req):
    """`req` with its caption checked (ganforge.text.checks): 422 naming what is wrong with it."""
    if req.text is None:
        return req
    try:
        return dataclasses.replace(req, text=check_text(req.text, "text"))
    except ValueError as e:
        raise core.RequestError(str(e)) from None


def _body(model: type[BaseModel]) -> dict:
    """openapi_extra that documents `model` as the JSON body, which the endpoint reads itself."""
    schema = model.model_json_schema(by_alias=True)
    body = {"required": bool(schema.get("required")), "content": {"application/json": {"schema": schema}}}
    return {"requestBody": body}


async def _params(request: Request) -> dict[str, Any]:
    """The parameters of a JSON body, for request_core; no body means the defaults, as in the Lambda handler.
    A body that is JSON but no object (a list, a number, ...) is a 422, as this API always said."""
    raw = await request.body()
    return core.parse_body(raw, not_object_status=422) if raw else {}
