"""The AWS Lambda package: handler on API Gateway v2 events, parity with Sampler, no torch, zip, SAM template."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganforge import latent
from ganforge.artifacts import Sampler
from ganforge.artifacts.card import model_info
from ganforge.image import make_grid, to_uint8
from ganforge.serve import aws_lambda, lambda_package, request_core
from ganforge.serve.lambda_package import GUIDE, LambdaPackageError, build_lambda, sam_template, write_zip
from ganforge.train import build_run
from tests.conftest import imports_of, tiny_config

ROOT = Path(__file__).resolve().parent.parent
CODE = ("app.py", "ganforge_latent.py", "ganforge_request_core.py", "model.onnx", "model.json")


def api_event(method: str, path: str, *, query: dict | None = None, json_body=None, raw_body: str | None = None,
              content_type: str = "application/json", b64: bool | str = False, stage: str = "$default") -> dict:
    """An event as API Gateway's HTTP API (payload format 2.0) hands it to Lambda: lower-case headers,
    query values as strings (repeats comma-joined), no queryStringParameters/body keys when absent, the
    stage in rawPath for a named stage, and base64 bodies for non-text content types (b64="as-is": the
    body is marked base64 but sent unchanged, as a broken client would)."""
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    body = json.dumps(json_body) if json_body is not None else raw_body
    headers = {"accept": "*/*", "host": "x1y2z3.execute-api.eu-west-1.amazonaws.com", "user-agent": "curl/8.5.0",
               "x-amzn-trace-id": "Root=1-65f0a1b2-0123456789abcdef01234567", "x-forwarded-for": "198.51.100.7",
               "x-forwarded-port": "443", "x-forwarded-proto": "https"}
    if body is not None:
        headers.update({"content-type": content_type, "content-length": str(len(body.encode()))})
    query = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in (query or {}).items()}
    event = {"version": "2.0", "routeKey": "$default", "rawPath": raw_path,
             "rawQueryString": "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items()), "headers": headers,
             "requestContext": {"accountId": "123456789012", "apiId": "x1y2z3",
                                "domainName": "x1y2z3.execute-api.eu-west-1.amazonaws.com", "domainPrefix": "x1y2z3",
                                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                                         "sourceIp": "198.51.100.7", "userAgent": "curl/8.5.0"},
                                "requestId": "UqkAZiXyjoEEJjw=", "routeKey": "$default", "stage": stage,
                                "time": "12/Mar/2026:09:30:00 +0000", "timeEpoch": 1773307800000},
             "isBase64Encoded": bool(b64)}
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if b64 is True else body
    return event


def load_app(pkg: Path, name: str):
    """Import OUT/app.py the way Lambda does (OUT on sys.path), under a unique module name."""
    sys.path.insert(0, str(pkg))
    try:
        spec = importlib.util.spec_from_file_location(name, pkg / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(pkg))
        for shipped in ("ganforge_latent", "ganforge_request_core", "ganforge_table_rows", "ganforge_table_transforms",
                        "ganforge_text_onnx", "ganforge_text_checks"):
            sys.modules.pop(shipped, None)  # the next package imports its own copies
    return module


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lambda")
    out = {}
    for family in ("dcgan", "cgan"):
        build_run(tiny_config(family, "builtin:digits", steps=2), root / f"run-{family}").fit()
        sampler = Sampler.from_checkpoint(root / f"run-{family}")
        report = build_lambda(sampler, root / family, vendor=False)
        out[family] = SimpleNamespace(sampler=sampler, dir=root / family, report=report,
                                      app=load_app(root / family, f"lambda_app_{family}"))
    return out


def call(app, method: str, path: str, **kw) -> dict:
    response = app.handler(api_event(method, path, **kw), None)
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    return response


def body_json(response: dict):
    assert response["headers"]["content-type"] == "application/json" and not response["isBase64Encoded"]
    return json.loads(response["body"])


def png_pixels(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return np.asarray(img)


def response_png(response: dict) -> np.ndarray:
    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["content-type"] == "image/png" and response["isBase64Encoded"] is True
    return png_pixels(base64.b64decode(response["body"]))


def assert_pixels(got: np.ndarray, want_chw: torch.Tensor) -> None:
    """PNG pixels equal to_uint8 of the eager output within one level (grey images: (H, W))."""
    want = want_chw.numpy()[0] if want_chw.shape[0] == 1 else want_chw.permute(1, 2, 0).numpy()
    assert got.shape == want.shape
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.01, f"max diff {diff.max()}, {(diff > 0).mean():.2%} differ"


# ---- routes and parity with Sampler -------------------------------------------------------------------

def test_health_and_info(pkgs):
    app, sampler = pkgs["cgan"].app, pkgs["cgan"].sampler
    assert body_json(call(app, "GET", "/health")) == {"status": "ok"}
    info = body_json(call(app, "GET", "/v1/info"))
    assert info == {**json.loads(json.dumps(model_info(sampler))), "max_n": 16}
    assert info["family"] == "cgan" and info["shape"] == [1, 8, 8] and info["conditional"] is True
    assert info["latent"]["noise_dim"] == sampler.noise_dim and info["class_names"][7] == "7"
    assert body_json(call(app, "GET", "/v1/info", stage="prod"))["family"] == "cgan"  # /prod/v1/info


@pytest.mark.parametrize("seed", [0, 12345, latent.MAX_SEED])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_generate_png_equals_sampler(pkgs, method, seed):
    pkg = pkgs["dcgan"]
    kw = {"query": {"seed": seed}} if method == "GET" else {"json_body": {"seed": seed}}
    response = call(pkg.app, method, "/v1/generate", **kw)
    assert response["headers"]["x-seed"] == str(seed)
    assert_pixels(response_png(response), to_uint8(pkg.sampler.generate(1, seed=seed))[0])


def test_generate_grid_truncation_and_npy(pkgs):
    pkg = pkgs["dcgan"]
    grid = response_png(call(pkg.app, "GET", "/v1/generate", query={"n": 4, "seed": 9}))
    assert grid.shape == (2 + 10, 2 + 4 * 10)  # one row of four 8x8 images, 2-pixel padding
    assert_pixels(grid, make_grid(pkg.sampler.generate(4, seed=9), nrow=4))
    wide = response_png(call(pkg.app, "POST", "/v1/generate", json_body={"n": 10, "seed": 9, "truncation": 0.5}))
    assert wide.shape == (2 + 2 * 10, 2 + 8 * 10)  # 8 a row, as serve/http.py
    assert_pixels(wide, make_grid(pkg.sampler.generate(10, seed=9, truncation=0.5), nrow=8))
    response = call(pkg.app, "POST", "/v1/generate", json_body={"n": 3, "seed": 5, "format": "npy"})
    assert response["headers"]["content-type"] == "application/octet-stream" and response["isBase64Encoded"]
    x = np.load(io.BytesIO(base64.b64decode(response["body"])))
    assert x.dtype == np.float32 and x.shape == (3, 1, 8, 8)
    torch.testing.assert_close(torch.from_numpy(x), pkg.sampler.generate(3, seed=5), atol=1e-5, rtol=0)


def test_json_format_round_trip_and_random_seed(pkgs):
    pkg = pkgs["dcgan"]
    payload = body_json(call(pkg.app, "POST", "/v1/generate", json_body={"n": 3, "format": "json"}))
    assert set(payload) == {"seed", "n", "shape", "classes", "images"}
    seed = payload["seed"]
    assert 0 <= seed <= latent.MAX_SEED and payload["n"] == 3 and payload["shape"] == [1, 8, 8]
    assert payload["classes"] is None and len(payload["images"]) == 3
    want = to_uint8(pkg.sampler.generate(3, seed=seed))
    for image, expected in zip(payload["images"], want):
        assert_pixels(png_pixels(base64.b64decode(image)), expected)
    again = body_json(call(pkg.app, "GET", "/v1/generate", query={"n": 3, "seed": seed, "format": "json"}))
    assert again["images"] == payload["images"]


def test_base64_form_encoded_body(pkgs):
    """curl -d without a JSON content type: API Gateway base64-encodes the body."""
    pkg = pkgs["dcgan"]
    response = call(pkg.app, "POST", "/v1/generate", json_body={"seed": 3}, b64=True,
                    content_type="application/x-www-form-urlencoded")
    assert_pixels(response_png(response), to_uint8(pkg.sampler.generate(1, seed=3))[0])


def test_cgan_class_by_index_and_name(pkgs):
    pkg = pkgs["cgan"]
    want = to_uint8(pkg.sampler.generate(2, seed=11, y=7))
    for kw in ({"json_body": {"n": 2, "seed": 11, "class": 7, "format": "json"}},
               {"json_body": {"n": 2, "seed": 11, "class": "7", "format": "json"}},
               {"query": {"n": 2, "seed": 11, "class": "7", "format": "json"}}):
        payload = body_json(call(pkg.app, "POST" if "json_body" in kw else "GET", "/v1/generate", **kw))
        assert payload["classes"] == [7, 7]
        for image, expected in zip(payload["images"], want):
            assert_pixels(png_pixels(base64.b64decode(image)), expected)
    cycled = body_json(call(pkg.app, "GET", "/v1/generate", query={"n": 3, "seed": 4, "format": "json"}))
    assert cycled["classes"] == [0, 1, 2]  # the default cycles, as Sampler.generate(y=None)
    for image, expected in zip(cycled["images"], to_uint8(pkg.sampler.generate(3, seed=4))):
        assert_pixels(png_pixels(base64.b64decode(image)), expected)


def test_class_names_distinct_from_indices(pkgs):
    """Names resolve before indices, case-insensitively (digits' names are the indices themselves)."""
    pkg = pkgs["cgan"]
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    info = {**json.loads((pkg.dir / "model.json").read_text()), "class_names": words}
    gen = aws_lambda.OnnxGenerator(pkg.dir / "model.onnx", info, intra_op_threads=1)
    response = aws_lambda.respond(gen, api_event("GET", "/v1/generate", query={"seed": 2, "class": "Seven"}))
    assert_pixels(response_png(response), to_uint8(pkg.sampler.generate(1, seed=2, y=7))[0])
    bad = aws_lambda.respond(gen, api_event("GET", "/v1/generate", query={"class": "eleven"}))
    assert bad["statusCode"] == 422 and "eleven" in bad["body"] and "nine" in bad["body"]
    np.testing.assert_allclose(gen.generate(2, seed=2, cls="eight"),
                               pkg.sampler.generate(2, seed=2, y=8).numpy(), atol=1e-5, rtol=0)


def test_interpolate(pkgs):
    pkg = pkgs["dcgan"]
    start = response_png(call(pkg.app, "POST", "/v1/interpolate", json_body={"seed_a": 3, "seed_b": 8, "t": 0}))
    assert_pixels(start, to_uint8(pkg.sampler.generate(1, seed=3))[0])
    end = response_png(call(pkg.app, "GET", "/v1/interpolate", query={"seed_a": 3, "seed_b": 8, "t": "1"}))
    assert_pixels(end, to_uint8(pkg.sampler.generate(1, seed=8))[0])
    strip = response_png(call(pkg.app, "POST", "/v1/interpolate", json_body={"seed_a": 3, "seed_b": 8, "steps": 5}))
    assert strip.shape == (12, 2 + 5 * 10)
    z = pkg.sampler.between_seeds(3, 8, np.linspace(0, 1, 5).tolist())
    assert_pixels(strip, make_grid(pkg.sampler.generate(5, z=z), nrow=5))
    cgan = pkgs["cgan"]
    payload = body_json(call(cgan.app, "POST", "/v1/interpolate",
                             json_body={"seed_a": 1, "seed_b": 2, "t": 0.25, "class": 3, "format": "json"}))
    assert payload["classes"] == [3] and payload["seed"] == 1
    z = cgan.sampler.between_seeds(1, 2, [0.25])
    assert_pixels(png_pixels(base64.b64decode(payload["images"][0])), to_uint8(cgan.sampler.generate(1, z=z, y=3))[0])


# ---- errors ---------------------------------------------------------------------------------------------

ERRORS = [  # (family, method, path, request keywords, status, words in the detail)
    ("dcgan", "GET", "/v1/generate", {"query": {"n": "-1"}}, 422, "n must be >= 1"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"n": 0}}, 422, "n must be >= 1"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"n": 17}}, 422, "maximum of 16"),
    ("dcgan", "GET", "/v1/generate", {"query": {"n": "abc"}}, 422, "n must be an integer"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"n": 2.5}}, 422, "n must be an integer"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"n": True}}, 422, "n must be an integer"),
    ("dcgan", "GET", "/v1/generate", {"query": {"seed": "-1"}}, 422, "seed must be in 0..2147483647"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"seed": 2**31}}, 422, "seed must be in 0..2147483647"),
    ("dcgan", "GET", "/v1/generate", {"query": {"seed": "1e3"}}, 422, "seed must be an integer"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"truncation": 0}}, 422, "truncation must be in (0, 1]"),
    ("dcgan", "GET", "/v1/generate", {"query": {"truncation": "1.5"}}, 422, "truncation must be in (0, 1]"),
    ("dcgan", "GET", "/v1/generate", {"query": {"truncation": "nan"}}, 422, "truncation must be a number"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"format": "gif"}}, 422, "format must be one of png, npy, json"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"format": ["png"]}}, 422, "format must be one of png, npy, json"),
    ("cgan", "POST", "/v1/generate", {"json_body": {"class": [1, 2]}}, 422, "class [1, 2] does not exist"),
    ("dcgan", "GET", "/v1/generate", {"query": {"codes": "c0=1"}}, 422, "codes must look like"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"class": 3}}, 422, "no classes; leave out 'class'"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"codes": {"c0": 1}}}, 422, "no latent codes"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"nn": 4}}, 422, "unknown parameter 'nn'"),
    ("cgan", "POST", "/v1/generate", {"json_body": {"class": "cat"}}, 422, "unknown class 'cat'; classes: 0, 1"),
    ("cgan", "POST", "/v1/generate", {"json_body": {"class": 10}}, 422, "class 10 does not exist; use 0..9"),
    ("cgan", "GET", "/v1/generate", {"query": {"class": "12"}}, 422, "class 12 does not exist"),
    ("dcgan", "POST", "/v1/generate", {"raw_body": '{"n": 4'}, 400, "not valid JSON"),
    ("dcgan", "POST", "/v1/generate", {"raw_body": "[1, 2]"}, 400, "must be a JSON object"),
    ("dcgan", "POST", "/v1/generate", {"raw_body": "not base64!", "b64": "as-is"}, 400, "does not decode"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"n": 1, "pad": "x" * 70_000}}, 413, "over 65536 bytes"),
    ("dcgan", "GET", "/v2/generate", {}, 404, "no route /v2/generate; routes: /health"),
    ("dcgan", "GET", "/", {}, 404, "no route /"),
    ("dcgan", "DELETE", "/v1/generate", {}, 405, "/v1/generate takes GET, HEAD or POST, not DELETE"),
    ("dcgan", "POST", "/health", {"json_body": {}}, 405, "/health takes GET or HEAD, not POST"),
    ("dcgan", "POST", "/v1/interpolate", {"json_body": {"seed_a": 1, "steps": 3}}, 422, "seed_b is required"),
    ("dcgan", "POST", "/v1/interpolate", {"json_body": {"seed_a": 1, "seed_b": 2, "t": 0.5, "steps": 3}}, 422,
     "not both"),
    ("dcgan", "GET", "/v1/interpolate", {"query": {"seed_a": 1, "seed_b": 2, "t": "1.5"}}, 422, "t must be in [0, 1]"),
    ("dcgan", "GET", "/v1/interpolate", {"query": {"seed_a": 1, "seed_b": 2, "steps": "1"}}, 422, "steps must be >= 2"),
    ("dcgan", "GET", "/v1/interpolate", {"query": {"seed_a": 1, "seed_b": 2, "steps": "17"}}, 422, "maximum of 16"),
    # a query value is the JSON value it spells, held to the same strict types as a body
    ("dcgan", "GET", "/v1/generate", {"query": {"n": "2.0"}}, 422, "n must be an integer >= 1, got 2.0"),
    ("dcgan", "GET", "/v1/generate", {"query": {"n": "true"}}, 422, "n must be an integer >= 1, got True"),
    ("dcgan", "POST", "/v1/generate", {"json_body": {"n": "2"}}, 422, "n must be an integer >= 1, got '2'"),
    ("dcgan", "GET", "/v1/interpolate", {"query": {"seed_a": 1, "seed_b": 2, "t": "true"}}, 422,
     "t must be a number in [0, 1], got True"),
    ("dcgan", "POST", "/v1/generate", {"raw_body": "[" * 30_000 + "]" * 30_000}, 400,  # 60 KB: was a RecursionError
     "the body nests arrays or objects too deeply to read"),
]


