"""The static site (`ganforge export --site`) in headless Chromium: same pixels as the Python sampler.

Needs Debian's chromium, the playwright Python package (it drives that chromium; it never downloads a
browser) and npm (the site bundles onnxruntime-web from the npm registry); skipped with the fix otherwise.
The latent.js checks need only node.
"""

from __future__ import annotations

import functools
import importlib.util
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from ganforge.image import to_uint8
from ganforge.latent import between, seeded_latents, set_codes
from ganforge.serve import site as site_mod
from ganforge.serve.site import ORT_FILES, ORT_WEB_VERSION, SiteError, build_site, fetch_ort_web

from .browser import page_value

LATENT_JS = Path(site_mod.__file__).parent / "static" / "latent.js"
# conftest points GANFORGE_CACHE at a temporary folder for each test; onnxruntime-web (~14 MB) is fetched
# once into the user's real cache instead, read before that fixture runs
_REAL_NPM_CACHE = (Path(os.environ["GANFORGE_CACHE"]) if os.environ.get("GANFORGE_CACHE")
                   else Path.home() / ".cache" / "ganforge") / "npm"
PIXEL_TOLERANCE = 2  # levels of 255; measured: 0 on every image here (onnxruntime-web vs torch, 1-3 channel 8x8)


def _chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _browser_or_skip():
    if _chromium() is None:
        pytest.skip("needs Debian's chromium: apt-get install chromium")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("needs the playwright Python package: pip install playwright (no browser download needed)")
    cached = (_REAL_NPM_CACHE / f"onnxruntime-web-{ORT_WEB_VERSION}")
    if shutil.which("npm") is None and not all((cached / f).is_file() for f in ORT_FILES):
        pytest.skip("needs npm to fetch onnxruntime-web: apt-get install npm")


# ---------------------------------------------------------------- latent.js vs ganforge.latent (node)

CODES = [{"name": "c0", "kind": "categorical", "size": 10}, {"name": "c1", "kind": "continuous", "size": 1},
         {"name": "c2", "kind": "continuous", "size": 1}]
NODE_SCRIPT = """
const L = require(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
const out = cases.map(c => {
  const z = L.seededLatents(c.seed, c.n, c.noise, c.codes, c.trunc);
  const fixed = L.setCodes(z, c.codes, c.noise, c.fix);
  const w = L.latentWidth(c.noise, c.codes);
  const mid = L.between(z.slice(0, w), z.slice((c.n - 1) * w, c.n * w), c.t, c.noise);
  return {z: Array.from(z), fixed: Array.from(fixed), mid: Array.from(mid)};
});
console.log(JSON.stringify(out));
"""
CASES = [
    {"seed": 0, "n": 3, "noise": 7, "codes": [], "trunc": 1.0, "fix": {}, "t": 0.5},
    {"seed": 12345, "n": 4, "noise": 62, "codes": CODES, "trunc": 0.7, "fix": {"c0": 3, "c1": -0.25}, "t": 0.3},
    {"seed": 2**31 - 1, "n": 2, "noise": 100, "codes": CODES[:1], "trunc": 0.05, "fix": {"c0": 9}, "t": 0.9},
    {"seed": 77, "n": 2, "noise": 1, "codes": CODES[1:], "trunc": 1.0, "fix": {"c2": 1.5}, "t": 0.0},
]


def test_latent_js_matches_python():
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node to run latent.js: apt-get install nodejs")
    done = subprocess.run([node, "-e", NODE_SCRIPT, str(LATENT_JS), json.dumps(CASES)],
                          capture_output=True, text=True, timeout=60, check=True)
    for case, got in zip(CASES, json.loads(done.stdout)):
        z = seeded_latents(case["seed"], case["n"], case["noise"], case["codes"], case["trunc"])
        np.testing.assert_allclose(np.array(got["z"]).reshape(z.shape), z, rtol=0, atol=1e-6)
        fixed = set_codes(z, case["codes"], case["noise"], case["fix"])
        np.testing.assert_allclose(np.array(got["fixed"]).reshape(z.shape), fixed, rtol=0, atol=1e-6)
        np.testing.assert_allclose(np.array(got["mid"]), between(z[0], z[-1], case["t"], case["noise"]),
                                   rtol=0, atol=1e-6)
    # the recipe really draws N(0, 1) noise (not a constant that would match trivially)
    big = np.array(json.loads(subprocess.run([node, "-e", NODE_SCRIPT, str(LATENT_JS), json.dumps(
        [{"seed": 5, "n": 200, "noise": 50, "codes": [], "trunc": 1.0, "fix": {}, "t": 0.5}])],
        capture_output=True, text=True, timeout=60, check=True).stdout)[0]["z"])
    assert big.mean() == pytest.approx(0.0, abs=0.03) and big.std() == pytest.approx(1.0, abs=0.03)


