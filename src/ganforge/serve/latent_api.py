"""The playground's "upload an image -> project -> edit along a direction", for the HTTP API.

    POST /v1/project  {"image": base64 PNG/JPEG (a data: URL too), "steps": 1..max_steps (default 100)}
                      -> {"space", "latent": [...], "pixel_mse", "steps", "seconds", "image": base64 PNG}
    POST /v1/edit     {"latent": [...], "direction": "sefa:K" | "class:A:B", "t": -10..10, "format": png|json}
                      -> the image of latent + t x direction

Both exist when the model is an unconditional image generator (`projection.editable`); /v1/info then has
"latent_tools": {"space", "width", "directions", "max_steps"}. The latent is in the model's editing space: z, or w
for a style-based generator (stylegan), as `ganforge project` and `ganforge edit` use it; projection starts from
the encoder for ae/vae/aae/vaegan and from the best of 64 random latents otherwise, with the `fashion` perceptual
loss for 28x28 grey models. Class directions (vector arithmetic) need a classifier for the model's images: the
`fashion` classifier for 1x28x28 models; the samples are tagged once (the first class request waits for it) and
every pair's class means come from them. Projections run one at a time on a thread of their own; a second one
asked meanwhile gets a 503 (retry), so generation never waits behind them.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
from typing import Any

import numpy as np
import torch
from PIL import Image

from .request_core import RequestError

DEFAULT_STEPS = 100
MAX_T = 10.0
MAX_LATENT = 1e4  # |latent value|: far beyond any latent a generator was trained on, still finite in float32
MAX_PIXELS = 16_000_000  # an upload larger than this (e.g. 4000 x 4000) is refused before it is decoded
N_SEFA = 8  # closed-form directions offered
TAG_N = 20000  # samples tagged for class means (as `ganforge edit`'s default), with p >= 0.9


def _small_number(v: Any) -> bool:
    """A real number (not a bool) with |v| <= MAX_LATENT; False for NaN, inf and integers too big for a float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return abs(float(v)) <= MAX_LATENT
    except OverflowError:
        return False