@pytest.mark.parametrize("family, method, path, kw, status, words", ERRORS,
                         ids=[f"{e[4]}-{e[2]}-{'-'.join(map(str, (e[3].get('json_body') or e[3].get('query') or {'raw': ''}).keys()))}"
                              for e in ERRORS])
def test_error_responses(pkgs, family, method, path, kw, status, words):
    response = call(pkgs[family].app, method, path, **kw)
    assert response["statusCode"] == status
    assert words in body_json(response)["detail"]
    if status == 405:
        assert response["headers"]["allow"] in ("GET, HEAD", "GET, HEAD, POST")


def test_max_n_from_the_environment(pkgs, monkeypatch):
    app = pkgs["dcgan"].app
    monkeypatch.setenv("GANFORGE_MAX_N", "2")
    assert call(app, "GET", "/v1/generate", query={"n": 2})["statusCode"] == 200
    assert "maximum of 2" in body_json(call(app, "GET", "/v1/generate", query={"n": 3}))["detail"]
    assert body_json(call(app, "GET", "/v1/info"))["max_n"] == 2
    monkeypatch.setenv("GANFORGE_MAX_N", "lots")
    response = call(app, "GET", "/v1/info")
    assert response["statusCode"] == 500 and "GANFORGE_MAX_N must be a positive integer" in response["body"]


