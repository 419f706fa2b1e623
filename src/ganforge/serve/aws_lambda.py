"""AWS Lambda handler: a ganforge generator behind API Gateway (HTTP API, payload format 2.0), no torch.

    GET       /health           {"status": "ok"}
    GET       /v1/info          model_info + {"max_n"}
    GET|POST  /v1/generate      n, seed, class, truncation, codes, format (png | npy | json)
    GET|POST  /v1/interpolate   seed_a, seed_b, t | steps, class, truncation, codes, format

The same API as `ganforge serve` (serve/http.py): POST takes a JSON object, GET the same parameters as a
query string (codes as JSON or "c0:3,c1:0.5"). Bad JSON -> 400, a body over 64 KB -> 413, invalid values
-> 422 {"detail": "what to change"}, unknown path -> 404, wrong method -> 405.

This file is copied verbatim into the Lambda package as app.py (`Handler: app.handler`), with
ganforge/latent.py as ganforge_latent.py, so it imports only the standard library, numpy, onnxruntime and
Pillow. The model (model.onnx beside this file, or $GANFORGE_MODEL) loads once per container.
Environment: GANFORGE_MAX_N (images per request, default 16), GANFORGE_THREADS (onnxruntime intra-op
threads, default: onnxruntime's choice).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
import secrets
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

try:  # inside the Lambda package
    import ganforge_latent as latent
except ImportError:  # inside the ganforge package
    from .. import latent

DEFAULT_MAX_N = 16
MAX_BODY_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 64 * 1024  # Lambda's 6 MB response limit, with room for headers
GRID_COLUMNS = 8  # as serve/http.py: a grid is at most 8 images wide
MEDIA = {"png": "image/png", "npy": "application/octet-stream", "json": "application/json"}
COMMON = {"class", "truncation", "codes", "format"}
PARAMS = {"generate": COMMON | {"n", "seed"}, "interpolate": COMMON | {"seed_a", "seed_b", "t", "steps"}}


# ----------------------------------------------------------------------------------------------- generator
def to_uint8(x: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] -> uint8, the mapping of ganforge.image.to_uint8 (round half to even)."""
    return np.round((np.clip(x.astype(np.float32), -1, 1) + 1) * np.float32(127.5)).astype(np.uint8)


