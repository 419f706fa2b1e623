"""A static web site that runs a generator in the visitor's browser (`ganforge export --site OUT/`).

OUT/ holds index.html, app.js (the page's logic), latent.js (`ganforge.latent` in JavaScript, so a seed
gives the same image as `ganforge sample`), model.onnx (checked against the eager generator), model.json
(`model_info`: latent layout, shape, classes), model_card.json/.md, and ort/: onnxruntime-web's plain
WebAssembly backend (ort.wasm.min.js, ort-wasm-simd-threaded.mjs/.wasm; no WebGPU/JSEP/asyncify builds).
The page runs single-threaded (`ort.env.wasm.numThreads = 1`), so it needs no cross-origin isolation
headers: any static file server works (`python -m http.server -d OUT 8080`, S3, GitHub Pages).

onnxruntime-web comes from the npm registry at export time (`npm pack onnxruntime-web@VERSION`), once:
the files are kept under $GANFORGE_CACHE/npm (else ~/.cache/ganforge/npm) and reused offline.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from .. import __version__
from ..cache import cache_root

ORT_WEB_VERSION = "1.30.0"
# The WASM-only entry point and the one runtime it loads (1.19+: a single SIMD build that also runs on one
# thread without SharedArrayBuffer).
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
STATIC = Path(__file__).parent / "static"
_SITE_FILES = {"index.html": "site.html", "app.js": "site.js", "latent.js": "latent.js"}
_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$")
_NPM_FIX = "install npm (apt-get install npm) or pass ort_dir= a folder with onnxruntime-web's dist files"


class SiteError(RuntimeError):
    """The site could not be built (onnxruntime-web missing, a model the page cannot show)."""


def npm_cache_dir() -> Path:
    """cache_root()/npm: $GANFORGE_CACHE/npm, else ~/.cache/ganforge/npm."""
    return cache_root() / "npm"


def _missing(folder: Path) -> list[str]:
    return [name for name in ORT_FILES if not (folder / name).is_file()]


def fetch_ort_web(version: str = ORT_WEB_VERSION, cache: str | Path | None = None) -> Path:
    """The folder holding onnxruntime-web `version`'s ORT_FILES, fetched with `npm pack` on first use.

    Only the files the site needs are kept (~14 MB of the package's 145 MB): CACHE/onnxruntime-web-VERSION/.
    """
    if not _VERSION.match(version):
        raise ValueError(f"onnxruntime-web version must look like 1.30.0, got {version!r}")
    cache = Path(cache) if cache is not None else npm_cache_dir()
    target = cache / f"onnxruntime-web-{version}"
    if target.is_dir() and not _missing(target):
        return target
    if target.exists():  # a half-filled folder from an older or interrupted fetch
        shutil.rmtree(target)
    npm = shutil.which("npm")
    if npm is None:
        raise SiteError(f"the static site needs onnxruntime-web {version}, which is not cached in {cache} and "
                        f"npm is not installed to fetch it: {_NPM_FIX}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false",
               "npm_config_audit": "false", "npm_config_loglevel": "error"}
        try:
            done = subprocess.run([npm, "pack", f"onnxruntime-web@{version}", "--prefer-offline",
                                   "--pack-destination", tmp], cwd=tmp, env=env, capture_output=True,
                                  text=True, timeout=600)
        except subprocess.TimeoutExpired as e:
            raise SiteError(f"`npm pack onnxruntime-web@{version}` took over 10 minutes (offline?): "
                            f"check the npm registry is reachable, or {_NPM_FIX.split(' or ')[1]}") from e
        tarballs = list(Path(tmp).glob("onnxruntime-web-*.tgz"))
        if done.returncode != 0 or not tarballs:
            tail = " ".join((done.stderr or done.stdout or "").split())[-400:]
            raise SiteError(f"`npm pack onnxruntime-web@{version}` failed ({tail or 'no output'}); check that the "
                            f"npm registry is reachable and the version exists (npm view onnxruntime-web versions), "
                            f"or pass ort_dir= a folder with onnxruntime-web's dist files")
        staging = Path(tmp) / "dist"
        staging.mkdir()
        with tarfile.open(tarballs[0], "r:gz") as tar:
            for name in (*ORT_FILES, "package.json"):
                member = f"package/dist/{name}" if name != "package.json" else "package/package.json"
                try:
                    source = tar.extractfile(member)
                except KeyError:
                    source = None
                if source is None:
                    raise SiteError(f"onnxruntime-web {version} has no {member}: the site expects the 1.19+ layout "
                                    f"({', '.join(ORT_FILES)}); use ort_version={ORT_WEB_VERSION!r}")
                (staging / name).write_bytes(source.read())
        try:
            staging.rename(target)
        except OSError:  # another export filled the cache meanwhile
            if _missing(target):
                raise
    return target


def _title(sampler) -> str:
    return f"{sampler.family.name} on {sampler.spec.name or 'images'}"


TEXT_ON_THE_PAGE = (
    "The page offers the captions the model keeps (its preview captions, embedded here: about 4 KB each). Free text "
    "would need the sentence encoder in the visitor's browser, a 90 MB download (model.text.onnx of `ganforge export "
    "--onnx`), plus a tokenizer in JavaScript; `ganforge serve` and the Lambda package take any caption.")


def site_captions(sampler) -> list[dict[str, Any]]:
    """The text model's preview captions and the embeddings G reads for them (what it draws without a caption)."""
    G = sampler.G
    return [{"text": text, "embedding": [float(v) for v in emb]}
            for text, emb in zip(G.preview_captions, G.preview.detach().cpu().float())]


def build_site(sampler, out: Path, *, opset: int | None = None, ort_version: str = ORT_WEB_VERSION,
               ort_dir: str | Path | None = None) -> dict[str, Any]:
    """Write the static site of `sampler`'s generator into `out`; returns what was written.

    `ort_dir`: a folder with onnxruntime-web's dist files (ORT_FILES) to use instead of fetching them
    with npm. Returns {"index", "total_mb", "ort_version", "files": {relative path: bytes}, "onnx"}.
    """
    from ..artifacts.card import model_card, model_info, write_card
    from ..artifacts.onnx import export_onnx

    if sampler.is_translation:  # image-to-image models need uploads, not seeds
        raise SiteError(f"the static site generates from seeds; {sampler.family.name} translates images: export it "
                        f"with --onnx, or run it with `ganforge translate`")
    if sampler.spec.kind == "table":
        raise SiteError(f"the static site draws images; this {sampler.family.name} model makes table rows: serve "
                        f"them as JSON or CSV with `ganforge serve` or `ganforge export --lambda`, write them with "
                        f"`ganforge sample --out rows.csv`, or export the generator with --onnx")
    if sampler.spec.kind != "image":
        raise SiteError(f"the static site draws images; this {sampler.family.name} model makes "
                        f"{sampler.spec.kind} {tuple(sampler.spec.shape)}: export it with --onnx or serve it "
                        f"with `ganforge serve` instead")
    channels = int(sampler.spec.shape[0])
    if channels not in (1, 3):
        raise SiteError(f"the page draws grey (1) or RGB (3) images; this model makes {channels} channels")
    if ort_dir is not None:
        source = Path(ort_dir)
        if _missing(source):
            raise SiteError(f"ort_dir {source} lacks {', '.join(_missing(source))}: give the dist/ folder of "
                            f"onnxruntime-web {ort_version} (npm pack onnxruntime-web@{ort_version})")
    else:
        source = fetch_ort_web(ort_version)

    out = Path(out)
    (out / "ort").mkdir(parents=True, exist_ok=True)
    exported = export_onnx(sampler, out / "model.onnx", opset=opset, text_encoder=False)
    info = {**model_info(sampler), "title": _title(sampler),
            "data": {"name": sampler.spec.name, "source": sampler.config.get("run", {}).get("data", {}).get("source")},
            "site": {"ort_version": ort_version, "ganforge_version": __version__,
                     "onnx_bytes": exported.size_bytes, "pixels": "HWC uint8, round((x + 1) * 127.5) clamped"}}
    if sampler.takes_text:  # the captions the model keeps, with their embeddings: no encoder in the browser
        info["site"]["captions"] = site_captions(sampler)
        info["site"]["text"] = TEXT_ON_THE_PAGE
    (out / "model.json").write_text(json.dumps(info, indent=2) + "\n")
    write_card(model_card(sampler, exported.as_dict()), out / "model_card")
    for name, static in _SITE_FILES.items():
        text = (STATIC / static).read_text()
        if name == "index.html":
            text = text.replace("{{title}}", html.escape(f"ganforge · {_title(sampler)}"))
        (out / name).write_text(text)
    for name in ORT_FILES:
        shutil.copyfile(source / name, out / "ort" / name)
    (out / "ort" / "NOTICE.txt").write_text(
        f"onnxruntime-web {ort_version} (https://www.npmjs.com/package/onnxruntime-web), "
        f"Copyright (c) Microsoft Corporation, MIT License. Only its WebAssembly backend files are included.\n")

    files = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    return {"index": str(out / "index.html"), "total_mb": round(sum(files.values()) / 2**20, 2),
            "ort_version": ort_version, "files": files, "onnx": exported.as_dict()}