def test_health_does_not_load_the_model():
    def broken():
        raise FileNotFoundError("model.onnx")

    assert aws_lambda.respond(broken, api_event("GET", "/health"))["statusCode"] == 200
    response = aws_lambda.respond(broken, api_event("GET", "/v1/info"))
    assert response["statusCode"] == 500 and "FileNotFoundError" in response["body"]


def test_packaged_sample_events_work(pkgs):
    for family, pkg in pkgs.items():
        for path in sorted((pkg.dir / "events").glob("*.json")):
            event = json.loads(path.read_text())
            assert event["version"] == "2.0" and event["requestContext"]["http"]["method"] in ("GET", "POST")
            assert pkg.app.handler(event, None)["statusCode"] == 200, (family, path.name)


# ---- no torch in the function ---------------------------------------------------------------------------

def test_handler_process_imports_no_torch(pkgs):
    pkg = pkgs["cgan"]
    probe = textwrap.dedent("""
        import json, sys
        import app
        response = app.handler(json.loads(sys.argv[1]), None)
        print(json.dumps({"status": response["statusCode"], "type": response["headers"]["content-type"],
                          "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch"),
                          "ganforge": sorted(m for m in sys.modules if m.split(".")[0] == "ganforge"),
                          "latent": app.latent.__file__}))
    """)
    event = api_event("POST", "/v1/generate", json_body={"n": 2, "seed": 1, "class": 5})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(event)], cwd=pkg.dir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200 and result["type"] == "image/png"
    assert result["torch"] == [] and result["ganforge"] == []
    assert Path(result["latent"]).resolve() == (pkg.dir / "ganforge_latent.py").resolve()