def make_grid(images: np.ndarray, nrow: int, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """uint8 (N, C, H, W) -> one uint8 (C, H', W') grid with `nrow` images a row (ganforge.image.make_grid)."""
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    grid = np.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = images[i]
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (C, H, W) with C = 1, 3 or 4 -> PNG file bytes."""
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if image.ndim != 3 or image.shape[0] not in modes:
        raise ValueError(f"PNG needs (C, H, W) with C in 1, 3, 4; got shape {image.shape}")
    hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(hwc[:, :, 0] if image.shape[0] == 1 else hwc, mode=modes[image.shape[0]]).save(buf, "PNG")
    return buf.getvalue()


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
        self.n_classes = int(info.get("n_classes") or 0)
        self.class_names = list(info.get("class_names") or [])

    def class_index(self, value: int | str) -> int:
        """A class index from an index or a name (names first, case-insensitive; then digit strings)."""
        if not self.conditional:
            raise ValueError(f"this {self.info['family']} model has no classes; leave out 'class'")
        if isinstance(value, str):
            names = {name.lower(): i for i, name in enumerate(self.class_names)}
            if value.strip().lower() in names:
                return names[value.strip().lower()]
            if not value.strip().isdigit():
                raise ValueError(f"unknown class '{value}'; classes: {', '.join(self.class_names)}")
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < self.n_classes:
            raise ValueError(f"class {value} does not exist; use 0..{self.n_classes - 1} or a name: "
                             f"{', '.join(self.class_names)}")
        return int(value)

    def labels(self, n: int, cls: int | str | Sequence | None = None) -> np.ndarray | None:
        """(n,) int64 classes: cycling 0..K-1 by default, one class for all, or n classes."""
        if not self.conditional:
            if cls is not None:
                raise ValueError(f"this {self.info['family']} model has no classes; leave out 'class'")
            return None
        if cls is None:
            return np.arange(n, dtype=np.int64) % self.n_classes
        if isinstance(cls, (str, int, np.integer)):
            return np.full(n, self.class_index(cls), dtype=np.int64)
        if len(cls) != n:
            raise ValueError(f"need one class per sample: {n} samples but {len(cls)} classes")
        return np.array([self.class_index(c) for c in cls], dtype=np.int64)

    def latents(self, n: int, seed: int, truncation: float = 1.0, codes: dict[str, float] | None = None) -> np.ndarray:
        """(n, width) float32: the seeded latents of ganforge.latent, with `codes` fixed."""
        z = latent.seeded_latents(seed, n, self.noise_dim, self.codes, truncation)
        return self._with_codes(z, codes)

    def _with_codes(self, z: np.ndarray, codes: dict[str, float] | None) -> np.ndarray:
        if codes and not self.codes:
            raise ValueError(f"this {self.info['family']} model has no latent codes; leave out 'codes'")
        return latent.set_codes(z, self.codes, self.noise_dim, codes) if codes else z

    def run(self, z: np.ndarray, y: np.ndarray | None = None, chunk: int = 256) -> np.ndarray:
        """The graph on latents z (N, width) [and classes y (N,)]: float32 (N, C, H, W) or (N, F)."""
        out = []
        for start in range(0, len(z), chunk):
            feeds = {"z": np.ascontiguousarray(z[start:start + chunk], dtype=np.float32)}
            if self.conditional:
                feeds["y"] = np.ascontiguousarray(y[start:start + chunk], dtype=np.int64)
            out.append(self.session.run(None, feeds)[0])
        return np.concatenate(out).astype(np.float32, copy=False)

    def generate(self, n: int, seed: int, cls: int | str | Sequence | None = None, truncation: float = 1.0,
                 codes: dict[str, float] | None = None) -> np.ndarray:
        """n samples of a seed, as Sampler.generate(n, seed, y=cls, codes=codes, truncation=truncation)."""
        return self.run(self.latents(n, seed, truncation, codes), self.labels(n, cls))

    def between(self, seed_a: int, seed_b: int, ts: Sequence[float], truncation: float = 1.0) -> np.ndarray:
        """(len(ts), width) latents from seed a's first latent to seed b's (Sampler.between_seeds)."""
        a = latent.seeded_latents(seed_a, 1, self.noise_dim, self.codes, truncation)[0]
        b = latent.seeded_latents(seed_b, 1, self.noise_dim, self.codes, truncation)[0]
        return np.stack([latent.between(a, b, float(t), self.noise_dim) for t in ts])

    def interpolate(self, seed_a: int, seed_b: int, t: float | None = None, steps: int | None = None,
                    cls: int | str | Sequence | None = None, truncation: float = 1.0,
                    codes: dict[str, float] | None = None) -> np.ndarray:
        """One sample a fraction t of the way from seed_a to seed_b, or `steps` samples (default 8)."""
        if t is not None and steps is not None:
            raise ValueError("give either t (one image) or steps (a strip), not both")
        ts = [t] if t is not None else list(np.linspace(0, 1, 8 if steps is None else steps))
        z = self._with_codes(self.between(seed_a, seed_b, ts, truncation), codes)
        return self.run(z, self.labels(len(ts), cls))


# ----------------------------------------------------------------------------------------------- requests
class HTTPError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def _int(params: dict, name: str, lo: int, hi: int | None, default: Any = None) -> Any:
    value = params.get(name)
    if value is None:
        return default
    span = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise HTTPError(422, f"{name} must be an integer {span}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise HTTPError(422, f"{name} must be {span}, got {value}")
    return value


def _number(value: Any, name: str, span: str) -> float:
    try:
        number = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise HTTPError(422, f"{name} must be a number{span}, got {value!r}")
    return number


def _float(params: dict, name: str, lo: float, hi: float, lo_open: bool, default: Any = None) -> Any:
    value = params.get(name)
    if value is None:
        return default
    span = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    number = _number(value, name, span)
    if number < lo or number > hi or (lo_open and number == lo):
        raise HTTPError(422, f"{name} must be{span}, got {number:g}")
    return number


def _codes(value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if isinstance(value, str):  # a query string: JSON or "c0:3,c1:0.5"
        try:
            value = json.loads(value)
        except ValueError:
            pairs = [part.split(":", 1) for part in value.split(",") if part.strip()]
            if any(len(p) != 2 for p in pairs):
                raise HTTPError(422, f"codes must look like {{\"c0\": 3, \"c1\": 0.5}} or c0:3,c1:0.5, got {value!r}")
            value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict):
        raise HTTPError(422, f"codes must be an object of name: number, e.g. {{\"c0\": 3}}, got {value!r}")
    return {str(k): _number(v, f"code {k}", "") for k, v in value.items()}


def _request(event: dict) -> tuple[str, str, dict]:
    """(method, path without the stage, parameters) of an API Gateway v2 (or v1) event."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = (http.get("method") or event.get("httpMethod") or "GET").upper()
    path = event.get("rawPath") or event.get("path") or "/"
    stage = (event.get("requestContext") or {}).get("stage")
    if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        path = path[len(stage) + 1:] or "/"
    path = path.rstrip("/") or "/"
    params: dict[str, Any] = dict(event.get("queryStringParameters") or {})
    body = event.get("body")
    if body:
        if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
            raise HTTPError(413, f"request body over {MAX_BODY_BYTES} bytes; ask for fewer images per request")
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise HTTPError(400, "the body is marked base64 but does not decode; send a JSON object")
        raw = body.encode() if isinstance(body, str) else body
        if len(raw) > MAX_BODY_BYTES:
            raise HTTPError(413, f"request body over {MAX_BODY_BYTES} bytes; ask for fewer images per request")
        try:
            data = json.loads(raw)
        except ValueError:
            raise HTTPError(400, "the body is not valid JSON; send a JSON object such as {\"n\": 4, \"seed\": 0}")
        if not isinstance(data, dict):
            raise HTTPError(400, f"the body must be a JSON object such as {{\"n\": 4, \"seed\": 0}}, "
                                 f"got a {type(data).__name__}")
        params.update(data)
    return method, path, params


def _max_n() -> int:
    raw = os.environ.get("GANFORGE_MAX_N", str(DEFAULT_MAX_N))
    if not raw.strip().isdigit() or int(raw) < 1:
        raise HTTPError(500, f"GANFORGE_MAX_N must be a positive integer, got {raw!r}; fix the function's environment")
    return int(raw)


# ----------------------------------------------------------------------------------------------- routes
def _check(gen: OnnxGenerator, params: dict, verb: str) -> tuple[dict, str]:
    unknown = sorted(set(params) - PARAMS[verb])
    if unknown:
        raise HTTPError(422, f"unknown parameter {', '.join(map(repr, unknown))}; {verb} takes "
                             f"{', '.join(sorted(PARAMS[verb]))}")
    fmt = params.get("format", "png")
    if not isinstance(fmt, str) or fmt not in MEDIA:
        raise HTTPError(422, f"format must be one of png, npy, json; got {fmt!r}")
    if fmt == "png" and gen.info["kind"] != "image":
        raise HTTPError(422, "this model makes points, not images: use format json or npy")
    common = {"truncation": _float(params, "truncation", 0.0, 1.0, True, 1.0), "codes": _codes(params.get("codes"))}
    if params.get("class") is not None:
        try:
            common["cls"] = gen.class_index(params["class"])
        except ValueError as e:
            raise HTTPError(422, str(e))
    return common, fmt


def _encode(gen: OnnxGenerator, x: np.ndarray, fmt: str, seed: int, classes: list[int] | None) -> tuple[bytes, bool]:
    """(body bytes, is binary) as serve/http.py encodes them."""
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, x.astype(np.float32))
        return buf.getvalue(), True
    if fmt == "png":
        images = to_uint8(x)
        return png_bytes(images[0] if len(x) == 1 else make_grid(images, nrow=min(len(x), GRID_COLUMNS))), True
    payload = {"seed": seed, "n": len(x), "shape": list(x.shape[1:]), "classes": classes}
    if gen.info["kind"] == "image":
        payload["images"] = [base64.b64encode(png_bytes(im)).decode() for im in to_uint8(x)]
    else:
        payload["points"] = x.tolist()
    return json.dumps(payload).encode(), False


