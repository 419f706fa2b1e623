"""serve/request_core.py: the checks, class lookup and encodings that the HTTP API and the Lambda handler share."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
import subprocess
import sys
import textwrap
import time
import tracemalloc
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from ganforge import image, latent
from ganforge.artifacts import Sampler
from ganforge.artifacts.card import model_info
from ganforge.serve import aws_lambda
from ganforge.serve import request_core as core
from ganforge.serve.request_core import RequestError
from ganforge.train import build_run

from .conftest import imports_of, tiny_config

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
INFOGAN_CODES = [{"name": "c0", "kind": "categorical", "size": 4}, {"name": "c1", "kind": "continuous", "size": 1}]


def info_of(family: str = "cgan", kind: str = "image", class_names=WORDS, codes=()) -> dict:
    """A model_info dict with what the request checks read."""
    conditional = bool(class_names)
    return {"family": family, "kind": kind, "conditional": conditional, "n_classes": len(class_names),
            "class_names": list(class_names), "latent": {"noise_dim": 6, "codes": list(codes)}}


CGAN, DCGAN, INFOGAN = info_of(), info_of("dcgan", class_names=[]), info_of("infogan", class_names=[], codes=INFOGAN_CODES)
POINTS = info_of("gan", kind="points", class_names=[])


def error(fn, *args) -> RequestError:
    with pytest.raises(RequestError) as caught:
        fn(*args)
    return caught.value


# ---- class lookup -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, index", [(3, 3), (np.int64(9), 9), ("3", 3), (" 7 ", 7), ("seven", 7),
                                          ("Seven", 7), (" NINE ", 9)])
def test_class_by_index_or_name(value, index):
    assert core.class_index(CGAN, value) == index


def test_names_resolve_before_digit_strings():
    info = info_of(class_names=["1", "0"])
    assert core.class_index(info, "1") == 0 and core.class_index(info, 1) == 1


@pytest.mark.parametrize("info, value, message", [
    (CGAN, "zebra", "unknown class 'zebra'; classes: zero, one, two"),
    (CGAN, 10, "class 10 does not exist; use 0..9 or a name: zero, one"),
    (CGAN, "12", "class 12 does not exist; use 0..9"),
    (CGAN, -1, "class -1 does not exist"),
    (CGAN, True, "class True does not exist"),
    (CGAN, [1, 2], "class [1, 2] does not exist"),
    (DCGAN, 3, "this dcgan model has no classes; leave out 'class'"),
])
def test_class_errors_name_the_fix(info, value, message):
    e = error(core.class_index, info, value)
    assert message in e.detail and e.status == 422 and isinstance(e, ValueError)


def test_labels_cycle_repeat_or_follow_the_request():
    np.testing.assert_array_equal(core.labels(CGAN, 12), np.arange(12) % 10)
    np.testing.assert_array_equal(core.labels(CGAN, 3, "two"), [2, 2, 2])
    np.testing.assert_array_equal(core.labels(CGAN, 2, [1, "eight"]), [1, 8])
    assert core.labels(DCGAN, 4) is None
    assert "need one class per sample: 3 samples but 2" in error(core.labels, CGAN, 3, [1, 2]).detail
    assert "leave out 'class'" in error(core.labels, DCGAN, 2, 0).detail


# ---- parameters -------------------------------------------------------------------------------------------

def test_generate_defaults_and_query_strings():
    req = core.parse_generate({}, DCGAN, 16)
    assert (req.n, req.format, req.truncation, req.codes, req.cls) == (1, "png", 1.0, None, None)
    assert 0 <= req.seed <= latent.MAX_SEED
    query = {"n": "4", "seed": "7", "truncation": "0.5", "class": "three", "format": "json"}
    req = core.parse_generate(core.from_query(query), CGAN, 16)
    assert (req.n, req.seed, req.truncation, req.cls, req.format) == (4, 7, 0.5, 3, "json")
    req = core.parse_generate(core.from_query({"n": " 2 ", "codes": "c0:3, c1:-0.5"}), INFOGAN, 16)
    assert req.n == 2 and req.codes == {"c0": 3, "c1": -0.5}
    assert core.parse_generate(core.from_query({"codes": '{"c0": 1}'}), INFOGAN, 16).codes == {"c0": 1}


def test_stylegan_psi_defaults_to_its_model_truncation():
    """A w-space model's info says so; a request without truncation gets its default psi, the others 1."""
    stylegan = {**info_of("stylegan", class_names=[]),
                "truncation": {"space": "w", "input": "truncation", "default": 0.7}}
    assert (core.truncation_space(stylegan), core.default_truncation(stylegan)) == ("w", 0.7)
    assert (core.truncation_space(DCGAN), core.default_truncation(DCGAN)) == ("z", 1.0)  # no entry: scale z
    assert core.parse_generate({}, stylegan, 16).truncation == 0.7
    assert core.parse_generate({"truncation": 0.5}, stylegan, 16).truncation == 0.5
    assert core.parse_interpolate({"seed_a": 1, "seed_b": 2}, stylegan, 16).truncation == 0.7
    assert error(core.parse_generate, {"truncation": 0}, stylegan, 16).detail == "truncation must be in (0, 1], got 0"