def test_app_source_imports_only_allowed_modules(pkgs):
    allowed = set(sys.stdlib_module_names) | {"numpy", "onnxruntime", "PIL", "ganforge_latent",
                                              "ganforge_request_core", "ganforge_table_rows", "ganforge_text_onnx"}
    top, relative = imports_of((pkgs["dcgan"].dir / "app.py").read_text())
    assert top <= allowed, f"app.py imports {sorted(top - allowed)}"
    assert "torch" not in top and "ganforge" not in top
    # the in-package fallbacks (table_rows: table models' packages ship it, tests/test_serve_tables.py)
    assert relative == [(2, None, ["latent"]), (1, None, ["request_core"]), (1, None, ["text_onnx"]),
                        (1, None, ["table_rows"])]


# ---- package contents -----------------------------------------------------------------------------------

def test_function_zip_contents_and_size(pkgs):
    pkg = pkgs["dcgan"]
    with zipfile.ZipFile(pkg.dir / "function.zip") as zf:
        infos = {i.filename: i for i in zf.infolist()}
        assert sorted(infos) == sorted(CODE)  # vendor=False: code and model only
        assert zf.read("app.py") == Path(aws_lambda.__file__).read_bytes()
        assert zf.read("ganforge_latent.py") == Path(latent.__file__).read_bytes()
        assert zf.read("ganforge_request_core.py") == Path(request_core.__file__).read_bytes()
        assert zf.read("model.onnx") == (pkg.dir / "model.onnx").read_bytes()
        assert json.loads(zf.read("model.json")) == json.loads(json.dumps(model_info(pkg.sampler)))
        assert all(i.external_attr >> 16 & 0o444 == 0o444 for i in infos.values())  # world-readable
    total = sum(i.file_size for i in infos.values())
    assert pkg.report["unzipped_mb"] == pytest.approx(total / 2**20, abs=0.005)
    assert pkg.report["vendored"] is False and pkg.report["onnx"]["parity_max_abs_diff"] <= 1e-4
    assert sorted(p.name for p in (pkg.dir / "function").iterdir()) == sorted([*CODE, "requirements.txt"])
    reqs = (pkg.dir / "requirements.txt").read_text().split()
    assert [r.split(">")[0] for r in reqs] == ["onnxruntime", "numpy", "pillow"] and all(">=" in r for r in reqs)