def _generate(gen: OnnxGenerator, params: dict) -> tuple[int, dict, bytes, bool]:
    common, fmt = _check(gen, params, "generate")
    max_n = _max_n()
    n = _int(params, "n", 1, None, 1)
    if n > max_n:
        raise HTTPError(422, f"n = {n} is over this server's maximum of {max_n}; ask for fewer images per request")
    seed = _int(params, "seed", 0, latent.MAX_SEED)
    seed = secrets.randbelow(latent.MAX_SEED + 1) if seed is None else seed
    try:
        y = gen.labels(n, common.get("cls"))
        x = gen.run(gen.latents(n, seed, common["truncation"], common["codes"]), y)
    except ValueError as e:
        raise HTTPError(422, str(e))
    body, binary = _encode(gen, x, fmt, seed, None if y is None else [int(c) for c in y])
    return 200, {"content-type": MEDIA[fmt], "x-seed": str(seed)}, body, binary


def _interpolate(gen: OnnxGenerator, params: dict) -> tuple[int, dict, bytes, bool]:
    common, fmt = _check(gen, params, "interpolate")
    for name in ("seed_a", "seed_b"):
        if params.get(name) is None:
            raise HTTPError(422, f"{name} is required: give two seeds, e.g. {{\"seed_a\": 1, \"seed_b\": 2, \"steps\": 8}}")
    seed_a, seed_b = (_int(params, k, 0, latent.MAX_SEED) for k in ("seed_a", "seed_b"))
    t, steps = _float(params, "t", 0.0, 1.0, False), _int(params, "steps", 2, None)
    if t is not None and steps is not None:
        raise HTTPError(422, "give either t (one image) or steps (a strip), not both")
    count = 1 if t is not None else steps or 8
    if count > _max_n():
        raise HTTPError(422, f"n = {count} is over this server's maximum of {_max_n()}; ask for fewer images per request")
    try:
        cls = common.get("cls")
        y = gen.labels(count, 0 if cls is None and gen.info["conditional"] else cls)  # one class along a strip
        x = gen.interpolate(seed_a, seed_b, t=t, steps=steps, cls=y, truncation=common["truncation"],
                            codes=common["codes"])
    except ValueError as e:
        raise HTTPError(422, str(e))
    body, binary = _encode(gen, x, fmt, seed_a, None if y is None else [int(c) for c in y])
    return 200, {"content-type": MEDIA[fmt]}, body, binary


