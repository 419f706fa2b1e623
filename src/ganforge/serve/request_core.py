"""The request rules that `ganforge serve` (serve/http.py) and the Lambda handler (serve/aws_lambda.py) share:
parameter checks, class lookup, output encodings and error messages, written once so both answer a request
with the same samples, the same bytes and the same error.

Types are strict, as JSON has them: an integer field takes an int, a number field an int or a float,
never a bool or a string ("2", 2.0 and true are refused for n); query strings (the Lambda's GET) become
those JSON values through `from_query` first. Every size a request asks for (n, steps, the default strip)
is bounded by the server's max_n before anything is built, and reading a request never ends in a 500: any
unexpected exception while parsing is a 400 naming it.

A table model (model_info kind "table") takes n, seed and format (json or csv) on /v1/generate (`parse_rows`);
the image options and /v1/interpolate answer 422 naming what it takes. serve/table_rows.py decodes and writes
the rows.

It imports the standard library and numpy only (Pillow when it writes a PNG), never torch or FastAPI: the
Lambda package ships this file as ganforge_request_core.py, beside ganforge/latent.py as ganforge_latent.py.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import re
import reprlib
import secrets
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

try:  # inside the Lambda package
    import ganforge_latent as latent
except ImportError:  # inside the ganforge package
    from .. import latent

MAX_SEED = latent.MAX_SEED
MEDIA = {"png": "image/png", "npy": "application/octet-stream", "json": "application/json", "csv": "text/csv",
         "wav": "audio/wav"}
SAMPLE_FORMATS = ("png", "npy", "json", "wav")  # images and points; wav: audio models only
AUDIO_GAP = 0.25  # seconds of silence between the clips of a several-clip WAV
ROW_FORMATS = ("json", "csv")  # table models: decoded rows (serve/table_rows.py writes them)
GRID_COLUMNS = 8  # a PNG grid is at most 8 images wide
DEFAULT_STEPS = 8  # images in an interpolation strip when neither t nor steps is given
# name -> (lowest, highest or None, lowest excluded): the range of each number parameter, stated once
BOUNDS = {"n": (1, None, False), "steps": (2, None, False), "seed": (0, MAX_SEED, False),
          "seed_a": (0, MAX_SEED, False), "seed_b": (0, MAX_SEED, False),
          "truncation": (0.0, 1.0, True), "t": (0.0, 1.0, False)}
COMMON = {"class", "truncation", "codes", "format", "text"}
PARAMS = {"generate": COMMON | {"n", "seed"}, "interpolate": COMMON | {"seed_a", "seed_b", "t", "steps"},
          "rows": {"n", "seed", "format"}}  # rows: /v1/generate of a table model
EXAMPLE = '{"n": 4, "seed": 0}'
BAD_JSON = f"the body is not valid JSON; send a JSON object such as {EXAMPLE}"


class RequestError(ValueError):
    """A request that cannot be served: the HTTP `status` (422 unless said) and a `detail` naming the fix."""

    def __init__(self, detail: str, status: int = 422, headers: dict[str, str] | None = None) -> None:
        detail = detail.encode("utf-8", "backslashreplace").decode()  # a lone surrogate echoed from JSON: \ud800
        super().__init__(detail)
        self.detail, self.status, self.headers = detail, status, headers or {}


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong, _SHOWN.maxlevel = 60, 60, 40, 3


def shown(value: Any) -> str:
    """repr(value) cut to a few dozen characters and three levels: a request value echoed in a message."""
    return _SHOWN.repr(value)


def one_line(exc: BaseException) -> str:
    """'Type: first line of its message' (at most 200 characters): an error for a response, never a traceback."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def reads_request(parse: Callable) -> Callable:
    """`parse`, with any exception but a RequestError turned into a 400 naming it (its traceback goes to
    stderr, the server's log): reading a request never ends in a 500."""

    @functools.wraps(parse)
    def guarded(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except RequestError:
            raise
        except Exception as e:
            traceback.print_exc()
            raise RequestError(f"could not read this request ({one_line(e)}); send a JSON object such as "
                               f"{EXAMPLE}", 400) from e

    return guarded


def too_large(limit: int) -> RequestError:
    """413 for a request body over `limit` bytes."""
    return RequestError(f"request body over {limit} bytes; ask for fewer images per request", 413)


def not_an_object(value: Any, status: int = 400) -> RequestError:
    """400 (or `status`) for a JSON body that is not an object (a list, a number, ...)."""
    return RequestError(f"the body must be a JSON object such as {EXAMPLE}, got a {type(value).__name__}", status)


@reads_request
def parse_body(body: bytes | str, not_object_status: int = 400) -> dict[str, Any]:
    """The parameters a JSON body holds; 400 unless it is a JSON object (`not_object_status` for a list, ...)."""
    try:
        data = json.loads(body)
    except RecursionError:  # 30,000 nested [ overflow the parser's stack
        raise RequestError(f"the body nests arrays or objects too deeply to read; send a flat JSON object such "
                           f"as {EXAMPLE}", 400) from None
    except ValueError:
        raise RequestError(BAD_JSON, 400) from None
    if not isinstance(data, dict):
        raise not_an_object(data, not_object_status)
    return data


@reads_request
def from_query(query: dict[str, str]) -> dict[str, Any]:
    """The parameters of a query string as the JSON values they spell: the number fields as JSON numbers
    ("4" -> 4, "0.5" -> 0.5, "2.0" -> 2.0), codes from JSON or "c0:3,c1:0.5". A value that is no JSON number
    stays a string, for the checks to refuse."""
    params = {name: _json_number(value) if name in BOUNDS else value for name, value in query.items()}
    if isinstance(params.get("codes"), str):
        params["codes"] = _query_codes(params["codes"])
    return params


_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _json_number(text: str) -> Any:
    """The JSON number (or boolean) `text` spells, else a number as query strings also write them ("007", "+2",
    ".5"); anything else stays the string ("nan", "[1]"), for the checks to refuse."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        stripped = text.strip()
        if _INT.fullmatch(stripped):
            return int(stripped)
        return float(stripped) if _DECIMAL.fullmatch(stripped) else text
    return value if isinstance(value, (int, float)) else text


def _query_codes(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pairs = [part.split(":", 1) for part in text.split(",") if part.strip()]
        if any(len(p) != 2 for p in pairs):
            raise RequestError(f"codes must look like {{\"c0\": 3, \"c1\": 0.5}} or c0:3,c1:0.5, got {shown(text)}")
        return {k.strip(): _json_number(v.strip()) for k, v in pairs}


# ----------------------------------------------------------------------------------------------- values
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(params: dict, name: str, default: int | None = None, most: int | None = None) -> int | None:
    """params[name] (else `default`) as an int in BOUNDS[name] and at most `most` (the server's max_n)."""
    value = params.get(name)
    value = default if value is None else value
    if value is None:
        return None
    lo, hi, _ = BOUNDS[name]
    span = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
    if not _is_int(value):
        raise RequestError(f"{name} must be an integer {span}, got {shown(value)}")
    if value < lo or (hi is not None and value > hi):
        raise RequestError(f"{name} must be {span}, got {shown(value)}")
    if most is not None and value > most:
        raise RequestError(f"{name} = {shown(value)} is over this server's maximum of {most}; ask for fewer "
                           f"images per request")
    return value


def _number(value: Any, name: str, span: str) -> float:
    """A finite int or float (never a bool or a string) as a float."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int past the float range
            number = math.inf
        if math.isfinite(number):
            return number
    raise RequestError(f"{name} must be a number{span}, got {shown(value)}")


def _float(params: dict, name: str, default: float | None = None) -> float | None:
    value = params.get(name)
    if value is None:
        return default
    lo, hi, lo_open = BOUNDS[name]
    span = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    number = _number(value, name, span)
    if number < lo or number > hi or (lo_open and number == lo):
        raise RequestError(f"{name} must be{span}, got {number:g}")
    return number


def _codes(value: Any, info: dict) -> dict[str, float] | None:
    """{name: number}; a categorical code takes an int (3, not 3.0), as every integer field."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RequestError(f"codes must be an object of name: number, e.g. {{\"c0\": 3}}, got {shown(value)}")
    sizes = {code["name"]: int(code["size"]) for code in info["latent"]["codes"] if code["kind"] == "categorical"}
    for name, v in value.items():
        if name in sizes and not _is_int(v):
            raise RequestError(f"code {name} is categorical: give an integer in 0..{sizes[name] - 1}, got {shown(v)}")
    return {name: v if name in sizes else _number(v, f"code {name}", "") for name, v in value.items()}


def truncation_space(info: dict) -> str:
    """Where the model's truncation psi acts: "w" when its model_info says so (the graph takes psi as its
    `truncation` input and z stays unscaled), "none" when it says the model has no truncation trick (progan:
    psi != 1 is refused), else "z" (psi scales the seed's noise; every model exported before w-space
    truncation existed)."""
    declared = info.get("truncation")
    space = declared.get("space") if isinstance(declared, dict) else None
    return space if space in ("w", "none") else "z"


def check_truncation(info: dict, psi: float | None) -> float | None:
    """`psi` when the model can apply it; a 422 naming the reason for psi != 1 on a model without the
    truncation trick (truncation space "none"), where it would silently change nothing."""
    if psi is not None and psi != 1 and truncation_space(info) == "none":
        reason = str(info["truncation"].get("reason") or "")
        raise RequestError(latent.no_truncation_message(f"this {info['family']} model", reason, psi))
    return psi


def default_truncation(info: dict) -> float:
    """psi for a request that leaves truncation out: a w-space model's default (model.truncation), else 1."""
    return float(info["truncation"]["default"]) if truncation_space(info) == "w" else 1.0


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
        key = value.strip()
        by_name = {name.lower(): i for i, name in enumerate(names)}
        if key.lower() in by_name:
            return by_name[key.lower()]
        if not (key.isascii() and key.isdigit()) or len(key) > 18:  # ASCII digits only: int("²") fails
            raise RequestError(f"unknown class {shown(value)}; classes: {', '.join(names)}")
        value = int(key)
    n_classes = int(info.get("n_classes") or 0)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n_classes:
        raise RequestError(f"class {shown(value)} does not exist; use 0..{n_classes - 1} or a name: "
                           f"{', '.join(names)}")
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
    truncation: float  # psi: scales z, or the graph's `truncation` input for a w-space model; 1 for "none"
    codes: dict[str, float] | None
    cls: int | None  # None: cycle through the classes (or a model without classes)
    text: str | None  # text models: the caption of every image (None: the model's preview captions)


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


def _known(params: dict, verb: str) -> None:
    unknown = sorted(set(params) - PARAMS[verb])
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise RequestError(f"unknown parameter {', '.join(map(shown, unknown[:5]))}{more}; {verb} takes "
                           f"{', '.join(sorted(PARAMS[verb]))}")


def _common(params: dict, info: dict) -> dict[str, Any]:
    audio = info["kind"] == "audio"
    fmt = params.get("format", "wav" if audio else "png")
    if not isinstance(fmt, str) or fmt not in SAMPLE_FORMATS:
        raise RequestError(f"format must be one of {'wav' if audio else 'png'}, npy, json; got {shown(fmt)}")
    if fmt == "png" and info["kind"] != "image":
        raise RequestError(f"this model makes {'audio' if audio else 'points'}, not images: use format "
                           f"{'wav, ' if audio else ''}json or npy")
    if fmt == "wav" and not audio:
        raise RequestError("format wav is for audio models; this one makes "
                           f"{'images: use png' if info['kind'] == 'image' else 'points: use json'}, json or npy")
    truncation = check_truncation(info, _float(params, "truncation", default_truncation(info)))
    codes = check_codes(info, _codes(params.get("codes"), info))
    cls = None if params.get("class") is None else class_index(info, params["class"])
    return {"format": fmt, "truncation": truncation, "codes": codes, "cls": cls, "text": caption(info, params)}


def caption(info: dict, params: dict) -> Any:
    """The `text` of a request (None when it gave none): 422 when the model takes no text. The caption itself is
    checked where it is encoded (ganforge.text.checks.check_text, in the server)."""
    text = params.get("text")
    if text is not None and "text" not in info:
        raise RequestError(f"text needs a text-to-image model; this {info['family']} model takes none: drop text")
    return text


@reads_request
def parse_generate(params: dict, info: dict, max_n: int) -> GenerateArgs:
    """A /v1/generate request from its JSON parameters (a body, or a query string through from_query); a table
    model's requests go to parse_rows."""
    if is_table(info):
        raise RequestError(f"this {info['family']} model generates table rows; its requests are read by parse_rows",
                           500)
    _known(params, "generate")
    n = _int(params, "n", 1, most=max_n)
    seed = _int(params, "seed")
    common = _common(params, info)
    return GenerateArgs(n=n, seed=secrets.randbelow(MAX_SEED + 1) if seed is None else seed, **common)


@dataclass(frozen=True)
class RowsArgs:
    """A checked /v1/generate request to a table model: n rows of a seed as JSON or CSV."""

    format: str  # json | csv
    n: int
    seed: int  # drawn at random when the request left it out


def is_table(info: dict) -> bool:
    """Whether the model generates table rows (model_info kind "table"), answered by parse_rows."""
    return info.get("kind") == "table"


@reads_request
def parse_rows(params: dict, info: dict, max_n: int) -> RowsArgs:
    """A /v1/generate request to a table model: n (at most max_n), seed, format json (the default) or csv.
    The image options (class, truncation, codes; png and npy) are refused with a 422 naming what it takes."""
    taken = "n, seed and format (json or csv)"
    image_only = sorted(set(params) & COMMON - {"format"})
    if image_only:
        raise RequestError(f"this {info['family']} model generates table rows; {', '.join(map(shown, image_only))} "
                           f"{'applies' if len(image_only) == 1 else 'apply'} to image models; a table request takes "
                           f"{taken}")
    unknown = sorted(set(params) - PARAMS["rows"])
    if unknown:
        raise RequestError(f"unknown parameter {', '.join(map(shown, unknown[:5]))}; a table model's generate takes "
                           f"{taken}")
    fmt = params.get("format", "json")
    if not isinstance(fmt, str) or fmt not in ROW_FORMATS:
        raise RequestError(f"this model generates table rows: format must be json or csv, got {shown(fmt)}")
    n = _int(params, "n", 1)
    if n > max_n:
        raise RequestError(f"n = {n} is over this server's maximum of {max_n} rows a request; ask for fewer rows "
                           f"per request (or write any number with `ganforge sample --out rows.csv`)")
    seed = _int(params, "seed")
    return RowsArgs(format=fmt, n=n, seed=secrets.randbelow(MAX_SEED + 1) if seed is None else seed)


@reads_request
def parse_interpolate(params: dict, info: dict, max_n: int) -> InterpolateArgs:
    """A /v1/interpolate request from its JSON parameters (a body, or a query string through from_query)."""
    if is_table(info):
        raise RequestError(f"this {info['family']} model generates table rows; interpolation is for image and point "
                           f"models: ask /v1/generate for rows (n, seed, format json or csv)")
    _known(params, "interpolate")
    for name in ("seed_a", "seed_b"):
        if params.get(name) is None:
            raise RequestError(f"{name} is required: give two seeds, e.g. "
                               f"{{\"seed_a\": 1, \"seed_b\": 2, \"steps\": 8}}")
    seed_a, seed_b = _int(params, "seed_a"), _int(params, "seed_b")
    t = _float(params, "t")
    steps = _int(params, "steps", None if t is not None else DEFAULT_STEPS, most=max_n)  # bounded before the strip
    ts = interpolation_ts(t, steps)
    common = _common(params, info)
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


def wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """Mono samples in [-1, 1] (any shape) -> 16-bit PCM WAV bytes (the standard library's wave; no torch)."""
    import wave

    pcm = np.round(np.clip(np.asarray(x, dtype=np.float64).reshape(-1), -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def encode(x: np.ndarray, fmt: str, *, kind: str, seed: int, classes: np.ndarray | None,
           sample_rate: int = 0) -> bytes:
    """The response body (media type MEDIA[fmt]) of samples x: images (N, C, H, W) in [-1, 1], audio clips
    (N, 1, L) in [-1, 1] or points (N, F).

    npy: float32 x; png: one image, or a grid GRID_COLUMNS wide; wav: one clip, or the clips one after another with
    AUDIO_GAP s of silence between; json: {seed, n, shape, classes, images} with a base64 PNG per image,
    {..., clips, sample_rate} with a base64 WAV per clip, or {..., points} for a points model."""
    if fmt == "wav":
        gap = np.zeros(int(AUDIO_GAP * sample_rate), dtype=np.float32)
        parts: list[np.ndarray] = []
        for i, clip in enumerate(x):
            parts += ([gap] if i else []) + [np.asarray(clip, dtype=np.float32).reshape(-1)]
        return wav_bytes(np.concatenate(parts), sample_rate)
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
    elif kind == "audio":
        payload["sample_rate"] = int(sample_rate)
        payload["clips"] = [base64.b64encode(wav_bytes(clip, sample_rate)).decode() for clip in x]
    else:
        payload["points"] = x.tolist()
    return json.dumps(payload).encode()