# ---------------------------------------------------------------- the error when onnxruntime-web can't be had

def test_missing_npm_and_no_cache_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "empty-cache"))
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "npm" else real_which(name, *a, **k))
    with pytest.raises(SiteError, match=r"npm is not installed.*apt-get install npm.*ort_dir="):
        build_site(_FakeSampler(), tmp_path / "site")
    assert not (tmp_path / "site").exists()  # it fails before writing anything
    with pytest.raises(SiteError, match=r"ort_dir .* lacks ort\.wasm\.min\.js"):
        fetch = tmp_path / "not-ort"
        fetch.mkdir()
        build_site(_FakeSampler(), tmp_path / "site", ort_dir=fetch)


def test_npm_failure_names_the_fix(tmp_path, monkeypatch):
    """An offline npm (here a stand-in that fails the way npm does) gives an error with the way out."""
    fake_npm = tmp_path / "npm"
    fake_npm.write_text("#!/bin/sh\necho 'npm error code ENOTFOUND' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(fake_npm) if name == "npm" else real_which(name, *a, **k))
    with pytest.raises(SiteError, match=r"ENOTFOUND.*registry is reachable.*ort_dir="):
        fetch_ort_web(cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / f"onnxruntime-web-{ORT_WEB_VERSION}").exists()  # nothing half-written


class _FakeSampler:
    """Enough of a Sampler for build_site's checks, which come before any export."""

    is_translation = False
    takes_text = False

    class spec:  # noqa: N801
        kind, shape = "image", (1, 8, 8)

    class family:  # noqa: N801
        name = "dcgan"


def test_points_models_get_a_clear_error(tmp_path):
    fake = _FakeSampler()
    fake.spec = type("spec", (), {"kind": "points", "shape": (2,)})
    with pytest.raises(SiteError, match="draws images.*--onnx"):
        build_site(fake, tmp_path / "site", ort_dir=tmp_path)


# ---------------------------------------------------------------- the site in Chromium

class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream"}

    def log_message(self, *args):
        pass


def _serve(folder: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _spread(sampler) -> None:
    """Scale G's weights so the 2-step model's images span [-1, 1] (it starts near a flat grey, where a
    2-level tolerance would hide anything); the browser and Python then run the same scaled generator.
    A spectrally normalised G (fastgan) would divide the scale out again: its weights are fixed first."""
    import torch
    from torch.nn.utils import parametrize

    from ganforge.train.ema import standing_statistics

    for m in sampler.G.modules():
        for name in list(getattr(m, "parametrizations", {})):
            parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    with torch.no_grad():
        for p in sampler.G.parameters():
            if p.dim() > 1:
                p.mul_(5.0)
    # BatchNorm statistics for the scaled weights (else eval mode amplifies each layer 5x and gates saturate)
    standing_statistics(sampler.G, sampler.family, batch_size=16)


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """A tiny dcgan, cgan, infogan, stylegan, progan (mid fade-in) and fastgan on builtin:digits, each exported as
    a site and served statically."""
    _browser_or_skip()
    from ganforge.artifacts import Sampler
    from ganforge.train import build_run
    from tests.conftest import tiny_config

    ort_dir = fetch_ort_web(ORT_WEB_VERSION, cache=_REAL_NPM_CACHE)
    root = tmp_path_factory.mktemp("sites")
    out, servers = {}, []
    for family in ("dcgan", "cgan", "infogan", "stylegan", "progan", "fastgan"):
        model = {"truncation": 0.7} if family == "stylegan" else {}  # a default psi the page must start from
        steps = 3 if family == "progan" else 2  # progan: level 1 (8x8) fading in, alpha 0.5, at the last step
        build_run(tiny_config(family, "builtin:digits", steps=steps, model=model), root / family).fit()
        sampler = Sampler.from_checkpoint(root / family)
        _spread(sampler)
        if family == "fastgan":  # its batch-normed maps keep some seeds near grey: a steeper last conv
            import torch

            with torch.no_grad():  # 8x: seed 1234's image then spans about 150 of the 255 levels
                sampler.G.to_image[0].weight.mul_(8.0)
        if family == "stylegan":  # an average w apart from each w(z), so psi visibly moves every image
            import torch

            G, z = sampler.G, torch.randn(256, sampler.G.latent_dim, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                G.mapping.w_avg.copy_(G.mapping(z).mean(0))
        report = build_site(sampler, root / f"{family}-site", ort_dir=ort_dir)
        server, url = _serve(root / f"{family}-site")
        servers.append(server)
        out[family] = {"sampler": sampler, "report": report, "url": url}
    yield out
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(sites):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=_chromium(), args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _open(browser, url):
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page_value(page, "window.ganforge.ready.then(() => true)")  # (tests/browser.py: why not page.evaluate)
    page_value(page, "window.ganforge.settled().then(() => true)")
    return page, errors


def _pixels(page, js, arg=None) -> np.ndarray:
    got = page_value(page, f"({js}).then(r => ({{px: Array.from(r.pixels), shape: r.shape}}))", arg)
    return np.array(got["px"], dtype=np.int16).reshape(got["shape"])  # (H, W, C)


def _shown(page) -> np.ndarray:
    """What the canvas shows now, (H, W, C)."""
    return _pixels(page, "window.ganforge.settled()")


MEASURED: list[int] = []  # max abs difference (levels) of every browser-vs-Python comparison


def _assert_same_image(browser_px: np.ndarray, python_px: np.ndarray) -> None:
    assert python_px.max() - python_px.min() > 100, "a flat test image would make the comparison meaningless"
    MEASURED.append(int(np.abs(browser_px - python_px).max()))
    np.testing.assert_allclose(browser_px, python_px, rtol=0, atol=PIXEL_TOLERANCE)


def _python(sampler, **kw) -> np.ndarray:
    return to_uint8(sampler.generate(1, **kw))[0].permute(1, 2, 0).numpy().astype(np.int16)


def _python_between(sampler, a, b, t) -> np.ndarray:
    z = sampler.between_seeds(a, b, [t])
    return to_uint8(sampler.generate(1, z=z))[0].permute(1, 2, 0).numpy().astype(np.int16)


def test_site_files_and_size(sites):
    report = sites["dcgan"]["report"]
    files = report["files"]
    for name in ("index.html", "app.js", "latent.js", "model.onnx", "model.json", "model_card.json",
                 "model_card.md", *(f"ort/{f}" for f in ORT_FILES)):
        assert files.get(name, 0) > 0, name
    assert not any("jsep" in f or "webgpu" in f or "asyncify" in f or "jspi" in f for f in files)
    assert report["total_mb"] == pytest.approx(sum(files.values()) / 2**20, abs=0.01)
    assert report["total_mb"] < 20 and report["ort_version"] == ORT_WEB_VERSION
    assert report["onnx"]["parity_max_abs_diff"] <= 1e-4
    info = json.loads((Path(report["index"]).parent / "model.json").read_text())
    assert info["latent"]["noise_dim"] == sites["dcgan"]["sampler"].noise_dim and info["conditional"] is False


def test_cached_runtime_needs_no_npm(sites, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    folder = fetch_ort_web(ORT_WEB_VERSION, cache=_REAL_NPM_CACHE)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*ORT_FILES, "package.json"])
    assert json.loads((folder / "package.json").read_text())["version"] == ORT_WEB_VERSION


def test_dcgan_page_matches_python_sampler(sites, browser):
    sampler, url = sites["dcgan"]["sampler"], sites["dcgan"]["url"]
    page, errors = _open(browser, url)
    assert page.locator("#status").inner_text() == "Ready"
    assert page.locator("#class-row").is_hidden()
    # the first render is seed 0 from the seed field
    initial = _shown(page)
    _assert_same_image(initial, _python(sampler, seed=0))
    # through the UI: type a seed, click Generate
    page.fill("#seed", "1234")
    page.click("#generate")
    shown = _shown(page)
    want = _python(sampler, seed=1234)
    _assert_same_image(shown, want)
    assert "seed 1234" in page.locator("#caption").inner_text()
    assert page.locator("#download").get_attribute("href").startswith("data:image/png;base64,")
    # the API, with truncation
    for seed, trunc in ((7, 1.0), (99, 0.5)):
        got = _pixels(page, "window.ganforge.generate(a)", {"seed": seed, "truncation": trunc})
        _assert_same_image(got, _python(sampler, seed=seed, truncation=trunc))
    other = _pixels(page, "window.ganforge.generate(a)", {"seed": 1235})
    assert np.abs(other - shown).max() > 10  # a different seed is a different image
    assert errors == []
    page.close()


@pytest.mark.parametrize("family", ["progan", "fastgan"])
def test_progan_and_fastgan_pages_match_python_sampler(sites, browser, family):
    """The families added last: the first render, a typed seed and an API call as in Python (fastgan truncated
    by psi 0.5; progan has no truncation trick, so its page hides the control and its API refuses psi 0.5)."""
    sampler, url = sites[family]["sampler"], sites[family]["url"]
    if family == "progan":
        assert (int(sampler.G.level), float(sampler.G.alpha)) == (1, 0.5)  # the graph holds the fade-in blend
    page, errors = _open(browser, url)
    assert page.locator("#status").inner_text() == "Ready"
    _assert_same_image(_shown(page), _python(sampler, seed=0))
    page.fill("#seed", "1234")
    page.click("#generate")
    shown = _shown(page)
    _assert_same_image(shown, _python(sampler, seed=1234))
    assert "seed 1234" in page.locator("#caption").inner_text()
    psi = 0.5 if family == "fastgan" else 1.0
    got = _pixels(page, "window.ganforge.generate(a)", {"seed": 99, "truncation": psi})
    _assert_same_image(got, _python(sampler, seed=99, truncation=psi))
    assert page.locator("#truncation").is_visible() == (family == "fastgan")
    if family == "progan":  # the Python sampler's refusal, in the page's words
        with pytest.raises(AssertionError, match="progan has no truncation trick: its generator normalises"):
            page_value(page, "window.ganforge.generate(a)", {"seed": 99, "truncation": 0.5})
    assert np.abs(_pixels(page, "window.ganforge.generate(a)", {"seed": 1235}) - shown).max() > 10
    assert errors == []
    page.close()

def test_cgan_class_picker(sites, browser):
    sampler, url = sites["cgan"]["sampler"], sites["cgan"]["url"]
    page, errors = _open(browser, url)
    options = page.locator("#class option").all_inner_texts()
    assert options == [f"{k}: {name}" for k, name in enumerate(sampler.spec.class_names)]
    page.fill("#seed", "5")
    shown = {}
    for k in (0, 3):
        page.select_option("#class", str(k))
        shown[k] = _shown(page)
        _assert_same_image(shown[k], _python(sampler, seed=5, y=k))
    assert np.abs(shown[0] - shown[3]).max() > 10  # the class changes the image
    got = _pixels(page, "window.ganforge.generate(a)", {"seed": 8, "cls": 9, "truncation": 0.8})
    _assert_same_image(got, _python(sampler, seed=8, y=9, truncation=0.8))
    assert errors == []
    page.close()


def test_text_model_page_offers_its_captions(sites, browser, tmp_path):
    """A text model's page offers the captions it keeps (no encoder download) and draws what Python draws."""
    from ganforge.artifacts import Sampler
    from ganforge.train import build_run
    from tests.conftest import tiny_config

    build_run(tiny_config("gan-int-cls", "builtin:digits-captions", steps=2), tmp_path / "run").fit()
    sampler = Sampler.from_checkpoint(tmp_path / "run")
    _spread(sampler)
    _spread(sampler)  # the text model's 8x8 images need the steeper weights to span the range
    build_site(sampler, tmp_path / "site", ort_dir=fetch_ort_web(ORT_WEB_VERSION, cache=_REAL_NPM_CACHE))
    assert not (tmp_path / "site" / "model.text.onnx").exists()  # no 90 MB encoder in the page
    info = json.loads((tmp_path / "site" / "model.json").read_text())
    captions = sampler.G.preview_captions
    assert [c["text"] for c in info["site"]["captions"]] == captions and "90 MB" in info["site"]["text"]
    server, url = _serve(tmp_path / "site")
    try:
        page, errors = _open(browser, url)
        assert page.locator("#prompt option").all_inner_texts() == captions
        assert page.locator("#class-row").is_hidden()
        page.fill("#seed", "5")
        shown = {}
        for k in (0, 7):
            page.select_option("#prompt", str(k))
            shown[k] = _shown(page)
            _assert_same_image(shown[k], _python(sampler, seed=5, text=sampler.G.preview[k]))
        assert np.abs(shown[0] - shown[7]).max() > 10  # the caption changes the image
        got = _pixels(page, "window.ganforge.generate(a)", {"seed": 8, "caption": 3})
        _assert_same_image(got, _python(sampler, seed=8, text=sampler.G.preview[3]))
        assert errors == []
        page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_infogan_code_controls(sites, browser):
    sampler, url = sites["infogan"]["sampler"], sites["infogan"]["url"]
    page, errors = _open(browser, url)
    layout = sampler.code_layout
    categorical = next(c["name"] for c in layout if c["kind"] == "categorical")
    continuous = next(c["name"] for c in layout if c["kind"] == "continuous")
    page.fill("#seed", "3")
    page.click("#generate")
    seed_only = _shown(page)
    _assert_same_image(seed_only, _python(sampler, seed=3))
    page.select_option(f"#code-{categorical}", "4")
    page.evaluate("(id) => { const s = document.getElementById(id); s.value = '1.5'; "
                  "s.dispatchEvent(new Event('input', {bubbles: true})); }", f"code-{continuous}")
    fixed = _shown(page)
    _assert_same_image(fixed, _python(sampler, seed=3, codes={categorical: 4, continuous: 1.5}))
    assert np.abs(fixed - seed_only).max() > 5  # the codes reach the generator
    assert page.locator(f"#fix-{continuous}").is_checked()
    got = _pixels(page, "window.ganforge.generate(a)", {"seed": 9, "truncation": 0.5, "codes": {categorical: 0}})
    _assert_same_image(got, _python(sampler, seed=9, truncation=0.5, codes={categorical: 0}))
    assert errors == []
    page.close()


def test_stylegan_page_feeds_psi_to_the_graph(sites, browser):
    """A w-space model: z stays as drawn and psi is the graph's `truncation` input, starting at model.truncation."""
    sampler, url = sites["stylegan"]["sampler"], sites["stylegan"]["url"]
    page, errors = _open(browser, url)
    assert page.locator("#truncation").input_value() == "0.7"
    assert "truncation in w" in page.locator("#subtitle").inner_text()
    _assert_same_image(_shown(page), _python(sampler, seed=0))  # the first render: psi = model.truncation
    shown = {}
    for psi in (1.0, 0.5):
        shown[psi] = _pixels(page, "window.ganforge.generate(a)", {"seed": 99, "truncation": psi})
        _assert_same_image(shown[psi], _python(sampler, seed=99, truncation=psi))
    assert np.abs(shown[1.0] - shown[0.5]).max() > 10  # psi reaches the image
    page.evaluate("() => { const s = document.getElementById('truncation'); s.value = '0.3'; "
                  "s.dispatchEvent(new Event('input', {bubbles: true})); }")
    _assert_same_image(_shown(page), _python(sampler, seed=0, truncation=0.3))  # the slider
    got = _pixels(page, "window.ganforge.interpolate(a)", {"seedA": 11, "seedB": 22, "t": 0.5, "truncation": 0.5})
    z = sampler.between_seeds(11, 22, [0.5], truncation=0.5)
    want = to_uint8(sampler.generate(1, z=z, truncation=0.5))[0].permute(1, 2, 0).numpy().astype(np.int16)
    _assert_same_image(got, want)
    assert errors == []
    page.close()


def test_interpolation_slider(sites, browser):
    sampler, url = sites["dcgan"]["sampler"], sites["dcgan"]["url"]
    page, errors = _open(browser, url)
    page.fill("#seed-a", "11")
    page.fill("#seed-b", "22")
    shown = {}
    for t in ("0", "1", "0.5"):
        page.evaluate("(t) => { const s = document.getElementById('t'); s.value = t; "
                      "s.dispatchEvent(new Event('input', {bubbles: true})); }", t)
        shown[t] = _shown(page)
    a, b = _python(sampler, seed=11), _python(sampler, seed=22)
    _assert_same_image(shown["0"], a)
    _assert_same_image(shown["1"], b)
    _assert_same_image(shown["0.5"], _python_between(sampler, 11, 22, 0.5))
    assert np.abs(shown["0.5"] - a).max() > 5 and np.abs(shown["0.5"] - b).max() > 5
    assert "t = 0.50" in page.locator("#caption").inner_text()
    assert errors == []
    page.close()


def test_latent_js_in_the_page_matches_python(sites, browser):
    page, errors = _open(browser, sites["dcgan"]["url"])
    got = page.evaluate("""(codes) => {
        const L = window.ganforge.latent;
        const z = L.seededLatents(4242, 3, 62, codes, 0.6);
        const fixed = L.setCodes(z, codes, 62, {c0: 7, c2: 0.5});
        return {z: Array.from(z), fixed: Array.from(fixed), mid: Array.from(L.between(z.slice(0, 74), z.slice(74, 148), 0.25, 62))};
    }""", CODES)
    z = seeded_latents(4242, 3, 62, CODES, 0.6)
    np.testing.assert_allclose(np.array(got["z"]).reshape(z.shape), z, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(got["fixed"]).reshape(z.shape), set_codes(z, CODES, 62, {"c0": 7, "c2": 0.5}),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(got["mid"]), between(z[0], z[1], 0.25, 62), rtol=0, atol=1e-6)
    assert errors == []
    page.close()


def test_pixel_conversion_is_to_uint8_in_hwc(sites, browser):
    """CHW floats -> HWC uint8 exactly like ganforge.image.to_uint8 (clamping, ties to even), 3 channels."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.uniform(-1.3, 1.3, size=(1, 3, 4, 5)).astype(np.float32)
    x.flat[:6] = [-1.0, 1.0, -2.0, 2.0, 0.0, np.float32(-1 + 1 / 255)]
    # exact ties in float32: (x + 1) * 127.5 == m + 0.5 with m even, so ties-to-even and round-half-up differ
    ties = [np.float32(np.float32((m + 0.5) / 127.5) - 1) for m in (64, 66, 80)]
    assert all(np.float32(np.float32(t + 1) * np.float32(127.5)) % 1 == 0.5 for t in ties)
    x.flat[6:9] = ties
    page, errors = _open(browser, sites["dcgan"]["url"])
    got = page.evaluate("(a) => Array.from(window.ganforge.toPixels(new Float32Array(a), 3, 4, 5))", x.ravel().tolist())
    want = to_uint8(torch.from_numpy(x))[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.array(got).reshape(4, 5, 3), want)
    assert errors == []
    page.close()


def test_missing_runtime_is_shown_on_the_page(sites, browser, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(Path(sites["dcgan"]["report"]["index"]).parent, broken)
    (broken / "ort" / "ort-wasm-simd-threaded.wasm").unlink()
    server, url = _serve(broken)
    try:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#status.error", timeout=20_000)
        assert "WebAssembly" in page.locator("#status").inner_text()
        page.close()
    finally:
        server.shutdown()
        server.server_close()