def test_size_limit(pkgs, monkeypatch, tmp_path):
    pkg = pkgs["dcgan"]
    files = {name: pkg.dir / name for name in CODE}
    total = sum(p.stat().st_size for p in files.values())
    monkeypatch.setattr(lambda_package, "UNZIPPED_LIMIT_BYTES", total)
    assert write_zip(files, tmp_path / "ok.zip") == total  # exactly at the limit is allowed
    monkeypatch.setattr(lambda_package, "UNZIPPED_LIMIT_BYTES", total - 1)
    with pytest.raises(LambdaPackageError, match=r"over Lambda's limit .*model.onnx"):
        write_zip(files, tmp_path / "big.zip")
    monkeypatch.setattr(lambda_package, "UNZIPPED_LIMIT_BYTES", 1000)
    with pytest.raises(LambdaPackageError, match="--no-vendor"):
        build_lambda(pkg.sampler, tmp_path / "tiny", vendor=False)
    assert not (tmp_path / "tiny").exists()  # a failed export writes nothing


def test_vendoring_offline_names_no_vendor(pkgs, monkeypatch, tmp_path):
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    for key, value in {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty), "PIP_CONFIG_FILE": os.devnull}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(LambdaPackageError, match=r"(?s)could not download the Linux \(x86_64, Python 3.12\).*--no-vendor"):
        build_lambda(pkgs["dcgan"].sampler, tmp_path / "offline", vendor=True)
    assert not (tmp_path / "offline").exists()
    cmd = lambda_package.vendor_command(tmp_path, tmp_path / "r.txt", "3.12", "arm64")
    assert {"manylinux2014_aarch64", "manylinux_2_28_aarch64", "--only-binary=:all:", "3.12", "cp"} <= set(cmd)


