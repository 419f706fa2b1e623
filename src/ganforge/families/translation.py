"""The shared contract of the image-to-image families (pix2pix, cyclegan, discogan, stargan, srgan).

Their generators map images to images, so there is no latent: what a noise family draws from N(0, I)
a translation family draws from its data. The trainer's machinery stays the same:

- `bind_data` keeps a small pool of inputs (domain A images; for stargan, images of every domain) on the
  CPU; `sample_inputs(n, generator)` draws n of them, so the trainer's fixed sample grid is a fixed set of
  inputs, and `sample(n, z=inputs)` is their translation. They have no latent, so no `noise()`.
- `translate(x, direction, domain)` is the one entry point for sampling, the CLI and export:
  direction "AtoB" (every family) or "BtoA" (two-way families: cyclegan, discogan); `domain` is the
  target domain index (stargan).
- `G` is one nn.Module (two-way families wrap both generators in `TwoWay`), so EMA, checkpoints and
  `Sampler.from_checkpoint` work unchanged.

`needs` says which data a family trains on; `check_spec` turns a mismatch into an error naming the fix.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..data.spec import DataSpec
from .base import Family

PREVIEW_POOL = 256  # inputs kept for sample grids


class TwoWay(nn.Module):
    """Two generators as one module: `forward(x, direction)`; "AtoB" runs `ab`, "BtoA" runs `ba`."""

    def __init__(self, ab: nn.Module, ba: nn.Module) -> None:
        super().__init__()
        self.ab, self.ba = ab, ba

    def forward(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        return self.ab(x) if direction == "AtoB" else self.ba(x)


class TranslationFamily(Family):
    """Base class of the image-to-image families."""

    kind = "translation"
    conditioning = "image"
    directions: ClassVar[tuple[str, ...]] = ("AtoB",)
    needs = "paired"  # "paired" | "unpaired" (paired data is accepted too) | "labelled"

    def __init__(self, cfg: Any, spec: DataSpec, generator_only: bool = False) -> None:
        self.check_spec(spec)
        super().__init__(cfg, spec, generator_only)
        self._pool: Tensor | None = None      # preview inputs (uint8 or float in [-1, 1]), CPU
        self._pool_y: Tensor | None = None    # their labels (stargan: the source domains)

    # -- data -----------------------------------------------------------------------------------------
    @classmethod
    def check_spec(cls, spec: DataSpec) -> None:
        if spec.kind != "image":
            raise ValueError(f"{cls.name} translates images; '{spec.name}' holds {spec.kind}")
        if cls.needs == "labelled":
            if spec.two_domain or spec.n_classes < 2:
                raise ValueError(f"{cls.name} needs images labelled with >= 2 domains: a folder with one sub-folder "
                                 f"per domain, or e.g. builtin:fmnist-shoes")
            return
        if not spec.two_domain:
            raise ValueError(f"{cls.name} needs two domains A and B: a folder with A/ and B/ sub-folders, "
                             f"side-by-side pairs, or e.g. builtin:fmnist-edges2items")
        if cls.needs == "paired" and spec.pairing != "paired":
            raise ValueError(f"{cls.name} needs paired data (B/x.png is the target of A/x.png); "
                             f"'{spec.name}' is unpaired: use cyclegan or discogan")

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.spec.shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.spec.shape_b) if self.spec.two_domain else tuple(self.spec.shape)

    def bind_data(self, data: Any) -> None:
        n = min(PREVIEW_POOL, int(data.x.shape[0]))
        g = torch.Generator().manual_seed(0)
        pick = torch.randperm(int(data.x.shape[0]), generator=g)[:n]
        self._pool = data.to_float(data.x[pick])
        self._pool_y = data.y[pick] if data.y is not None else None

    def sample_inputs(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n preview input images (N, C, H, W) from the bound data: what `sample(n, z=...)` translates."""
        if self._pool is None:
            raise ValueError(f"{self.name} samples from input images: call bind_data first, or use translate(x)")
        idx = torch.randint(len(self._pool), (n,), generator=generator)
        return self._pool[idx].to(self.device)

    @torch.no_grad()
    def sample(self, n: int, *, z: Tensor | None = None, generator: torch.Generator | None = None,
               net: nn.Module | None = None, **cond: Any) -> Tensor:
        x = self.sample_inputs(n, generator=generator) if z is None else z
        return self.translate(x, net=net, **cond)

    # -- the one sampling entry point -------------------------------------------------------------
    def check_direction(self, direction: str) -> None:
        if direction not in self.directions:
            raise ValueError(f"{self.name} translates {' and '.join(self.directions)}; got direction '{direction}'")

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str = "AtoB", domain: Any = None,
                  net: nn.Module | None = None) -> Tensor:
        """Translate images x (N, C, H, W) in [-1, 1]. Override for families with a domain input."""
        self.check_direction(direction)
        G = net if net is not None else self.G
        if isinstance(G, TwoWay):
            return G(x, direction)
        return G(x)