def test_a_model_without_truncation_refuses_psi_with_the_reason():
    """progan's info says truncation space "none": psi 1 or no psi is served (psi 1), any other psi is a 422
    that names the family and the reason, for generate and interpolate alike."""
    progan = {**info_of("progan", class_names=[]), "truncation": {"space": "none", "reason": "z is normalised"}}
    assert (core.truncation_space(progan), core.default_truncation(progan)) == ("none", 1.0)
    assert core.parse_generate({}, progan, 16).truncation == 1.0
    assert core.parse_generate({"truncation": 1}, progan, 16).truncation == 1
    for parse, params in ((core.parse_generate, {"truncation": 0.5}),
                          (core.parse_interpolate, {"seed_a": 1, "seed_b": 2, "truncation": 0.5})):
        e = error(parse, params, progan, 16)
        assert e.status == 422 and e.detail == ("this progan model has no truncation trick: z is normalised; "
                                                "truncation 0.5 would give the same images as 1, so use "
                                                "truncation 1 or leave it out")
    assert core.parse_generate({"truncation": 0.5}, DCGAN, 16).truncation == 0.5  # "z" models still scale z


def test_query_strings_spell_json_values():
    """A query value becomes the JSON number it spells, so the strict checks see what a body would carry."""
    assert core.from_query({"n": "4", "t": "0.25", "seed": "1e3", "steps": "true", "class": "7", "format": "npy"}) == \
        {"n": 4, "t": 0.25, "seed": 1000.0, "steps": True, "class": "7", "format": "npy"}
    assert core.from_query({"n": "abc", "seed": "[1]", "truncation": "nan", "t": "[" * 5000}) == \
        {"n": "abc", "seed": "[1]", "truncation": "nan", "t": "[" * 5000}  # no JSON number: refused later
    assert core.from_query({"codes": "c0:3,c1:x"})["codes"] == {"c0": 3, "c1": "x"}
    # numbers as query strings also write them (they worked before the strict checks)
    assert core.from_query({"seed": "007", "n": "+2", "truncation": ".5"}) == {"seed": 7, "n": 2, "truncation": 0.5}
    assert error(core.parse_generate, core.from_query({"n": "2.0"}), DCGAN, 16).detail == \
        "n must be an integer >= 1, got 2.0"
    assert "codes must look like" in error(core.from_query, {"codes": "c0=1"}).detail


def test_interpolate_strip_and_one_class_along_it():
    req = core.parse_interpolate({"seed_a": 1, "seed_b": 2}, CGAN, 16)
    assert (req.seed_a, req.seed_b, req.cls) == (1, 2, 0) and req.ts == pytest.approx(np.linspace(0, 1, 8).tolist())
    assert core.parse_interpolate({"seed_a": 1, "seed_b": 2, "t": 0.25, "class": 6}, CGAN, 16).ts == [0.25]
    req = core.parse_interpolate({"seed_a": 1, "seed_b": 2, "steps": 3}, DCGAN, 16)
    assert req.ts == [0.0, 0.5, 1.0] and req.cls is None