def test_template_shape(pkgs):
    loader = type("CfnLoader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda load, tag, node: {tag: load.construct_scalar(node)
                                                               if isinstance(node, yaml.ScalarNode) else None})
    template = yaml.load((pkgs["dcgan"].dir / "template.yaml").read_text(), Loader=loader)
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Parameters"]["MemorySize"]["MinValue"] == 128 and template["Parameters"]["Timeout"]["MaxValue"] == 30
    fn = template["Resources"]["GeneratorFunction"]["Properties"]
    assert (fn["Handler"], fn["Runtime"], fn["Architectures"], fn["CodeUri"]) == ("app.handler", "python3.12",
                                                                                  ["x86_64"], "function/")
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in fn["Events"].values()}
    assert {e["Type"] for e in fn["Events"].values()} == {"HttpApi"}
    assert {("GET", "/health"), ("GET", "/v1/info"), ("GET", "/v1/generate"), ("POST", "/v1/generate"),
            ("POST", "/v1/interpolate")} <= routes
    assert "execute-api" in str(template["Outputs"]["ApiUrl"]["Value"])


def _cfn_lint() -> list[str]:
    script = Path(sys.executable).with_name("cfn-lint")
    if script.exists():
        return [str(script)]
    if shutil.which("cfn-lint"):
        return [shutil.which("cfn-lint")]
    if importlib.util.find_spec("cfnlint"):
        return [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())"]
    pytest.skip("cfn-lint is not installed (pip install cfn-lint)")


