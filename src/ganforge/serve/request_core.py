"""The request rules that `ganforge serve` (serve/http.py) and the Lambda handler (serve/aws_lambda.py) share:
parameter checks, class lookup, output encodings and error messages, written once so both answer a request
with the same samples, the same bytes and the same error.

It imports the standard library and numpy only (Pillow when it writes a PNG), never torch or FastAPI: the
Lambda package ships this file as ganforge_request_core.py, beside ganforge/latent.py as ganforge_latent.py.
"""

from __future__ import annotations

import base64
import io
import json
import math
import secrets
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

try:  # inside the Lambda package
    import ganforge_latent as latent
except ImportError:  # inside the ganforge package
    from .. import latent

MAX_SEED = latent.MAX_SEED
MEDIA = {"png": "image/png", "npy": "application/octet-stream", "json": "application/json"}
GRID_COLUMNS = 8  # a PNG grid is at most 8 images wide
DEFAULT_STEPS = 8  # images in an interpolation strip when neither t nor steps is given
# name -> (lowest, highest or None, lowest excluded): the range of each number parameter, stated once
BOUNDS = {"n": (1, None, False), "steps": (2, None, False), "seed": (0, MAX_SEED, False),
          "seed_a": (0, MAX_SEED, False), "seed_b": (0, MAX_SEED, False),
          "truncation": (0.0, 1.0, True), "t": (0.0, 1.0, False)}
COMMON = {"class", "truncation", "codes", "format"}
PARAMS = {"generate": COMMON | {"n", "seed"}, "interpolate": COMMON | {"seed_a", "seed_b", "t", "steps"}}
EXAMPLE = '{"n": 4, "seed": 0}'
BAD_JSON = f"the body is not valid JSON; send a JSON object such as {EXAMPLE}"


class RequestError(ValueError):
    """A request that cannot be served: the HTTP `status` (422 unless said) and a `detail` naming the fix."""

    def __init__(self, detail: str, status: int = 422, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail, self.status, self.headers = detail, status, headers or {}


def too_large(limit: int) -> RequestError:
    """413 for a request body over `limit` bytes."""
    return RequestError(f"request body over {limit} bytes; ask for fewer images per request", 413)


def not_an_object(value: Any) -> RequestError:
    """400 for a JSON body that is not an object (a list, a number, ...)."""
    return RequestError(f"the body must be a JSON object such as {EXAMPLE}, got a {type(value).__name__}", 400)


def parse_body(body: bytes | str) -> dict[str, Any]:
    """The parameters a JSON body holds; 400 unless it is a JSON object."""
    try:
        data = json.loads(body)
    except ValueError:
        raise RequestError(BAD_JSON, 400) from None
    if not isinstance(data, dict):
        raise not_an_object(data)
    return data


# ----------------------------------------------------------------------------------------------- values
def _int(params: dict, name: str, default: Any = None) -> Any:
    value = params.get(name)
    if value is None:
        return default
    lo, hi, _ = BOUNDS[name]
    span = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be an integer {span}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise RequestError(f"{name} must be {span}, got {value}")
    return value


def _number(value: Any, name: str, span: str) -> float:
    try:
        number = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise RequestError(f"{name} must be a number{span}, got {value!r}")
    return number


def _float(params: dict, name: str, default: Any = None) -> Any:
    value = params.get(name)
    if value is None:
        return default
    lo, hi, lo_open = BOUNDS[name]
    span = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    number = _number(value, name, span)
    if number < lo or number > hi or (lo_open and number == lo):
        raise RequestError(f"{name} must be{span}, got {number:g}")
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
                raise RequestError(f"codes must look like {{\"c0\": 3, \"c1\": 0.5}} or c0:3,c1:0.5, got {value!r}")
            value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict):
        raise RequestError(f"codes must be an object of name: number, e.g. {{\"c0\": 3}}, got {value!r}")
    return {str(k): _number(v, f"code {k}", "") for k, v in value.items()}


def _lacks(info: dict, what: str, param: str) -> RequestError:
    return RequestError(f"this {info['family']} model has no {what}; leave out '{param}'")


# ----------------------------------------------------------------------------------------------- the model
def class_index(info: dict, value: Any) -> int:
    """The class index of an index or a name (names first, case-insensitive; then digit strings).

    `info` is the model_info dict of the generator (family, conditional, n_classes, class_names)."""
    if not info["conditional"]:
        raise _lacks(info, "classes", "class")
    names = list(info.get("class_names") or [])
    if isinstance(value, str):
        by_name = {name.lower(): i for i, name in enumerate(names)}
        if value.strip().lower() in by_name:
            return by_name[value.strip().lower()]
        if not value.strip().isdigit():
            raise RequestError(f"unknown class '{value}'; classes: {', '.join(names)}")
        value = int(value)
    n_classes = int(info.get("n_classes") or 0)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n_classes:
        raise RequestError(f"class {value} does not exist; use 0..{n_classes - 1} or a name: {', '.join(names)}")
    return int(value)


def labels(info: dict, n: int, cls: int | str | Sequence | None = None) -> np.ndarray | None:
    """(n,) int64 classes: cycling 0..K-1 by default (as Sampler.generate), one class for all, or n classes;
    None for a model without classes."""
    if not info["conditional"]:
        if cls is not None:
            raise _lacks(info, "classes", "class")
        return None
    if cls is None:
        return np.arange(n, dtype=np.int64) % int(info["n_classes"])
    if isinstance(cls, (str, int, np.integer)):
        return np.full(n, class_index(info, cls), dtype=np.int64)
    if len(cls) != n:
        raise RequestError(f"need one class per sample: {n} samples but {len(cls)} classes")
    return np.array([class_index(info, c) for c in cls], dtype=np.int64)