BAD = [  # (parse, info, params, message)
    (core.parse_generate, DCGAN, {"n": 0}, "n must be >= 1, got 0"),
    (core.parse_generate, DCGAN, {"n": "abc"}, "n must be an integer >= 1, got 'abc'"),
    (core.parse_generate, DCGAN, {"n": 1.5}, "n must be an integer >= 1, got 1.5"),
    (core.parse_generate, DCGAN, {"n": True}, "n must be an integer >= 1, got True"),
    (core.parse_generate, DCGAN, {"n": 17}, "n = 17 is over this server's maximum of 16; ask for fewer images"),
    (core.parse_generate, DCGAN, {"seed": -1}, "seed must be in 0..2147483647, got -1"),
    (core.parse_generate, DCGAN, {"truncation": 0}, "truncation must be in (0, 1], got 0"),
    (core.parse_generate, DCGAN, {"truncation": "nan"}, "truncation must be a number in (0, 1], got 'nan'"),
    (core.parse_generate, DCGAN, {"format": "gif"}, "format must be one of png, npy, json; got 'gif'"),
    (core.parse_generate, POINTS, {}, "this model makes points, not images: use format json or npy"),
    (core.parse_generate, DCGAN, {"nn": 4, "zz": 1}, "unknown parameter 'nn', 'zz'; generate takes class, codes, "
                                                     "format, n, seed, text, truncation"),
    (core.parse_generate, DCGAN, {"codes": {"c0": 1}}, "this dcgan model has no latent codes; leave out 'codes'"),
    (core.parse_generate, INFOGAN, {"codes": {"zz": 1}}, "this model has no code 'zz'; its codes are: c0, c1"),
    (core.parse_generate, INFOGAN, {"codes": {"c0": 1.5}}, "code c0 is categorical: give an integer in 0..3"),
    (core.parse_generate, INFOGAN, {"codes": "c0:1"}, "codes must be an object of name: number"),
    (core.parse_generate, INFOGAN, {"codes": [1]}, "codes must be an object of name: number"),
    (core.parse_generate, INFOGAN, {"codes": {"c1": "x"}}, "code c1 must be a number, got 'x'"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1}, "seed_b is required: give two seeds"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2, "t": 0.5, "steps": 3}, "give either t (one image) "
                                                                                      "or steps (a strip), not both"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2, "t": 1.5}, "t must be in [0, 1], got 1.5"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2, "steps": 1}, "steps must be >= 2, got 1"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2, "steps": 17}, "steps = 17 is over this server's "
                                                                              "maximum of 16; ask for fewer images"),
    # strict JSON types: an integer field takes an int, a number field an int or a float; never a bool or a string
    (core.parse_generate, DCGAN, {"n": "2"}, "n must be an integer >= 1, got '2'"),
    (core.parse_generate, DCGAN, {"n": 2.0}, "n must be an integer >= 1, got 2.0"),
    (core.parse_generate, DCGAN, {"seed": "7"}, "seed must be an integer in 0..2147483647, got '7'"),
    (core.parse_generate, DCGAN, {"seed": False}, "seed must be an integer in 0..2147483647, got False"),
    (core.parse_interpolate, DCGAN, {"seed_a": True, "seed_b": 2}, "seed_a must be an integer in 0..2147483647, got True"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2.0}, "seed_b must be an integer in 0..2147483647, got 2.0"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2, "steps": "3"}, "steps must be an integer >= 2, got '3'"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2, "steps": 3.0}, "steps must be an integer >= 2, got 3.0"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2, "t": True}, "t must be a number in [0, 1], got True"),
    (core.parse_interpolate, DCGAN, {"seed_a": 1, "seed_b": 2, "t": "0.5"}, "t must be a number in [0, 1], got '0.5'"),
    (core.parse_generate, DCGAN, {"truncation": True}, "truncation must be a number in (0, 1], got True"),
    (core.parse_generate, DCGAN, {"truncation": "0.5"}, "truncation must be a number in (0, 1], got '0.5'"),
    (core.parse_generate, DCGAN, {"truncation": 10**400}, "truncation must be a number in (0, 1], got 1000000"),
    (core.parse_generate, CGAN, {"class": 2.0}, "class 2.0 does not exist; use 0..9 or a name"),
    (core.parse_generate, CGAN, {"class": "²"}, "unknown class '²'; classes: zero"),  # int("²") raised: a 500
    (core.parse_generate, INFOGAN, {"codes": {"c1": True}}, "code c1 must be a number, got True"),
    (core.parse_generate, INFOGAN, {"codes": {"c1": "0.5"}}, "code c1 must be a number, got '0.5'"),
    (core.parse_generate, INFOGAN, {"codes": {"c0": 3.0}}, "code c0 is categorical: give an integer in 0..3, got 3.0"),
    (core.parse_generate, INFOGAN, {"codes": {"c0": False}}, "code c0 is categorical: give an integer in 0..3, got False"),
    # echoed values stay short and shallow
    (core.parse_generate, DCGAN, {"n": [[[[[[1]]]]]]}, "n must be an integer >= 1, got [[[[...]]]]"),
    (core.parse_generate, CGAN, {"class": "x" * 60_000}, "unknown class 'xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxx"),
]


