"""The playground page of `ganforge serve` as a user sees it: screenshots, and its images vs Python.

Starts `python -m ganforge serve` on a checkpoint (default runs/fashion-cgan when present, so the class
picker shows, else runs/demo), opens http://127.0.0.1:PORT/ in headless Chromium (Debian's, driven by
Playwright), then: seed 42 -> screenshot; class picker to each class -> the image must change and equal
`Sampler.generate(1, seed=42, y=k)`; interpolation slider at 0.5 -> screenshot. Saves
docs/screenshots/playground_*.png and writes bench/results/playground_screenshots.json.

    .venv/bin/python bench/playground_screenshots.py [--ckpt runs/fashion-cgan]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from _common import shown, start_server
from tests.browser import wait_until

from ganforge.artifacts import Sampler
from ganforge.image import to_uint8

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "playground_screenshots.json"))
    args = ap.parse_args()
    ckpt = Path(args.ckpt) if args.ckpt else next(
        (p for p in (ROOT / "runs" / "fashion-cgan", ROOT / "runs" / "demo") if (p / "checkpoints").exists()), None)
    if ckpt is None:
        sys.exit("no checkpoint: run `make demo` or pass --ckpt RUN")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    from playwright.sync_api import sync_playwright

    sampler = Sampler.from_checkpoint(ckpt)
    server, url, _ = start_server(ckpt)
    SHOTS.mkdir(parents=True, exist_ok=True)
    diffs, changed, shots = [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1000, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            wait_until(page, "window.playground && window.playground.ready === true", timeout=60)

            def act(fn) -> np.ndarray:
                before = page.evaluate("window.playground.requests")
                fn()
                wait_until(page, f"window.playground.requests > {before} && !window.playground.busy")
                return np.asarray(Image.open(io.BytesIO(base64.b64decode(page.evaluate("window.playground.lastPng")))))

            def shot(name: str) -> None:
                path = SHOTS / f"playground_{name}.png"
                page.screenshot(path=str(path))
                shots.append(str(path.relative_to(ROOT)))

            page.fill("#seed", "42")
            img = act(lambda: page.click("#generate"))
            shot("seed42")
            if sampler.conditional:  # the page starts on class 0
                want = to_uint8(sampler.generate(1, 42, y=0))[0, 0].numpy()
                diffs.append(int(np.abs(img.astype(int) - want.astype(int)).max()))
            previous = img
            for k in range(1, sampler.spec.n_classes) if sampler.conditional else []:
                img = act(lambda k=k: page.select_option("#class", str(k)))
                want = to_uint8(sampler.generate(1, 42, y=k))[0, 0].numpy()
                diffs.append(int(np.abs(img.astype(int) - want.astype(int)).max()))
                changed.append(not np.array_equal(img, previous))
                previous = img
                if k == 7:
                    shot("class7")
            page.fill("#seed-a", "42")
            page.fill("#seed-b", "43")
            act(lambda: page.locator("#t").fill("0.5"))
            shot("interpolate")
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    result = {"benchmark": "playground_screenshots",
              "command": " ".join([Path(sys.executable).name, "bench/playground_screenshots.py"] + sys.argv[1:]),
              "checkpoint": shown(ckpt), "family": sampler.family.name, "screenshots": shots,
              "class_picker": {"classes": len(diffs), "max_abs_diff_levels_vs_python": max(diffs, default=None),
                               "image_changed_on_every_pick": all(changed) if changed else None},
              "page_errors": errors}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if not errors and all(changed) and max(diffs, default=0) <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