def check_codes(info: dict, codes: dict[str, float] | None) -> dict[str, float] | None:
    """`codes` ({name: category index or value}) when the model has each of them, else a 422 naming the fix."""
    if not codes:
        return None
    layout, noise_dim = info["latent"]["codes"], int(info["latent"]["noise_dim"])
    if not layout:
        raise _lacks(info, "latent codes", "codes")
    try:  # ganforge.latent checks names and values as it sets them: set them on one row
        latent.set_codes(latent.seeded_latents(0, 1, noise_dim, layout), layout, noise_dim, codes)
    except ValueError as e:
        raise RequestError(str(e)) from None
    return codes


def interpolation_ts(t: float | None = None, steps: int | None = None) -> list[float]:
    """The fractions from seed a to seed b: [t], or `steps` evenly spaced (default DEFAULT_STEPS)."""
    if t is not None and steps is not None:
        raise RequestError("give either t (one image) or steps (a strip), not both")
    return [t] if t is not None else [float(v) for v in np.linspace(0, 1, steps or DEFAULT_STEPS)]


# ----------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Common:
    """What every sampling request takes, checked against the model."""

    format: str  # png | npy | json
    truncation: float
    codes: dict[str, float] | None
    cls: int | None  # None: cycle through the classes (or a model without classes)


@dataclass(frozen=True)
class GenerateArgs(Common):
    """A checked /v1/generate request."""

    n: int
    seed: int  # drawn at random when the request left it out


@dataclass(frozen=True)
class InterpolateArgs(Common):
    """A checked /v1/interpolate request; a conditional model keeps one class along the strip (default 0)."""

    seed_a: int
    seed_b: int
    ts: list[float]


def _common(params: dict, info: dict, verb: str) -> dict[str, Any]:
    unknown = sorted(set(params) - PARAMS[verb])
    if unknown:
        raise RequestError(f"unknown parameter {', '.join(map(repr, unknown))}; {verb} takes "
                           f"{', '.join(sorted(PARAMS[verb]))}")
    fmt = params.get("format", "png")
    if not isinstance(fmt, str) or fmt not in MEDIA:
        raise RequestError(f"format must be one of png, npy, json; got {fmt!r}")
    if fmt == "png" and info["kind"] != "image":
        raise RequestError("this model makes points, not images: use format json or npy")
    truncation = _float(params, "truncation", 1.0)
    codes = check_codes(info, _codes(params.get("codes")))
    cls = None if params.get("class") is None else class_index(info, params["class"])
    return {"format": fmt, "truncation": truncation, "codes": codes, "cls": cls}


def _at_most(n: int, max_n: int) -> None:
    if n > max_n:
        raise RequestError(f"n = {n} is over this server's maximum of {max_n}; ask for fewer images per request")


def parse_generate(params: dict, info: dict, max_n: int) -> GenerateArgs:
    """A /v1/generate request from its parameters (a JSON object or a query string) for the model `info`."""
    common = _common(params, info, "generate")
    n = _int(params, "n", 1)
    _at_most(n, max_n)
    seed = _int(params, "seed")
    return GenerateArgs(n=n, seed=secrets.randbelow(MAX_SEED + 1) if seed is None else seed, **common)


def parse_interpolate(params: dict, info: dict, max_n: int) -> InterpolateArgs:
    """A /v1/interpolate request from its parameters (a JSON object or a query string) for the model `info`."""
    common = _common(params, info, "interpolate")
    for name in ("seed_a", "seed_b"):
        if params.get(name) is None:
            raise RequestError(f"{name} is required: give two seeds, e.g. "
                               f"{{\"seed_a\": 1, \"seed_b\": 2, \"steps\": 8}}")
    seed_a, seed_b = _int(params, "seed_a"), _int(params, "seed_b")
    ts = interpolation_ts(_float(params, "t"), _int(params, "steps"))
    _at_most(len(ts), max_n)
    if common["cls"] is None and info["conditional"]:
        common["cls"] = 0  # one class along the strip: the first unless asked
    return InterpolateArgs(seed_a=seed_a, seed_b=seed_b, ts=ts, **common)


# ----------------------------------------------------------------------------------------------- encodings
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
    from PIL import Image  # only here, so that importing this module needs numpy alone

    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if image.ndim != 3 or image.shape[0] not in modes:
        raise ValueError(f"PNG needs (C, H, W) with C in 1, 3, 4; got shape {image.shape}")
    hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
    buf = io.BytesIO()
    Image.fromarray(hwc[:, :, 0] if image.shape[0] == 1 else hwc, mode=modes[image.shape[0]]).save(buf, "PNG")
    return buf.getvalue()


def encode(x: np.ndarray, fmt: str, *, kind: str, seed: int, classes: np.ndarray | None) -> bytes:
    """The response body (media type MEDIA[fmt]) of samples x: images (N, C, H, W) in [-1, 1] or points (N, F).

    npy: float32 x; png: one image, or a grid GRID_COLUMNS wide; json: {seed, n, shape, classes, images}
    with a base64 PNG per image, or {..., points} for a points model (`kind` != "image")."""
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, x.astype(np.float32))
        return buf.getvalue()
    if fmt == "png":
        images = to_uint8(x)
        return png_bytes(images[0] if len(x) == 1 else make_grid(images, nrow=min(len(x), GRID_COLUMNS)))
    payload = {"seed": seed, "n": len(x), "shape": list(x.shape[1:]),
               "classes": None if classes is None else [int(c) for c in classes]}
    if kind == "image":
        payload["images"] = [base64.b64encode(png_bytes(im)).decode() for im in to_uint8(x)]
    else:
        payload["points"] = x.tolist()
    return json.dumps(payload).encode()
