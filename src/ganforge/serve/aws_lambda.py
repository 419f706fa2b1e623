"""AWS Lambda handler: a ganforge generator behind API Gateway (HTTP API, payload format 2.0), no torch.

    GET       /health           {"status": "ok"}
    GET       /v1/info          model_info + {"max_n"}
    GET|POST  /v1/generate      n, seed, class, truncation, codes, text, format (png | npy | json)
    GET|POST  /v1/interpolate   seed_a, seed_b, t | steps, class, truncation, codes, text, format
    HEAD      wherever GET is: the same status and headers, no body

The same API as `ganforge serve` (serve/http.py), with the same checks, messages and encodings (both use
serve/request_core.py): POST takes a JSON object, GET the same parameters as a query string (codes as JSON
or "c0:3,c1:0.5"). Bad JSON or an event not shaped as API Gateway sends it -> 400, a body over 64 KB -> 413,
invalid values -> 422 {"detail": "what to change"}, unknown path -> 404, wrong method -> 405; a failure
of the model -> 500 with a one-line detail (the traceback goes to the log, CloudWatch). `truncation` psi scales
the seed's noise, or, for a model whose info says truncation.space "w" (stylegan), is fed to the graph's
`truncation` input (w_avg + psi (w - w_avg)) with z unscaled; a model whose info says "none" (progan, no
truncation trick) answers psi != 1 with a 422 naming the reason.

A text model (gan-int-cls) takes `text`, a caption for every image (without it: the model's preview captions in
turn), encoded by ganforge_text_onnx.py (serve/text_onnx.py: tokenizers + onnxruntime) with model.text.onnx and
model.tokenizer.json beside model.onnx; a bad caption answers 422.

A table model answers /v1/generate (n, seed, format json | csv) with rows decoded into the training table's
columns and types by ganforge_table_rows.py (serve/table_rows.py, numpy): json {"seed", "n", "columns",
"kinds", "rows": [[...], ...]} or csv (text/csv); image options and /v1/interpolate answer 422.

This file is copied verbatim into the Lambda package as app.py (`Handler: app.handler`), with
ganforge/latent.py as ganforge_latent.py and serve/request_core.py as ganforge_request_core.py, so it
imports only the standard library, numpy, onnxruntime and Pillow. The model (model.onnx beside this file,
or $GANFORGE_MODEL) loads once per container. Environment: GANFORGE_MAX_N (images per request, default 16),
GANFORGE_THREADS (onnxruntime intra-op threads, default: onnxruntime's choice).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import numpy as np

try:  # inside the Lambda package
    import ganforge_latent as latent
    import ganforge_request_core as core
except ImportError:  # inside the ganforge package
    from .. import latent
    from . import request_core as core
try:  # a text model's package ships the torch-free caption encoder; the others have no need of it
    import ganforge_text_onnx as text_onnx
except ImportError:
    try:
        from . import text_onnx
    except ImportError:  # app.py of a model without text
        text_onnx = None
try:  # a table model's package ships the numpy decoder of its rows; an image model's has no need of it
    import ganforge_table_rows as table_rows
except ImportError:
    try:
        from . import table_rows
    except ImportError:  # app.py of an image model's package
        table_rows = None

DEFAULT_MAX_N = 16
MAX_BODY_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 64 * 1024  # Lambda's 6 MB response limit, with room for headers


# ----------------------------------------------------------------------------------------------- generator
class OnnxGenerator:
    """An exported ganforge generator on onnxruntime: seeds in, float32 samples out (as Sampler.generate).

    `info` is the model_info dict; by default the model's own `ganforge` metadata. `intra_op_threads`
    sets onnxruntime's thread count (None: its default, one per core).
    """

    def __init__(self, model_path: str | Path, info: dict[str, Any] | None = None, *,
                 intra_op_threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.inter_op_num_threads = 1
        if intra_op_threads:
            opts.intra_op_num_threads = int(intra_op_threads)
        self.path = Path(model_path)
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        if info is None:
            meta = self.session.get_modelmeta().custom_metadata_map.get("ganforge")
            if meta is None:
                raise ValueError(f"{self.path} has no ganforge metadata; give info= (the model.json of the export)")
            info = json.loads(meta)
        self.info = info
        self.noise_dim = int(info["latent"]["noise_dim"])
        self.codes = list(info["latent"]["codes"])
        self.conditional = bool(info["conditional"])
        # "w": the graph takes psi as its `truncation` input (stylegan); "z": psi scales the seed's noise;
        # "none": no truncation trick (progan), psi != 1 is refused
        self.truncation_space = core.truncation_space(info)
        self.decoder = None
        if core.is_table(info):  # rows leave the graph encoded: decoded here, in numpy
            if table_rows is None:
                raise ValueError("this table model's package lacks ganforge_table_rows.py and "
                                 "ganforge_table_transforms.py; export it again with `ganforge export --lambda`")
            self.decoder = table_rows.RowDecoder(info["table"]["state"])
        self.encoder, self.preview = None, None
        if "text" in info:  # captions -> the graph's text_emb input: the encoder and tokenizer exported beside it
            if text_onnx is None:
                raise ValueError("this text model's package lacks ganforge_text_onnx.py; export it again with "
                                 "`ganforge export --lambda`")
            self.encoder = text_onnx.OnnxTextEncoder(self.path.with_suffix(".text.onnx"),
                                                     self.path.with_suffix(".tokenizer.json"),
                                                     info["text"]["max_tokens"])
            # no caption asked: the model's preview captions in turn, as Sampler.generate draws them
            self.preview = self.encoder.encode(info["text"]["preview_captions"])

    def text_embeddings(self, n: int, text: str | None = None) -> np.ndarray | None:
        """(n, dim) embeddings for a text model: of `text` for every row, or the preview captions in turn."""
        if self.encoder is None:
            return None
        if text is None:
            return self.preview[np.arange(n) % len(self.preview)]
        try:
            return np.repeat(self.encoder.encode([text]), n, axis=0)
        except ValueError as e:  # a bad caption: the request's fault
            raise core.RequestError(str(e)) from None

    def labels(self, n: int, cls: int | str | Sequence | None = None) -> np.ndarray | None:
        """(n,) int64 classes: cycling 0..K-1 by default, one class for all, or n classes."""
        return core.labels(self.info, n, cls)

    def latents(self, n: int, seed: int, truncation: float | None = None,
                codes: dict[str, float] | None = None) -> np.ndarray:
        """(n, width) float32: the seeded latents of ganforge.latent, with `codes` fixed; `truncation` scales
        the noise of a "z" model (a "w" model's latents stay as drawn: its psi goes to `run`)."""
        return self._with_codes(latent.seeded_latents(seed, n, self.noise_dim, self.codes, self._scale(truncation)),
                                codes)

    def _scale(self, truncation: float | None) -> float:
        """The factor on the seed's noise: psi for a "z" model, 1 for a "w" model; a "none" model refuses psi
        != 1 (a RequestError, a ValueError)."""
        core.check_truncation(self.info, truncation)
        return 1.0 if truncation is None or self.truncation_space != "z" else truncation

    def _with_codes(self, z: np.ndarray, codes: dict[str, float] | None) -> np.ndarray:
        # a request's codes were checked when it was parsed; set_codes itself refuses bad names and values
        return latent.set_codes(z, self.codes, self.noise_dim, codes) if codes else z

    def run(self, z: np.ndarray, y: np.ndarray | None = None, chunk: int = 256,
            truncation: float | None = None, text_emb: np.ndarray | None = None) -> np.ndarray:
        """The graph on latents z (N, width) [and classes y (N,)]: float32 (N, C, H, W) or (N, F). A "w" model
        also gets psi `truncation` (default: its own, model_info's truncation.default) for every row; a "z"
        model ignores it (scale z with `latents`)."""
        psi = None
        if self.truncation_space == "w":
            psi = core.default_truncation(self.info) if truncation is None else float(truncation)
            if not 0 <= psi <= 1:
                raise ValueError(f"truncation must be in [0, 1], got {psi}")
        out = []
        for start in range(0, len(z), chunk):
            feeds = {"z": np.ascontiguousarray(z[start:start + chunk], dtype=np.float32)}
            if self.conditional:
                feeds["y"] = np.ascontiguousarray(y[start:start + chunk], dtype=np.int64)
            if self.encoder is not None:  # a text model: default, the preview captions in turn
                t = self.text_embeddings(len(z)) if text_emb is None else text_emb
                feeds["text_emb"] = np.ascontiguousarray(t[start:start + chunk], dtype=np.float32)
            if psi is not None:
                feeds["truncation"] = np.full(len(feeds["z"]), psi, dtype=np.float32)
            out.append(self.session.run(None, feeds)[0])
        return np.concatenate(out).astype(np.float32, copy=False)

    def generate(self, n: int, seed: int, cls: int | str | Sequence | None = None, truncation: float | None = None,
                 codes: dict[str, float] | None = None, text: str | None = None) -> np.ndarray:
        """n samples of a seed, as Sampler.generate(n, seed, y=cls, codes=codes, truncation=truncation, text=text)."""
        return self.run(self.latents(n, seed, truncation, codes), self.labels(n, cls), truncation=truncation,
                        text_emb=self.text_embeddings(n, text))

    def rows(self, n: int, seed: int) -> dict[str, list]:
        """A table model's n rows of a seed, decoded: {column: values}, as Sampler.iter_tables(n, seed) gives them
        (within the export's float tolerance)."""
        return self.decoder.values(self.run(self.latents(n, seed)))

    def between(self, seed_a: int, seed_b: int, ts: Sequence[float], truncation: float | None = None,
                codes: dict[str, float] | None = None) -> np.ndarray:
        """(len(ts), width) latents from seed a's first latent to seed b's (Sampler.between_seeds), `codes` fixed;
        `truncation` as in `latents`."""
        a = latent.seeded_latents(seed_a, 1, self.noise_dim, self.codes, self._scale(truncation))[0]
        b = latent.seeded_latents(seed_b, 1, self.noise_dim, self.codes, self._scale(truncation))[0]
        return self._with_codes(np.stack([latent.between(a, b, float(t), self.noise_dim) for t in ts]), codes)


# ----------------------------------------------------------------------------------------------- requests
EVENT_SHAPE = ("send it through API Gateway (HTTP API, payload format 2.0), or start from an event in the "
               "package's events/ folder")
KINDS = {dict: "an object", str: "a string", bool: "true or false"}


def _bad_event(what: str) -> core.RequestError:
    return core.RequestError(f"{what}; {EVENT_SHAPE}", 400)


def _field(container: dict, key: str, kind: type, where: str = "") -> Any:
    """container[key] if it is a `kind` (None when absent or null), else a 400 naming the event field."""
    value = container.get(key)
    if value is not None and not isinstance(value, kind):
        raise _bad_event(f"event field {where}{key} must be {KINDS[kind]}, got {type(value).__name__}")
    return value


@core.reads_request
def _request(event: Any) -> tuple[str, str, dict]:
    """(method, path without the stage, parameters) of an API Gateway v2 (or v1) event; 400 for any field
    this reads that is missing or of another type."""
    if not isinstance(event, dict):
        raise _bad_event(f"the event must be a JSON object, got {type(event).__name__}")
    context = _field(event, "requestContext", dict)
    if context is None:
        raise _bad_event("the event has no requestContext")
    http = _field(context, "http", dict, "requestContext.") or {}
    method = _field(http, "method", str, "requestContext.http.") or _field(event, "httpMethod", str)
    if not method:
        raise _bad_event("the event has no requestContext.http.method (nor httpMethod)")
    path = _field(event, "rawPath", str) or _field(event, "path", str)
    if not path:
        raise _bad_event("the event has no rawPath (nor path)")
    stage = _field(context, "stage", str, "requestContext.")
    if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        path = path[len(stage) + 1:] or "/"
    path = path.rstrip("/") or "/"
    _field(event, "headers", dict)  # not read, but an event whose headers are no object is not from API Gateway
    query = _field(event, "queryStringParameters", dict) or {}
    for key in query:
        _field(query, key, str, "queryStringParameters.")
    params = core.from_query(query)
    body, b64 = _field(event, "body", str), _field(event, "isBase64Encoded", bool)
    if body:
        if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
            raise core.too_large(MAX_BODY_BYTES)
        raw = body.encode("utf-8", "surrogatepass")  # a lone surrogate from a \ud800 escape: parse_body reads it
        if b64:
            try:
                raw = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise core.RequestError("the body is marked base64 but does not decode; send a JSON object", 400)
        if len(raw) > MAX_BODY_BYTES:
            raise core.too_large(MAX_BODY_BYTES)
        params.update(core.parse_body(raw))
    return method.upper(), path, params


def _max_n() -> int:
    raw = os.environ.get("GANFORGE_MAX_N", str(DEFAULT_MAX_N))
    if not raw.strip().isdecimal() or int(raw) < 1:
        raise core.RequestError(f"GANFORGE_MAX_N must be a positive integer, got {raw!r}; fix the function's "
                                f"environment", 500)
    return int(raw)


# ----------------------------------------------------------------------------------------------- routes
def _run(gen: OnnxGenerator, z: np.ndarray, y: np.ndarray | None, psi: float, text: str | None = None) -> np.ndarray:
    """The graph on z: psi as its `truncation` input for a "w" model (a "z" model's z is scaled already); a text
    model's caption (None: its preview captions)."""
    kw: dict[str, Any] = {}
    if core.truncation_space(gen.info) == "w":
        kw["truncation"] = psi
    if "text" in gen.info:
        kw["text_emb"] = gen.text_embeddings(len(z), text)
    return gen.run(z, y, **kw)


def _generate(gen: OnnxGenerator, params: dict) -> tuple[int, dict, bytes, bool]:
    if core.is_table(gen.info):  # rows as JSON or CSV
        rows = core.parse_rows(params, gen.info, _max_n())
        body = table_rows.encode_rows(gen.rows(rows.n, rows.seed), gen.decoder.kinds, rows.format, seed=rows.seed)
        return 200, {"content-type": core.MEDIA[rows.format], "x-seed": str(rows.seed)}, body, False
    req = core.parse_generate(params, gen.info, _max_n())
    y = core.labels(gen.info, req.n, req.cls)
    x = _run(gen, gen.latents(req.n, req.seed, req.truncation, req.codes), y, req.truncation, req.text)
    body = core.encode(x, req.format, kind=gen.info["kind"], seed=req.seed, classes=y,
                       sample_rate=gen.info.get("sample_rate", 0))
    return 200, {"content-type": core.MEDIA[req.format], "x-seed": str(req.seed)}, body, req.format != "json"


def _interpolate(gen: OnnxGenerator, params: dict) -> tuple[int, dict, bytes, bool]:
    req = core.parse_interpolate(params, gen.info, _max_n())
    y = core.labels(gen.info, len(req.ts), req.cls)
    x = _run(gen, gen.between(req.seed_a, req.seed_b, req.ts, req.truncation, req.codes), y, req.truncation,
             req.text)
    body = core.encode(x, req.format, kind=gen.info["kind"], seed=req.seed_a, classes=y,
                       sample_rate=gen.info.get("sample_rate", 0))
    return 200, {"content-type": core.MEDIA[req.format]}, body, req.format != "json"


def _json(obj: Any) -> tuple[int, dict, bytes, bool]:
    return 200, {"content-type": "application/json"}, json.dumps(obj).encode(), False


ROUTES = {
    "/health": {"GET": lambda gen, params: _json({"status": "ok"})},
    "/v1/info": {"GET": lambda gen, params: _json({**gen.info, "max_n": _max_n()})},
    "/v1/generate": {"GET": _generate, "POST": _generate},
    "/v1/interpolate": {"GET": _interpolate, "POST": _interpolate},
}


def _methods(routes: dict) -> list[str]:
    """The methods a route answers: its own, and HEAD wherever GET is."""
    return sorted({*routes, "HEAD"} if "GET" in routes else routes)


def _response(status: int, headers: dict, body: bytes, binary: bool) -> dict:
    return {"statusCode": status, "headers": headers, "isBase64Encoded": binary,
            "body": base64.b64encode(body).decode() if binary else body.decode()}


def respond(gen_or_loader: Any, event: dict) -> dict:
    """The API Gateway response to one event; `gen_or_loader` is an OnnxGenerator or a function making one
    (called only for routes that need the model, so /health never loads it)."""
    start, head = time.perf_counter(), False
    try:
        method, path, params = _request(event)
        head = method == "HEAD"
        routes = ROUTES.get(path)
        if routes is None:
            raise core.RequestError(f"no route {path}; routes: {', '.join(ROUTES)}", 404)
        methods = _methods(routes)
        if method not in methods:
            either = f"{', '.join(methods[:-1])} or {methods[-1]}" if len(methods) > 1 else methods[0]
            raise core.RequestError(f"{path} takes {either}, not {method}", 405, {"allow": ", ".join(methods)})
        gen = gen_or_loader() if callable(gen_or_loader) and path != "/health" else gen_or_loader
        status, headers, body, binary = routes["GET" if head else method](gen, params)
        if len(body) * (4 / 3 if binary else 1) > MAX_RESPONSE_BYTES:
            raise core.RequestError(f"the response would be {len(body) / 2**20:.1f} MB, over Lambda's 6 MB limit; "
                                    f"ask for fewer images (n, steps) or use format png")
    except core.RequestError as e:
        status, headers, binary = e.status, {"content-type": "application/json", **e.headers}, False
        body = json.dumps({"detail": e.detail}).encode()
    except Exception as e:  # the model or a broken package: the traceback to CloudWatch, one line to the client
        traceback.print_exc()
        status, headers, binary = 500, {"content-type": "application/json"}, False
        body = json.dumps({"detail": f"internal error: {core.one_line(e)}"}).encode()
    headers["server-timing"] = f"total;dur={(time.perf_counter() - start) * 1000:.1f}"
    return _response(status, headers, b"" if head else body, binary and not head)


_CACHE: dict[str, OnnxGenerator] = {}


def generator() -> OnnxGenerator:
    """The container's generator, loaded on first use: $GANFORGE_MODEL or model.onnx beside this file,
    described by the model.json beside it (else the model's own metadata)."""
    path = Path(os.environ.get("GANFORGE_MODEL") or Path(__file__).with_name("model.onnx"))
    if str(path) not in _CACHE:
        info_path = path.with_name("model.json")
        info = json.loads(info_path.read_text()) if info_path.exists() else None
        threads = os.environ.get("GANFORGE_THREADS", "").strip()
        _CACHE[str(path)] = OnnxGenerator(path, info, intra_op_threads=int(threads) if threads.isdecimal() else None)
    return _CACHE[str(path)]


def handler(event: dict, context: Any = None) -> dict:
    """AWS Lambda entry point (`Handler: app.handler`)."""
    return respond(generator, event)