@pytest.mark.parametrize("parse, info, params, message", BAD, ids=[str(b[2]) for b in BAD])
def test_bad_parameters_get_422_naming_the_fix(parse, info, params, message):
    e = error(parse, params, info, 16)
    assert e.status == 422 and message in e.detail and len(e.detail) < 300


SIZES = [  # (parse, params, max_n, message): every size a request asks for, refused before anything is built
    (core.parse_generate, {"n": 10**9}, 16, "n = 1000000000 is over this server's maximum of 16"),
    (core.parse_interpolate, {"seed_a": 0, "seed_b": 1, "steps": 10**9}, 16,
     "steps = 1000000000 is over this server's maximum of 16"),
    (core.parse_interpolate, {"seed_a": 0, "seed_b": 1, "steps": 10**4000}, 16,
     "steps = 100000000000000000...0000000000000000000 is over this server's maximum of 16"),  # echoed cut short
    (core.parse_interpolate, {"seed_a": 0, "seed_b": 1}, 4, "steps = 8 is over this server's maximum of 4"),  # default
]


@pytest.mark.parametrize("parse, params, max_n, message", SIZES, ids=["n", "steps", "steps-4000-digits", "default-steps"])
def test_sizes_are_bounded_before_any_allocation(parse, params, max_n, message):
    """steps = 10**9 built a 10**9-point linspace (24 GB as floats) before the max_n check."""
    tracemalloc.start()
    try:
        start = time.perf_counter()
        e = error(parse, params, INFOGAN, max_n)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (e.status, e.detail.startswith(message)) == (422, True), e.detail
    assert peak < 1 << 20 and elapsed < 0.5, (peak, elapsed)


def test_bodies():
    assert core.parse_body(b'{"n": 2}') == {"n": 2}
    assert (error(core.parse_body, b'{"n": 2').status, error(core.parse_body, b'{"n": 2').detail) == (400, core.BAD_JSON)
    e = error(core.parse_body, "[1, 2]")
    assert e.status == 400 and e.detail == 'the body must be a JSON object such as {"n": 4, "seed": 0}, got a list'
    assert error(core.parse_body, "[1, 2]", 422).status == 422
    e = error(core.parse_body, "[" * 30_000)  # was a RecursionError: a 500
    assert e.status == 400 and e.detail.startswith("the body nests arrays or objects too deeply to read; send a flat")
    assert error(core.parse_body, b"\xff\xfe{").detail == core.BAD_JSON
    e = core.too_large(4096)
    assert e.status == 413 and e.detail == "request body over 4096 bytes; ask for fewer images per request"


# ---- encodings --------------------------------------------------------------------------------------------