def _json(obj: Any) -> tuple[int, dict, bytes, bool]:
    return 200, {"content-type": "application/json"}, json.dumps(obj).encode(), False


ROUTES = {
    "/health": {"GET": lambda gen, params: _json({"status": "ok"})},
    "/v1/info": {"GET": lambda gen, params: _json({**gen.info, "max_n": _max_n()})},
    "/v1/generate": {"GET": _generate, "POST": _generate},
    "/v1/interpolate": {"GET": _interpolate, "POST": _interpolate},
}


def _response(status: int, headers: dict, body: bytes, binary: bool) -> dict:
    return {"statusCode": status, "headers": headers, "isBase64Encoded": binary,
            "body": base64.b64encode(body).decode() if binary else body.decode()}


def respond(gen_or_loader: Any, event: dict) -> dict:
    """The API Gateway response to one event; `gen_or_loader` is an OnnxGenerator or a function making one
    (called only for routes that need the model, so /health never loads it)."""
    start = time.perf_counter()
    try:
        method, path, params = _request(event)
        routes = ROUTES.get(path)
        if routes is None:
            raise HTTPError(404, f"no route {path}; routes: {', '.join(ROUTES)}")
        if method not in routes:
            raise HTTPError(405, f"{path} takes {' or '.join(routes)}, not {method}", {"allow": ", ".join(routes)})
        gen = gen_or_loader() if callable(gen_or_loader) and path != "/health" else gen_or_loader
        status, headers, body, binary = routes[method](gen, params)
        if len(body) * (4 / 3 if binary else 1) > MAX_RESPONSE_BYTES:
            raise HTTPError(422, f"the response would be {len(body) / 2**20:.1f} MB, over Lambda's 6 MB limit; "
                                 f"ask for fewer images (n, steps) or use format png")
    except HTTPError as e:
        status, headers, binary = e.status, {"content-type": "application/json", **e.headers}, False
        body = json.dumps({"detail": e.detail}).encode()
    except Exception as e:  # a bug or a broken package: log it for CloudWatch, answer 500
        traceback.print_exc()
        status, headers, binary = 500, {"content-type": "application/json"}, False
        body = json.dumps({"detail": f"internal error: {type(e).__name__}: {e}"}).encode()
    headers["server-timing"] = f"total;dur={(time.perf_counter() - start) * 1000:.1f}"
    return _response(status, headers, body, binary)


_CACHE: dict[str, OnnxGenerator] = {}


def generator() -> OnnxGenerator:
    """The container's generator, loaded on first use: $GANFORGE_MODEL or model.onnx beside this file,
    described by the model.json beside it (else the model's own metadata)."""
    path = Path(os.environ.get("GANFORGE_MODEL") or Path(__file__).with_name("model.onnx"))
    if str(path) not in _CACHE:
        info_path = path.with_name("model.json")
        info = json.loads(info_path.read_text()) if info_path.exists() else None
        threads = os.environ.get("GANFORGE_THREADS", "").strip()
        _CACHE[str(path)] = OnnxGenerator(path, info, intra_op_threads=int(threads) if threads.isdigit() else None)
    return _CACHE[str(path)]


def handler(event: dict, context: Any = None) -> dict:
    """AWS Lambda entry point (`Handler: app.handler`)."""
    return respond(generator, event)
