"""`ganforge serve` as a real server on loopback: every endpoint, bad input, concurrency, the playground."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.artifacts import Sampler
from ganforge.image import make_grid, to_uint8
from ganforge.train import build_run

from .browser import wait_until
from .conftest import tiny_config

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

MAX_N = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, ckpt: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ganforge", "serve", "--ckpt", str(ckpt), "--port", str(self.port),
             "--max-n", str(MAX_N), "--workers", "2", "--max-body", "4096"],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(log).read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not come up in 60 s")

    def post(self, path: str, body=None, **kw):
        return httpx.post(self.url + path, json=body, timeout=30, **kw)

    def get(self, path: str):
        return httpx.get(self.url + path, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    out = {}
    for family in ("dcgan", "cgan"):
        build_run(tiny_config(family, "builtin:digits", steps=2), root / family).fit()
        out[family] = (Server(root / family, root / f"{family}.log"), Sampler.from_checkpoint(root / family))
    yield out
    for server, _ in out.values():
        server.stop()


def _pixels(png: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    arr = np.asarray(img)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _expected(sampler, n=1, seed=0, **kw) -> np.ndarray:
    return to_uint8(sampler.generate(n, seed, **kw)).numpy()


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # rounding of float noise between threads


def test_health_info_and_openapi(servers):
    server, sampler = servers["cgan"]
    assert server.get("/health").json() == {"status": "ok"}
    info = server.get("/v1/info").json()
    assert info["family"] == "cgan" and info["shape"] == [1, 8, 8] and info["max_n"] == MAX_N
    assert info["n_classes"] == 10 and info["class_names"] == list(sampler.spec.class_names)
    assert info["inputs"] == ["z", "y"] and info["latent"]["width"] == sampler.family.latent_dim
    paths = server.get("/openapi.json").json()["paths"]
    assert {"/health", "/v1/info", "/v1/generate", "/v1/interpolate"} <= set(paths)


def test_generate_png_npy_json_match_the_sampler(servers):
    server, sampler = servers["dcgan"]
    r = server.post("/v1/generate", {"n": 1, "seed": 7})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-seed"] == "7"
    _close(_pixels(r.content)[None], _expected(sampler, 1, 7))
    grid = server.post("/v1/generate", {"n": 4, "seed": 3}).content
    _close(_pixels(grid), make_grid(sampler.generate(4, 3), nrow=4).numpy())
    r = server.post("/v1/generate", {"n": 3, "seed": 5, "truncation": 0.5, "format": "npy"})
    arr = np.load(io.BytesIO(r.content))
    np.testing.assert_allclose(arr, sampler.generate(3, 5, truncation=0.5).numpy(), atol=1e-5, rtol=0)
    body = server.post("/v1/generate", {"n": 2, "seed": 9, "format": "json"}).json()
    assert body["seed"] == 9 and body["n"] == 2 and body["shape"] == [1, 8, 8] and body["classes"] is None
    got = np.stack([_pixels(base64.b64decode(s)) for s in body["images"]])
    _close(got, _expected(sampler, 2, 9))


def test_random_seed_is_echoed_and_reproducible(servers):
    server, sampler = servers["dcgan"]
    r = server.post("/v1/generate", {})
    seed = int(r.headers["x-seed"])
    _close(_pixels(r.content)[None], _expected(sampler, 1, seed))


def test_class_by_index_and_by_name(servers):
    server, sampler = servers["cgan"]
    by_index = server.post("/v1/generate", {"n": 2, "seed": 4, "class": 3, "format": "json"}).json()
    assert by_index["classes"] == [3, 3]
    by_name = server.post("/v1/generate", {"n": 2, "seed": 4, "class": sampler.spec.class_names[3],
                                           "format": "json"}).json()
    assert by_name["images"] == by_index["images"]
    got = np.stack([_pixels(base64.b64decode(s)) for s in by_index["images"]])
    _close(got, _expected(sampler, 2, 4, y=3))
    other = server.post("/v1/generate", {"n": 2, "seed": 4, "class": 5, "format": "json"}).json()
    assert other["images"] != by_index["images"]


def test_interpolate_ends_are_the_seeds(servers):
    server, sampler = servers["dcgan"]
    start = server.post("/v1/interpolate", {"seed_a": 11, "seed_b": 12, "t": 0.0}).content
    end = server.post("/v1/interpolate", {"seed_a": 11, "seed_b": 12, "t": 1.0}).content
    _close(_pixels(start)[None], _expected(sampler, 1, 11))
    _close(_pixels(end)[None], _expected(sampler, 1, 12))
    mid = _pixels(server.post("/v1/interpolate", {"seed_a": 11, "seed_b": 12, "t": 0.5}).content)
    assert not np.array_equal(mid, _pixels(start)) and not np.array_equal(mid, _pixels(end))
    strip = server.post("/v1/interpolate", {"seed_a": 11, "seed_b": 12, "steps": 5, "format": "npy"})
    arr = np.load(io.BytesIO(strip.content))
    assert arr.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(arr[0], sampler.generate(1, 11)[0].numpy(), atol=1e-5, rtol=0)


BAD = [
    ({"n": -1}, 422, "n must be >= 1, got -1"),
    ({"n": MAX_N + 1}, 422, f"maximum of {MAX_N}"),
    ({"n": "abc"}, 422, "n must be an integer >= 1, got 'abc'"),
    ({"n": 1.5}, 422, "n must be an integer >= 1, got 1.5"),
    ({"seed": -3}, 422, "seed"),
    ({"seed": 2**40}, 422, "seed"),
    ({"class": 10}, 422, "does not exist"),
    ({"class": "zebra"}, 422, "unknown class 'zebra'"),
    ({"truncation": 0}, 422, "truncation"),
    ({"format": "gif"}, 422, "format"),
    ({"codes": {"c0": 1}}, 422, "no latent codes"),
    ({"bogus": 1}, 422, "unknown parameter 'bogus'"),
    ([1, 2], 422, "body"),
]


@pytest.mark.parametrize("body,status,message", BAD)
def test_bad_input_gets_4xx_with_a_message(servers, body, status, message):
    server, _ = servers["cgan"]
    r = server.post("/v1/generate", body)
    assert r.status_code == status
    assert message in r.json()["detail"]


def test_malformed_huge_and_misrouted_requests_leave_the_server_up(servers):
    server, _ = servers["cgan"]
    r = httpx.post(server.url + "/v1/generate", content=b'{"n": 2,', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    huge = json.dumps({"n": 1, "pad": "x" * 100_000})
    r = httpx.post(server.url + "/v1/generate", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "4096 bytes" in r.json()["detail"]

    def chunks():  # no content-length: the limit counts streamed bytes
        for _ in range(50):
            yield b" " * 1000

    r = httpx.post(server.url + "/v1/generate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert server.get("/v1/nothing").status_code == 404
    assert server.get("/v1/generate").status_code == 405
    r = server.post("/v1/interpolate", {"seed_a": 1, "seed_b": 2, "t": 0.5, "steps": 3})
    assert r.status_code == 422 and "not both" in r.json()["detail"]
    assert server.proc.poll() is None and server.get("/health").status_code == 200


def test_concurrent_requests_each_get_their_own_seed(servers):
    server, sampler = servers["dcgan"]
    seeds = list(range(100, 132))
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda s: server.post("/v1/generate", {"n": 2, "seed": s, "format": "npy"}), seeds))
    for seed, r in zip(seeds, replies):
        assert r.status_code == 200
        np.testing.assert_allclose(np.load(io.BytesIO(r.content)), sampler.generate(2, seed).numpy(),
                                   atol=1e-5, rtol=0)


def test_playground_page_is_served(servers):
    server, _ = servers["dcgan"]
    page = server.get("/")
    assert page.status_code == 200 and "playground.js" in page.text
    js = server.get("/playground.js")
    assert js.status_code == 200 and "/v1/generate" in js.text


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
    return path


def open_playground(p, chromium: str, url: str, extra_args: tuple[str, ...] = ()):
    """(browser, page, page errors list) with the playground at `url` loaded and ready."""
    browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                *extra_args])
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    wait_until(page, "window.playground && window.playground.ready === true", timeout=30)
    return browser, page, errors


def test_playground_in_headless_chromium(servers, tmp_path):
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    server, sampler = servers["cgan"]
    shots = Path(os.environ.get("GANFORGE_SCREENSHOTS", tmp_path))
    with sync_playwright() as p:
        browser, page, errors = open_playground(p, chromium, server.url)

        def png() -> np.ndarray:
            return _pixels(base64.b64decode(page.evaluate("window.playground.lastPng")))

        def settle(before: int) -> None:
            wait_until(page, f"window.playground.requests > {before} && !window.playground.busy")

        first = png()
        _close(first[None], _expected(sampler, 1, 0, y=0))
        n = page.evaluate("window.playground.requests")
        page.fill("#seed", "5")
        page.click("#generate")
        settle(n)
        seeded = png()
        _close(seeded[None], _expected(sampler, 1, 5, y=0))
        n = page.evaluate("window.playground.requests")
        page.select_option("#class", "7")
        settle(n)
        seven = png()
        _close(seven[None], _expected(sampler, 1, 5, y=7))
        assert not np.array_equal(seven, seeded)
        page.screenshot(path=str(shots / "playground_class.png"))
        n = page.evaluate("window.playground.requests")
        page.fill("#seed-a", "5")
        page.fill("#seed-b", "6")
        page.locator("#t").fill("1")
        settle(n)
        _close(png()[None], _expected(sampler, 1, 6, y=7))
        n = page.evaluate("window.playground.requests")
        page.locator("#t").fill("0.5")
        settle(n)
        half = png()
        assert not np.array_equal(half, seven)
        page.screenshot(path=str(shots / "playground_interpolate.png"))
        n = page.evaluate("window.playground.requests")
        page.click("#random")
        settle(n)
        assert page.get_attribute("#download", "href").startswith("blob:")
        with page.expect_download() as dl:
            page.click("#download")
        saved = tmp_path / "download.png"
        dl.value.save_as(saved)
        assert saved.read_bytes() == base64.b64decode(page.evaluate("window.playground.lastPng"))
        browser.close()
    assert errors == []
    assert server.proc.poll() is None


def test_interpolation_keeps_one_class_along_the_strip(servers):
    server, sampler = servers["cgan"]
    body = server.post("/v1/interpolate", {"seed_a": 1, "seed_b": 2, "steps": 4, "format": "json"}).json()
    assert body["classes"] == [0, 0, 0, 0]
    body = server.post("/v1/interpolate", {"seed_a": 1, "seed_b": 2, "steps": 3, "class": 6, "format": "json"}).json()
    assert body["classes"] == [6, 6, 6]
    got = np.stack([_pixels(base64.b64decode(s)) for s in body["images"]])
    z = sampler.between_seeds(1, 2, [0.0, 0.5, 1.0])
    _close(got, to_uint8(sampler.generate(3, z=z, y=6)).numpy())


def test_head_answers_wherever_get_does(servers):
    """HEAD on /health and / answered 405: it is GET without the body, with the same headers."""
    server, _ = servers["cgan"]
    for path in ("/health", "/", "/v1/info", "/playground.js", "/openapi.json"):
        get, head = httpx.get(server.url + path, timeout=30), httpx.head(server.url + path, timeout=30)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and get.content, path
        for name in ("content-type", "content-length"):
            assert head.headers[name] == get.headers[name], (path, name)
    assert httpx.head(server.url + "/v1/generate", timeout=30).status_code == 405  # no GET there either


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])


def test_huge_steps_are_refused_fast_and_allocate_nothing(servers):
    """steps = 10**9 built the whole linspace before the max-n check: the server grew to 24 GB."""
    server, _ = servers["dcgan"]
    if not Path(f"/proc/{server.proc.pid}/status").exists():
        pytest.skip("reads the server's memory from /proc")
    before = _rss_kb(server.proc.pid)
    start = time.perf_counter()
    r = server.post("/v1/interpolate", {"seed_a": 0, "seed_b": 1, "steps": 1_000_000_000})
    elapsed = time.perf_counter() - start
    assert r.status_code == 422
    assert r.json()["detail"] == f"steps = 1000000000 is over this server's maximum of {MAX_N}; ask for fewer " \
                                 f"images per request"
    assert elapsed < 2.0 and _rss_kb(server.proc.pid) - before < 50_000, (elapsed, before)


STRICT = [  # JSON types are strict: a bool is no number, "2" and 2.0 are no integers
    ({"n": True}, 422, "n must be an integer >= 1, got True"),
    ({"n": "2"}, 422, "n must be an integer >= 1, got '2'"),
    ({"n": 2.0}, 422, "n must be an integer >= 1, got 2.0"),
    ({"seed": "7"}, 422, "seed must be an integer in 0..2147483647, got '7'"),
    ({"truncation": True}, 422, "truncation must be a number in (0, 1], got True"),
    ({"class": 2.0}, 422, "class 2.0 does not exist; use 0..9"),
]


@pytest.mark.parametrize("body,status,message", STRICT, ids=[json.dumps(b[0]) for b in STRICT])
def test_strict_types(servers, body, status, message):
    server, _ = servers["cgan"]
    r = server.post("/v1/generate", body)
    assert (r.status_code, r.json()["detail"][:len(message)]) == (status, message)


def test_deeply_nested_body_is_a_400(servers):
    """4,000 nested [ overflowed the JSON parser's stack: a RecursionError, answered 500."""
    server, _ = servers["cgan"]
    r = httpx.post(server.url + "/v1/generate", content=b"[" * 4000, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("the body nests arrays or objects too deeply")
    assert server.get("/health").status_code == 200


def test_stylegan_truncation_is_psi_in_w(tmp_path):
    """A w-space model (stylegan) gets the request's psi in G, z unscaled; left out, psi is its model.truncation.
    (In process, through the ASGI app: the subprocess server adds nothing for this.)"""
    import asyncio

    import torch

    from ganforge.latent import seeded_latents
    from ganforge.serve.http import create_app

    build_run(tiny_config("stylegan", steps=1, model={"truncation": 0.7}), tmp_path / "run").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    app = create_app(sampler, max_n=MAX_N, workers=1)

    async def calls():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return [await client.get("/v1/info")] + [await client.post(path, json=body) for path, body in (
                ("/v1/generate", {"n": 3, "seed": 5, "truncation": 0.5, "format": "npy"}),
                ("/v1/generate", {"n": 3, "seed": 5, "format": "npy"}),
                ("/v1/interpolate", {"seed_a": 1, "seed_b": 2, "steps": 3, "truncation": 0.5, "format": "npy"}))]

    info, half, default, strip = asyncio.run(calls())
    assert info.json()["truncation"] == {"space": "w", "input": "truncation", "default": 0.7}
    assert info.json()["inputs"] == ["z", "truncation"]
    z = torch.from_numpy(seeded_latents(5, 3, sampler.noise_dim))  # as drawn: no psi on z
    with torch.no_grad():
        want = {psi: sampler.G(z, psi).numpy() for psi in (0.5, 0.7, 1.0)}
        along = sampler.G(sampler.between_seeds(1, 2, [0.0, 0.5, 1.0]), 0.5).numpy()
    np.testing.assert_allclose(np.load(io.BytesIO(half.content)), want[0.5], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.load(io.BytesIO(default.content)), want[0.7], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.load(io.BytesIO(strip.content)), along, atol=1e-6, rtol=0)
    assert np.abs(want[0.5] - want[1.0]).max() > 1e-3  # psi reaches the image


@pytest.mark.parametrize("family", ["progan", "fastgan"])
def test_progan_and_fastgan_answer_as_the_sampler(family, tmp_path):
    """The families added last, in process through the ASGI app: info, an npy batch and a PNG equal to the
    Sampler's (progan mid fade-in, its G at level 1 with alpha 0.5); fastgan's truncated by psi 0.5, progan's
    without psi, since it has no truncation trick and answers psi 0.5 with a 422 naming the reason."""
    import asyncio

    from ganforge.serve.http import create_app

    steps = 3 if family == "progan" else 2  # progan: level 1 fades in from step 1 (alpha 0, then 0.5)
    build_run(tiny_config(family, steps=steps), tmp_path / "run").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    if family == "progan":
        assert (int(sampler.G.level), float(sampler.G.alpha)) == (1, 0.5)
    app = create_app(sampler, max_n=MAX_N, workers=1)

    psi = {"truncation": 0.5} if family == "fastgan" else {}

    async def calls():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return [await client.get("/v1/info")] + [await client.post("/v1/generate", json=body) for body in (
                {"n": 3, "seed": 5, "format": "npy", **psi}, {"n": 1, "seed": 5, **psi},
                {"n": 1, "seed": 5, "truncation": 0.5}, {"n": 1, "seed": 5, "truncation": 1})]

    info, npy, png, half, one = asyncio.run(calls())
    assert info.json()["family"] == family and info.json()["shape"] == [1, 8, 8] and info.json()["inputs"] == ["z"]
    want = sampler.generate(3, 5, **psi)
    if family == "progan":  # psi would change nothing: refused, with the reason; psi 1 is the plain image
        assert info.json()["truncation"]["space"] == "none" and half.status_code == 422
        assert half.json()["detail"].startswith("this progan model has no truncation trick: its generator normalises")
        assert one.status_code == 200 and one.content == png.content
    else:
        assert half.status_code == 200 and half.content == png.content
    np.testing.assert_allclose(np.load(io.BytesIO(npy.content)), want.numpy(), atol=1e-5, rtol=0)
    assert png.headers["content-type"] == "image/png" and png.headers["x-seed"] == "5"
    _close(_pixels(png.content)[None], to_uint8(want[:1]).numpy())


def _png_b64(x) -> str:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(x).numpy()[0, 0]).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_project_and_edit_round_trip(servers):
    server, sampler = servers["dcgan"]
    tools = server.get("/v1/info").json()["latent_tools"]
    assert tools["space"] == "z" and tools["width"] == sampler.family.latent_dim and tools["directions"]
    target = sampler.generate(1, 3)
    r = server.post("/v1/project", {"image": _png_b64(target), "steps": 30})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["space"] == "z" and len(body["latent"]) == tools["width"] and body["init"] == "search"
    projected = _pixels(base64.b64decode(body["image"]))
    mse = ((projected.astype(float) / 127.5 - 1 - target.numpy()[0]) ** 2).mean()
    assert mse == pytest.approx(body["pixel_mse"], abs=0.01)
    # the latent redraws the projection at t = 0; a direction moves it
    at0 = server.post("/v1/edit", {"latent": body["latent"], "direction": "sefa:0", "t": 0})
    assert at0.status_code == 200
    _close(_pixels(at0.content), projected)
    moved = server.post("/v1/edit", {"latent": body["latent"], "direction": "sefa:0", "t": 3})
    assert not np.array_equal(_pixels(moved.content), _pixels(at0.content))
    # a data: URL works too, and the upload limit is /v1/project's own (the server's --max-body is 4096)
    big = np.random.default_rng(0).integers(0, 256, (96, 96), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert len(url) > 4096
    assert server.post("/v1/project", {"image": url, "steps": 1}).status_code == 200
    assert server.post("/v1/generate", {"n": 1, "text": url}).status_code == 413


@pytest.mark.parametrize("path,body,message", [
    ("/v1/project", {"image": "not base64!"}, "not valid base64"),
    ("/v1/project", {"image": base64.b64encode(b"GIF89a nonsense").decode()}, "could not be decoded"),
    ("/v1/project", {"image": "", "steps": 1}, "base64-encoded PNG"),
    ("/v1/project", {"image": "AAAA", "steps": 100000}, '"steps" must be an integer from 1 to 300'),
    ("/v1/project", {"image": "AAAA", "seed": 1}, "takes image and steps"),
    ("/v1/edit", {"latent": [0.0], "direction": "sefa:0"}, "must be a list of"),
    ("/v1/edit", {"latent": "WIDTH", "direction": "sefa:99"}, "sefa:K needs K in"),
    ("/v1/edit", {"latent": "WIDTH", "direction": "class:0:1"}, "need a classifier"),
    ("/v1/edit", {"latent": "WIDTH", "direction": "sefa:0", "t": 50}, '"t" must be a number from -10 to 10'),
])
def test_project_and_edit_refuse_bad_input(servers, path, body, message):
    server, sampler = servers["dcgan"]
    if body.get("latent") == "WIDTH":  # a latent of the right width
        body = {**body, "latent": [0.0] * sampler.family.latent_dim}
    r = server.post(path, body)
    assert r.status_code == 422 and message in r.json()["detail"], r.text


def test_conditional_models_have_no_latent_tools(servers):
    server, _ = servers["cgan"]
    assert "latent_tools" not in server.get("/v1/info").json()
    assert server.post("/v1/project", {"image": "AAAA"}).status_code == 404


def test_playground_projects_an_upload_and_edits_it(servers, tmp_path):
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    server, sampler = servers["dcgan"]
    upload = tmp_path / "mine.png"
    upload.write_bytes(base64.b64decode(_png_b64(sampler.generate(1, 4))))
    with sync_playwright() as p:
        browser, page, errors = open_playground(p, chromium, server.url)
        assert page.is_visible("#edit-box") and page.is_disabled("#edit-t")
        page.set_input_files("#upload", str(upload))
        page.fill("#project-steps", "20")
        page.click("#project")
        wait_until(page, "!!window.playground.projected", timeout=60)
        latent = page.evaluate("window.playground.projected.latent")
        shown = _pixels(base64.b64decode(page.evaluate("window.playground.lastPng")))
        direct = server.post("/v1/edit", {"latent": latent, "direction": "sefa:0", "t": 0})
        _close(shown, _pixels(direct.content))
        n = page.evaluate("window.playground.requests")
        page.locator("#edit-t").fill("2")
        wait_until(page, f"window.playground.requests > {n} && !window.playground.busy")
        edited = _pixels(base64.b64decode(page.evaluate("window.playground.lastPng")))
        _close(edited, _pixels(server.post("/v1/edit", {"latent": latent, "direction": "sefa:0", "t": 2}).content))
        browser.close()
    assert errors == []