def _png(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return np.asarray(img)


def test_encodings_match_ganforge_image():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).uniform(-1.2, 1.2, (10, 3, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(core.to_uint8(x), image.to_uint8(torch.from_numpy(x)).numpy())
    grid = _png(core.encode(x, "png", kind="image", seed=0, classes=None))
    np.testing.assert_array_equal(grid, image.make_grid(torch.from_numpy(x), nrow=8).permute(1, 2, 0).numpy())
    one = _png(core.encode(x[:1, :1], "png", kind="image", seed=0, classes=None))
    np.testing.assert_array_equal(one, core.to_uint8(x[0, 0]))
    np.testing.assert_array_equal(np.load(io.BytesIO(core.encode(x, "npy", kind="image", seed=0, classes=None))), x)
    payload = json.loads(core.encode(x[:2], "json", kind="image", seed=5, classes=np.array([3, 3])))
    assert {k: payload[k] for k in ("seed", "n", "shape", "classes")} == {"seed": 5, "n": 2, "shape": [3, 5, 4],
                                                                          "classes": [3, 3]}
    np.testing.assert_array_equal(_png(base64.b64decode(payload["images"][1])), core.to_uint8(x[1]).transpose(1, 2, 0))
    points = json.loads(core.encode(x[:2, :, 0, 0], "json", kind="points", seed=1, classes=None))
    assert points["points"] == x[:2, :, 0, 0].tolist() and points["classes"] is None and "images" not in points


# ---- no torch, and the same errors from both front ends ---------------------------------------------------

def test_imports_without_torch_or_fastapi(tmp_path):
    """In ganforge and as the Lambda package ships it (ganforge_request_core.py beside ganforge_latent.py)."""
    shutil.copyfile(core.__file__, tmp_path / "ganforge_request_core.py")
    shutil.copyfile(latent.__file__, tmp_path / "ganforge_latent.py")
    probe = textwrap.dedent("""
        import sys
        BLOCKED = ("torch", "fastapi", "pydantic", "PIL", "onnxruntime")
        for name in BLOCKED:
            sys.modules[name] = None  # any import of these fails
        import ganforge.serve.request_core as core
        core.parse_generate({"n": 2, "class": "one"}, {"family": "cgan", "kind": "image", "conditional": True,
                            "n_classes": 2, "class_names": ["zero", "one"], "latent": {"noise_dim": 4, "codes": []}}, 4)
        sys.path.insert(0, sys.argv[1])
        import ganforge_request_core
        assert ganforge_request_core.latent.__name__ == "ganforge_latent", ganforge_request_core.latent
        print(sorted(m for m, mod in sys.modules.items() if mod is not None and m.split(".")[0] in BLOCKED))
    """)
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_source_imports_only_what_the_lambda_package_has():
    allowed = set(sys.stdlib_module_names) | {"numpy", "PIL", "ganforge_latent"}
    top, relative = imports_of(open(core.__file__).read())
    assert top <= allowed, f"request_core imports {sorted(top - allowed)}"
    assert relative == [(2, None, ["latent"])]  # the in-package fallback of `import ganforge_latent`


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """{family: (post to the HTTP app, post to the Lambda handler)} on one model each: cgan and infogan.

    Both answer (status, {"detail"}) for a raw JSON body; the Lambda side gets the model's info only, as
    its checks come before the model runs."""
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from ganforge.serve.http import create_app

    def http_post(app, path: str, raw: str) -> tuple[int, dict]:
        async def post():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                return await client.post(path, content=raw, headers={"content-type": "application/json"})

        response = asyncio.run(post())
        return response.status_code, response.json()

    def lambda_post(gen, path: str, raw: str) -> tuple[int, dict]:
        event = {"version": "2.0", "rawPath": path, "requestContext": {"http": {"method": "POST"}, "stage": "$default"},
                 "body": raw, "isBase64Encoded": False}
        response = aws_lambda.respond(gen, event)
        return response["statusCode"], json.loads(response["body"])

    root, out = tmp_path_factory.mktemp("core"), {}
    for family in ("cgan", "infogan"):
        build_run(tiny_config(family, "builtin:digits", steps=2), root / family).fit()
        sampler = Sampler.from_checkpoint(root / family)
        app = create_app(sampler, max_n=aws_lambda.DEFAULT_MAX_N, workers=1)
        gen = SimpleNamespace(info=model_info(sampler))
        out[family] = (partial(http_post, app), partial(lambda_post, gen))
    return out


SAME = [  # (family, path, body): one error, the same status and detail from both front ends
    ("cgan", "/v1/generate", {"n": aws_lambda.DEFAULT_MAX_N + 1}),
    ("cgan", "/v1/generate", {"n": -1}),
    ("cgan", "/v1/generate", {"n": "abc"}),
    ("cgan", "/v1/generate", {"n": 1.5}),
    ("cgan", "/v1/generate", {"bogus": 1}),
    ("cgan", "/v1/generate", {"class": 10}),
    ("cgan", "/v1/generate", {"class": "zebra"}),
    ("cgan", "/v1/generate", {"class": "12"}),
    ("cgan", "/v1/generate", {"codes": {"c0": 1}}),
    ("infogan", "/v1/generate", {"class": 1}),
    ("infogan", "/v1/generate", {"codes": {"zz": 1}}),  # was a 500 from the HTTP API
    ("infogan", "/v1/generate", {"codes": {"c0": 1.5}}),
    ("cgan", "/v1/interpolate", {"seed_a": 1, "seed_b": 2, "t": 0.5, "steps": 3}),
    ("cgan", "/v1/interpolate", {"seed_a": 1, "seed_b": 2, "steps": 17}),
    ("cgan", "/v1/generate", '{"n": 2,'),
    ("cgan", "/v1/generate", "[" * 30_000),  # was a RecursionError: 500 from both
    # strict types: "2", 2.0 and true are no integers, "0.5" and false no numbers, from either front end
    ("cgan", "/v1/generate", {"n": True}),
    ("cgan", "/v1/generate", {"n": "2"}),
    ("cgan", "/v1/generate", {"n": 2.0}),
    ("cgan", "/v1/generate", {"seed": "7"}),
    ("cgan", "/v1/generate", {"seed": 7.0}),
    ("cgan", "/v1/generate", {"truncation": "0.5"}),
    ("cgan", "/v1/generate", {"truncation": True}),
    ("cgan", "/v1/generate", {"class": 2.0}),
    ("cgan", "/v1/generate", {"class": False}),
    ("cgan", "/v1/generate", {"class": "²"}),  # was int("²"): a 500
    ("cgan", "/v1/interpolate", {"seed_a": "0", "seed_b": 1}),
    ("cgan", "/v1/interpolate", {"seed_a": 0, "seed_b": 1.0}),
    ("cgan", "/v1/interpolate", {"seed_a": 0, "seed_b": 1, "steps": "3"}),
    ("cgan", "/v1/interpolate", {"seed_a": 0, "seed_b": 1, "steps": True}),
    ("cgan", "/v1/interpolate", {"seed_a": 0, "seed_b": 1, "t": False}),
    ("cgan", "/v1/interpolate", {"seed_a": 0, "seed_b": 1, "t": "0.5"}),
    ("cgan", "/v1/interpolate", {"seed_a": 0, "seed_b": 1, "steps": 10**9}),  # was a 24 GB linspace
    ("infogan", "/v1/generate", {"codes": {"c0": True}}),
    ("infogan", "/v1/generate", {"codes": {"c0": 1.0}}),
    ("infogan", "/v1/generate", {"codes": {"c1": "0.5"}}),
    ("infogan", "/v1/generate", {"codes": "c0:1"}),
    ("infogan", "/v1/generate", {"codes": {"\ud800": 1}}),  # a lone surrogate echoed: the HTTP API could not encode it
]


@pytest.mark.parametrize("family, path, body", SAME, ids=[f"{s[0]}-{str(s[2])[:40]}" for s in SAME])
def test_http_and_lambda_give_the_same_error(apps, family, path, body):
    http_post, lambda_post = apps[family]
    raw = body if isinstance(body, str) else json.dumps(body)
    status, detail = http_post(path, raw)
    assert (status, detail) == lambda_post(path, raw) and status in (400, 422)


def test_unexpected_errors_while_reading_are_400_naming_them(apps, monkeypatch, capsys):
    """A bug met while reading a request is the client's 400 with one line, never a 500; the log keeps the traceback."""
    def broken(info, codes):
        raise TypeError("boom\n  second line")

    monkeypatch.setattr(core, "check_codes", broken)
    raw = json.dumps({"codes": {"c0": 1}})
    want = (400, {"detail": f"could not read this request (TypeError: boom); send a JSON object such as {core.EXAMPLE}"})
    for post in apps["infogan"]:
        assert post("/v1/generate", raw) == want
        assert "Traceback" in capsys.readouterr().err


def test_non_object_body_gets_the_same_message(apps):
    """The message is shared; the status stays as each front end had it (HTTP 422 from validation, Lambda 400)."""
    http_post, lambda_post = apps["cgan"]
    (http_status, http_body), (lambda_status, lambda_body) = (post("/v1/generate", "[1, 2]")
                                                              for post in (http_post, lambda_post))
    assert (http_status, lambda_status) == (422, 400)
    assert http_body == lambda_body == {"detail": core.not_an_object([]).detail}


def test_translation_models_are_refused_by_their_property():
    pytest.importorskip("fastapi")
    from ganforge.serve.http import create_app

    stand_in = SimpleNamespace(is_translation=True, family=SimpleNamespace(name="pix2pix"))
    with pytest.raises(ValueError, match="pix2pix translates images: use `ganforge translate`"):
        create_app(stand_in)