def test_cfn_lint_passes_and_catches_a_broken_template(pkgs, tmp_path):
    info = json.loads((pkgs["cgan"].dir / "model.json").read_text())
    vendored = tmp_path / "vendored.yaml"
    vendored.write_text(sam_template(info, code_uri="function.zip", python="3.13", arch="arm64", memory=2048, timeout=10))
    good = subprocess.run([*_cfn_lint(), str(pkgs["dcgan"].dir / "template.yaml"), str(vendored)],
                          capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text((pkgs["dcgan"].dir / "template.yaml").read_text().replace("Handler: app.handler", "Handlr: app.handler"))
    bad = subprocess.run([*_cfn_lint(), str(broken)], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "Handlr" in bad.stdout


def test_readme_carries_the_deploy_guide(pkgs):
    assert (ROOT / "docs" / "lambda.md").read_text() == GUIDE
    readme = (pkgs["cgan"].dir / "README.md").read_text()
    assert readme.endswith(GUIDE) and "--no-vendor" in readme
    for step in ("sam deploy --guided", "sam local invoke GeneratorFunction --event events/", "curl", "sam delete"):
        assert step in GUIDE


def test_infogan_codes_match_sampler(tmp_path):
    from ganforge.artifacts.onnx import export_onnx

    build_run(tiny_config("infogan", "builtin:digits", steps=2), tmp_path / "run").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    export_onnx(sampler, tmp_path / "g.onnx")
    gen = aws_lambda.OnnxGenerator(tmp_path / "g.onnx", intra_op_threads=1)  # info from the model's metadata
    categorical = next(c for c in sampler.code_layout if c["kind"] == "categorical")["name"]
    continuous = next(c for c in sampler.code_layout if c["kind"] == "continuous")["name"]
    codes = {categorical: 3, continuous: -0.5}
    want = sampler.generate(3, seed=6, codes=codes, truncation=0.8)
    np.testing.assert_allclose(gen.generate(3, seed=6, codes=codes, truncation=0.8), want.numpy(), atol=1e-5, rtol=0)
    query = {"n": 3, "seed": 6, "truncation": 0.8, "format": "npy", "codes": f"{categorical}:3,{continuous}:-0.5"}
    response = aws_lambda.respond(gen, api_event("GET", "/v1/generate", query=query))
    np.testing.assert_allclose(np.load(io.BytesIO(base64.b64decode(response["body"]))), want.numpy(), atol=1e-5, rtol=0)
    bad = aws_lambda.respond(gen, api_event("POST", "/v1/generate", json_body={"codes": {"zz": 1}}))
    assert bad["statusCode"] == 422 and "no code 'zz'" in bad["body"]
    bad = aws_lambda.respond(gen, api_event("POST", "/v1/generate", json_body={"codes": {categorical: 1.5}}))
    assert bad["statusCode"] == 422 and "categorical" in bad["body"]


def test_stylegan_package_feeds_psi_to_the_graph(tmp_path):
    """A w-space model (stylegan): the handler leaves z unscaled and feeds psi to the graph's `truncation` input,
    the request's or, left out, the model's own (model.truncation), as Sampler does."""
    build_run(tiny_config("stylegan", "builtin:digits", steps=1, model={"truncation": 0.7}), tmp_path / "run").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    build_lambda(sampler, tmp_path / "pkg", vendor=False)
    app = load_app(tmp_path / "pkg", "lambda_app_stylegan")
    info = body_json(call(app, "GET", "/v1/info"))
    assert info["inputs"] == ["z", "truncation"] and info["truncation"] == {"space": "w", "input": "truncation",
                                                                             "default": 0.7}

    def npy(method, path, **kw):
        response = call(app, method, path, **kw)
        assert response["statusCode"] == 200, response["body"]
        return np.load(io.BytesIO(base64.b64decode(response["body"])))

    half = npy("GET", "/v1/generate", query={"n": 3, "seed": 5, "truncation": 0.5, "format": "npy"})
    np.testing.assert_allclose(half, sampler.generate(3, 5, truncation=0.5).numpy(), atol=1e-5, rtol=0)
    default = npy("POST", "/v1/generate", json_body={"n": 3, "seed": 5, "format": "npy"})
    np.testing.assert_allclose(default, sampler.generate(3, 5, truncation=0.7).numpy(), atol=1e-5, rtol=0)
    assert np.abs(half - sampler.generate(3, 5, truncation=1.0).numpy()).max() > 1e-3  # psi reaches the image
    strip = npy("POST", "/v1/interpolate", json_body={"seed_a": 1, "seed_b": 2, "steps": 3, "truncation": 0.5,
                                                      "format": "npy"})
    z = sampler.between_seeds(1, 2, [0.0, 0.5, 1.0], truncation=0.5)
    np.testing.assert_allclose(strip, sampler.generate(3, z=z, truncation=0.5).numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["progan", "fastgan"])
def test_progan_and_fastgan_packages_match_the_sampler(family, tmp_path):
    """The newer families: progan mid-fade-in (its graph holds the level and alpha it stopped at) and fastgan
    (SLE, centre crop) give the Sampler's images; fastgan scales the seed's noise by the request's psi, progan
    (no truncation trick: its G normalises z) answers psi != 1 with a 422 naming the reason."""
    steps = 3 if family == "progan" else 2  # progan: level 0 at step 0, level 1 fades in from step 1 (alpha 0, 0.5)
    build_run(tiny_config(family, "builtin:digits", steps=steps), tmp_path / "run").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    if family == "progan":
        assert (int(sampler.G.level), float(sampler.G.alpha)) == (1, 0.5)  # at full size, mid fade-in
    build_lambda(sampler, tmp_path / "pkg", vendor=False)
    app = load_app(tmp_path / "pkg", f"lambda_app_{family}")
    info = body_json(call(app, "GET", "/v1/info"))
    assert info["family"] == family and info["shape"] == [1, 8, 8] and info["inputs"] == ["z"]
    psi = 0.5 if family == "fastgan" else None  # progan: no truncation trick, so the request leaves psi out
    body = {"n": 3, "seed": 5, "format": "npy", **({"truncation": psi} if psi else {})}
    response = call(app, "POST", "/v1/generate", json_body=body)
    assert response["statusCode"] == 200, response["body"]
    half = np.load(io.BytesIO(base64.b64decode(response["body"])))
    want = sampler.generate(3, 5, truncation=psi)
    np.testing.assert_allclose(half, want.numpy(), atol=1e-5, rtol=0)
    if family == "fastgan":  # psi reaches the image
        assert np.abs(half - sampler.generate(3, 5).numpy()).max() > 1e-4
    else:  # progan: psi 0.5 would change nothing, so it is refused with the reason, GET and POST alike
        assert info["truncation"] == {"space": "none", "reason": sampler.family.truncation_reason}
        for method, where in (("POST", "json_body"), ("GET", "query")):
            refused = call(app, method, "/v1/generate", **{where: {"seed": 5, "truncation": 0.5}})
            assert refused["statusCode"] == 422
            assert json.loads(refused["body"])["detail"].startswith(
                "this progan model has no truncation trick: its generator normalises each latent")
        refused = call(app, "POST", "/v1/interpolate", json_body={"seed_a": 1, "seed_b": 2, "truncation": 0.5})
        assert refused["statusCode"] == 422 and "truncation 1 or leave it out" in refused["body"]
        gen = aws_lambda.OnnxGenerator(tmp_path / "pkg" / "model.onnx", intra_op_threads=1)  # the Python API too
        with pytest.raises(ValueError, match="progan model has no truncation trick"):
            gen.generate(3, 5, truncation=0.5)
        np.testing.assert_allclose(gen.generate(3, 5, truncation=1.0), want.numpy(), atol=1e-5, rtol=0)
    png = response_png(call(app, "GET", "/v1/generate", query={"seed": 5, **({"truncation": psi} if psi else {})}))
    assert_pixels(png, to_uint8(want[:1])[0])  # one 8x8 grey image, the same as the npy's first


def test_requirements_follow_the_model_opset(pkgs, tmp_path):
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    assert lambda_package.requirements(pkgs["dcgan"].dir / "model.onnx")[0] == "onnxruntime>=1.20,<2"  # opset 20
    graph = helper.make_graph([helper.make_node("Identity", ["z"], ["images"])], "g",
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)]), tmp_path / "new.onnx")
    floor = ".".join(onnxruntime.__version__.split(".")[:2])
    assert lambda_package.requirements(tmp_path / "new.onnx")[0] == f"onnxruntime>={floor},<2"


# ---- the event itself: anything but an API Gateway event is a 400 that says what is wrong -----------------

