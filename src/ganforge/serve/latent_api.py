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
`fashion` classifier for 1x28x28 models; their class means are computed once per pair and kept.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import threading
from typing import Any

import numpy as np
import torch

from .request_core import RequestError

DEFAULT_STEPS = 100
MAX_T = 10.0
N_SEFA = 8  # closed-form directions offered


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
        self._classes: dict[tuple[int, int], torch.Tensor] = {}
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
            with strict_decoding():
                im = to_channels(open_image(io.BytesIO(raw)), c)
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
            if not rest.isdigit() or int(rest) >= len(self.sefa):
                raise RequestError(f'"direction" sefa:K needs K in 0..{len(self.sefa) - 1}' if self.sefa else
                                   "this model has no closed-form (sefa) directions")
            return self.sefa[int(rest)][0]
        if kind == "class":
            if self.classifier is None:
                raise RequestError("class directions need a classifier for this model's images; use sefa:K")
            a, b = (self._class(t) for t in rest.split(":", 1)) if ":" in rest else (None, None)
            if a is None or a == b:
                raise RequestError(f'"direction" class:A:B names two different classes of: '
                                   f'{", ".join(f"{i}={c}" for i, c in enumerate(self.class_names))}')
            with self._lock:
                if (a, b) not in self._classes:
                    from ..artifacts.projection import class_direction

                    try:
                        self._classes[(a, b)] = class_direction(self.sampler, self.classifier, a, b,
                                                                space=self.space)[0]
                    except ValueError as e:
                        raise RequestError(str(e)) from None
                return self._classes[(a, b)]
        raise RequestError(f'"direction" must be "sefa:K" or "class:A:B", got {name!r}')

    def _class(self, text: str) -> int | None:
        if text.isdigit() and int(text) < len(self.class_names):
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
        if (not isinstance(lat, list) or len(lat) != self.width
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in lat)):
            raise RequestError(f'"latent" must be a list of {self.width} finite numbers (the latent /v1/project '
                               f"returns, in {self.space})")
        t = params.get("t", 0.0)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not -MAX_T <= t <= MAX_T:
            raise RequestError(f'"t" must be a number from {-MAX_T:g} to {MAX_T:g}, got {t!r}')
        d = self.direction(params.get("direction"))
        z = torch.tensor(lat, dtype=torch.float32)[None] + float(t) * d[None].float()
        return draw_latents(self.sampler, z, self.space)
