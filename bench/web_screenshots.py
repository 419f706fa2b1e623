"""The static site (`ganforge export --site`) as a visitor sees it, and how close it is to Python.

Exports a site from a checkpoint (default runs/demo, the README's Fashion-MNIST DCGAN; when it is missing,
trains a small DCGAN on builtin:digits first), serves it with a plain static file server on 127.0.0.1,
opens it in headless Chromium (Debian's, driven by Playwright; no browser download), clicks Generate and
saves screenshots to docs/screenshots/site_*.png. Then generates --seeds seeds in the page and compares
each image with `Sampler.generate(1, seed=s)` through `to_uint8` (max / mean abs difference in levels
of 255). Writes bench/results/web_screenshots.json.

    .venv/bin/python bench/web_screenshots.py [--ckpt runs/demo] [--seeds 32] [--site DIR]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import shown
from tests.browser import page_value

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, *args):
        pass


def _train_small(out: Path) -> Path:
    from ganforge.config import from_dict
    from ganforge.train import build_run

    spec = {"family": "dcgan", "model": {"width": 32}, "data": {"source": "builtin:digits"},
            "train": {"steps": 300, "batch_size": 64},
            "log": {"sample_every": 0, "ckpt_every": 0, "log_every": 50, "progress": False, "tensorboard": False}}
    print(f"no checkpoint given: training a small DCGAN on builtin:digits into {out} (300 steps)", flush=True)
    build_run(from_dict(spec), out).fit()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(ROOT / "runs" / "demo"), help="run or checkpoint directory")
    ap.add_argument("--site", help="export the site here (default: a temporary folder, removed afterwards)")
    ap.add_argument("--seeds", type=int, default=32, help="seeds compared browser vs Python")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "web_screenshots.json"))
    args = ap.parse_args()

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        sys.exit("needs Debian's chromium: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("needs the playwright Python package: pip install playwright (no browser download needed)")
    import torch

    from ganforge.artifacts import Sampler
    from ganforge.image import to_uint8
    from ganforge.serve.site import build_site

    scratch = Path(tempfile.mkdtemp(prefix="web-screenshots-"))
    ckpt = Path(args.ckpt)
    if not ckpt.exists():
        ckpt = _train_small(scratch / "run")
    sampler = Sampler.from_checkpoint(ckpt)
    site = Path(args.site) if args.site else scratch / "site"
    t0 = time.perf_counter()
    report = build_site(sampler, site)
    export_s = time.perf_counter() - t0
    print(f"site: {report['index']} ({report['total_mb']} MB, onnxruntime-web {report['ort_version']}, "
          f"exported in {export_s:.1f} s)", flush=True)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots, errors, diffs, timings = [], [], [], {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 960, "height": 640})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(url)
            page_value(page, "window.ganforge.ready.then(() => window.ganforge.settled()).then(() => true)")
            timings["page_ready_s"] = round(time.perf_counter() - t0, 2)

            def shot(name: str) -> None:
                page_value(page, "window.ganforge.settled().then(() => true)")
                path = SHOTS / f"site_{name}.png"
                page.screenshot(path=str(path), full_page=True)
                shots.append(str(path.relative_to(ROOT)))

            shot("loaded")
            page.fill("#seed", "42")
            if sampler.conditional:
                page.select_option("#class", str(min(7, int(sampler.spec.n_classes) - 1)))
            page.click("#generate")
            shot("seed42")
            page.fill("#seed-a", "1")
            page.fill("#seed-b", "2")
            page.evaluate("() => { const s = document.getElementById('t'); s.value = '0.5'; "
                          "s.dispatchEvent(new Event('input', {bubbles: true})); }")
            shot("interpolate")

            t0 = time.perf_counter()
            for seed in range(args.seeds):
                got = page_value(page, "window.ganforge.generate({seed: a})"
                                       ".then(r => ({px: Array.from(r.pixels), shape: r.shape}))", seed)
                browser_px = np.array(got["px"], dtype=np.int16).reshape(got["shape"])
                with torch.no_grad():
                    want = to_uint8(sampler.generate(1, seed=seed))[0].permute(1, 2, 0).numpy().astype(np.int16)
                diffs.append(np.abs(browser_px - want))
            # one browser generate + one Python generate + the page round trip
            timings["compare_ms_per_seed"] = round(1000 * (time.perf_counter() - t0) / max(args.seeds, 1), 1)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
        if not args.site:
            shutil.rmtree(scratch, ignore_errors=True)

    d = np.stack(diffs)
    diff = {"seeds": args.seeds, "max_abs_levels": int(d.max()), "mean_abs_levels": round(float(d.mean()), 5),
            "fraction_of_pixels_differing": round(float((d > 0).mean()), 5)}
    doc = {"benchmark": "web_screenshots", "command": " ".join([Path(sys.executable).name, *sys.argv]),
           "ckpt": shown(ckpt), "family": sampler.family.name, "step": sampler.step, "site_mb": report["total_mb"],
           "ort_version": report["ort_version"], "onnx_parity_max_abs_diff": report["onnx"]["parity_max_abs_diff"],
           "export_seconds": round(export_s, 1), "screenshots": shots, "pixel_diff_vs_python": diff,
           "timings": timings, "console_errors": errors,
           "pass": {"max_abs_le_2_levels": diff["max_abs_levels"] <= 2, "no_console_errors": not errors},
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"screenshots: {', '.join(shots)}")
    print(f"browser vs Python over {args.seeds} seeds: max {diff['max_abs_levels']} levels, mean "
          f"{diff['mean_abs_levels']}, {100 * diff['fraction_of_pixels_differing']:.2f}% of pixels differ; "
          f"console errors: {len(errors)}; wrote {args.out}")
    return 0 if all(doc["pass"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