def _without(event: dict, *keys: str) -> dict:
    """A copy of `event` without the dotted `keys` (e.g. "requestContext.http.method")."""
    event = json.loads(json.dumps(event))
    for key in keys:
        *parents, last = key.split(".")
        holder = event
        for parent in parents:
            holder = holder[parent]
        holder.pop(last, None)
    return event


def _with(event: dict, key: str, value) -> dict:
    event = _without(event, key)
    *parents, last = key.split(".")
    holder = event
    for parent in parents:
        holder = holder[parent]
    holder[last] = value
    return event


POST = api_event("POST", "/v1/generate", json_body={"n": 1, "seed": 0})
BAD_EVENTS = [  # (name, event, words in the detail)
    ("no requestContext", _without(POST, "requestContext"), "the event has no requestContext"),
    ("no method", _without(POST, "requestContext.http.method"), "has no requestContext.http.method (nor httpMethod)"),
    ("no path", _without(POST, "rawPath"), "the event has no rawPath (nor path)"),
    ("requestContext str", _with(POST, "requestContext", "ctx"), "event field requestContext must be an object, got str"),
    ("http list", _with(POST, "requestContext.http", []), "event field requestContext.http must be an object, got list"),
    ("method int", _with(POST, "requestContext.http.method", 1), "requestContext.http.method must be a string, got int"),
    ("stage int", _with(POST, "requestContext.stage", 2), "event field requestContext.stage must be a string, got int"),
    ("rawPath int", _with(POST, "rawPath", 5), "event field rawPath must be a string, got int"),
    ("headers str", _with(POST, "headers", "accept: */*"), "event field headers must be an object, got str"),
    ("query list", _with(POST, "queryStringParameters", ["n"]), "queryStringParameters must be an object, got list"),
    ("query int", _with(POST, "queryStringParameters", {"n": 2}), "queryStringParameters.n must be a string, got int"),
    ("body dict", _with(POST, "body", {"n": 1}), "event field body must be a string, got dict"),
    ("base64 str", _with(POST, "isBase64Encoded", "yes"), "event field isBase64Encoded must be true or false, got str"),
    ("list", [POST], "the event must be a JSON object, got list"),
    ("str", "GET /health", "the event must be a JSON object, got str"),
]


@pytest.mark.parametrize("event, words", [b[1:] for b in BAD_EVENTS], ids=[b[0] for b in BAD_EVENTS])
def test_events_of_another_shape_get_400_naming_the_field(event, words):
    """These were 500s (AttributeError, TypeError) or, without a requestContext, served as a GET."""
    def no_model():
        raise AssertionError("a bad event must not load the model")

    response = aws_lambda.respond(no_model, event)
    assert response["statusCode"] == 400
    detail = body_json(response)["detail"]
    assert words in detail and "API Gateway (HTTP API, payload format 2.0)" in detail


def test_v1_events_still_work():
    event = {"httpMethod": "GET", "path": "/prod/health", "requestContext": {"stage": "prod"}, "headers": {}}
    assert body_json(aws_lambda.respond(None, event)) == {"status": "ok"}


def test_huge_sizes_are_refused_fast(pkgs):
    """steps = 10**9 built the whole linspace (24 GB) before the max_n check."""
    app = pkgs["dcgan"].app
    for method, kw in (("GET", {"query": {"seed_a": 0, "seed_b": 1, "steps": 10**9}}),
                       ("POST", {"json_body": {"seed_a": 0, "seed_b": 1, "steps": 10**9}})):
        start = time.perf_counter()
        response = call(app, method, "/v1/interpolate", **kw)
        assert time.perf_counter() - start < 1.0
        assert response["statusCode"] == 422
        assert body_json(response)["detail"] == ("steps = 1000000000 is over this server's maximum of 16; ask for "
                                                 "fewer images per request")


def test_head_is_get_without_the_body(pkgs):
    app = pkgs["dcgan"].app
    for path, kw in (("/health", {}), ("/v1/info", {}), ("/v1/generate", {"query": {"seed": 3, "n": 2}})):
        get, head = (call(app, method, path, **kw) for method in ("GET", "HEAD"))
        for response in (get, head):
            response["headers"].pop("server-timing")
        assert head["statusCode"] == get["statusCode"] == 200 and head["headers"] == get["headers"]
        assert head["body"] == "" and head["isBase64Encoded"] is False and get["body"] != ""


def test_model_failure_is_a_500_with_one_line(pkgs, capsys):
    """A failure of the model itself stays a 500, but the body holds one line; the traceback goes to the log."""
    class Broken:
        info = json.loads((pkgs["dcgan"].dir / "model.json").read_text())

        def latents(self, n, seed, truncation, codes):
            return np.zeros((n, 4), np.float32)

        def run(self, z, y=None):
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION\n  File \"app.py\", line 1, in run")

    response = aws_lambda.respond(Broken(), api_event("POST", "/v1/generate", json_body={"seed": 1}))
    assert response["statusCode"] == 500
    assert body_json(response) == {"detail": "internal error: RuntimeError: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION"}
    assert "Traceback" in capsys.readouterr().err