class LatentTools:
    """Projection and editing for one Sampler. Thread-safe: the class-direction cache is locked, the rest is
    read-only use of the frozen generator."""

    def __init__(self, sampler, max_steps: int = 300) -> None:
        from ..artifacts.projection import latent_space, latent_width, perceptual_features, sefa_directions

        self.sampler, self.max_steps = sampler, int(max_steps)
        self.space = latent_space(sampler)  # ValueError when the model cannot be projected
        self.width = latent_width(sampler, self.space)
        self.shape = tuple(int(s) for s in sampler.spec.shape)
        self.fit = sampler.config.get("run", {}).get("data", {}).get("fit", "crop")
        try:
            dirs, values = sefa_directions(sampler.G, N_SEFA)
            self.sefa = [(d, float(v)) for d, v in zip(dirs, values)]
        except ValueError:
            self.sefa = []
        self.classifier, self.class_names = None, []
        if self.shape == (1, 28, 28):  # Fashion-MNIST-shaped: the fashion classifier tags samples
            from ..data.builtin import FASHION_CLASSES
            from ..metrics.features import load

            try:
                self.classifier, self.class_names = load("fashion"), list(FASHION_CLASSES)
            except (ValueError, FileNotFoundError):
                pass
        try:
            self.features, self.feature_name = perceptual_features("auto", self.shape)
        except Exception:  # noqa: BLE001 - a missing feature network only drops the perceptual term
            self.features, self.feature_name = None, "none"
        self._tags = None
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        dirs = [{"name": f"sefa:{k}", "label": f"closed-form direction {k} (SeFa, eigenvalue {v:.3g})"}
                for k, (_, v) in enumerate(self.sefa)]
        return {"space": self.space, "width": self.width, "max_steps": self.max_steps, "directions": dirs,
                "class_names": self.class_names,
                "class_directions": "class:A:B with A, B class indices or names" if self.classifier else None}

    # -- projection ---------------------------------------------------------------------------------------------
    def decode(self, text: Any) -> torch.Tensor:
        """A base64 PNG/JPEG (or a data: URL) -> (1, C, H, W) in [-1, 1] at the model's shape."""
        from ..data.images import DECODE_ERRORS, fit_image, open_image, strict_decoding, to_channels

        if not isinstance(text, str) or not text:
            raise RequestError('"image" must be a base64-encoded PNG or JPEG (or a data: URL)')
        if text.startswith("data:"):
            text = text.partition(",")[2]
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError('"image" is not valid base64; send the file\'s bytes base64-encoded') from None
        c, h, w = self.shape
        try:
            with Image.open(io.BytesIO(raw)) as probe:  # reads the header only
                pixels = probe.width * probe.height
            if pixels > MAX_PIXELS:
                raise RequestError(f'"image" is {pixels:,} pixels; send at most {MAX_PIXELS:,} (downscale it first: the '
                                   f"model draws {w}x{h})", 413)
            with strict_decoding():
                im = to_channels(open_image(io.BytesIO(raw), draft_side=2 * max(h, w)), c)
        except DECODE_ERRORS:
            raise RequestError('"image" could not be decoded as an image; send a PNG or JPEG') from None
        if im.size != (w, h):
            im = fit_image(im, (h, w), self.fit)
        arr = np.asarray(im, dtype=np.uint8)
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return torch.from_numpy(arr.copy()).float().mul_(2.0 / 255.0).sub_(1.0)[None]

    def project(self, params: dict[str, Any]) -> dict[str, Any]:
        from ..artifacts.projection import project_images
        from ..image import to_pil, to_uint8

        unknown = set(params) - {"image", "steps"}
        if unknown:
            raise RequestError(f"/v1/project takes image and steps, not {', '.join(sorted(unknown))}")
        steps = params.get("steps", DEFAULT_STEPS)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.max_steps:
            raise RequestError(f'"steps" must be an integer from 1 to {self.max_steps}, got {steps!r}')
        x = self.decode(params.get("image"))
        with torch.enable_grad():
            p = project_images(self.sampler, x, steps=steps, candidates=64, features=self.features,
                               feature_weight=1.0 if self.features is not None else 0.0)
        buf = io.BytesIO()
        to_pil(to_uint8(p.images)[0]).save(buf, format="PNG")
        return {"space": p.space, "latent": [round(float(v), 6) for v in p.latents[0]],
                "pixel_mse": round(float(p.pixel_mse[0]), 6), "init": p.init, "steps": steps,
                "seconds": round(p.seconds, 3), "image": base64.b64encode(buf.getvalue()).decode()}

    # -- editing ------------------------------------------------------------------------------------------------
    def direction(self, name: Any) -> torch.Tensor:
        if not isinstance(name, str):
            raise RequestError('"direction" must be "sefa:K" or "class:A:B"')
        kind, _, rest = name.partition(":")
        if kind == "sefa":
            if not rest.isdecimal() or int(rest) >= len(self.sefa):
                raise RequestError(f'"direction" sefa:K needs K in 0..{len(self.sefa) - 1}' if self.sefa else
                                   "this model has no closed-form (sefa) directions")
            return self.sefa[int(rest)][0]
        if kind == "class":
            if self.classifier is None:
                raise RequestError("class directions need a classifier for this model's images; use sefa:K")
            a, b = (self._class(t) for t in rest.split(":", 1)) if ":" in rest else (None, None)
            if a is None or b is None or a == b:
                raise RequestError(f'"direction" class:A:B names two different classes of: '
                                   f'{", ".join(f"{i}={c}" for i, c in enumerate(self.class_names))}')
            z, pred, conf = self._tagged()
            keep = conf >= 0.9
            from ..artifacts.projection import class_means

            means, counts = class_means(z[keep], pred[keep], len(self.class_names))
            if min(int(counts[a]), int(counts[b])) < 10:
                raise RequestError(f"too few confident samples of class {a if counts[a] < 10 else b} for a class mean; "
                                   "this model rarely draws it: pick another class")
            return means[b] - means[a]
        raise RequestError(f'"direction" must be "sefa:K" or "class:A:B", got {name!r}')

    def _tagged(self):
        """(latents, classes, confidences) of TAG_N samples, tagged once by the classifier (the first class request
        waits for it; later ones reuse it)."""
        with self._lock:
            if self._tags is None:
                from ..artifacts.projection import tag_latents

                self._tags = tag_latents(self.sampler, self.classifier, TAG_N, 12345, confidence=True, space=self.space)
            return self._tags

    def _class(self, text: str) -> int | None:
        if text.isdecimal() and int(text) < len(self.class_names):
            return int(text)
        names = [c.lower().replace(" ", "-") for c in self.class_names]
        key = text.lower().replace(" ", "-")
        return names.index(key) if key in names else None

    def edit(self, params: dict[str, Any]) -> torch.Tensor:
        """(1, C, H, W): the image of latent + t x direction."""
        from ..artifacts.projection import draw_latents

        unknown = set(params) - {"latent", "direction", "t", "format"}
        if unknown:
            raise RequestError(f"/v1/edit takes latent, direction, t and format, not {', '.join(sorted(unknown))}")
        lat = params.get("latent")
        if not isinstance(lat, list) or len(lat) != self.width or not all(_small_number(v) for v in lat):
            raise RequestError(f'"latent" must be a list of {self.width} numbers of size at most {MAX_LATENT:g} (the '
                               f"latent /v1/project returns, in {self.space})")
        t = params.get("t", 0.0)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not -MAX_T <= t <= MAX_T:
            raise RequestError(f'"t" must be a number from {-MAX_T:g} to {MAX_T:g}, got {t!r}')
        d = self.direction(params.get("direction"))
        z = torch.tensor(lat, dtype=torch.float32)[None] + float(t) * d[None].float()
        return draw_latents(self.sampler, z, self.space)
