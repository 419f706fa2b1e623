"""Structured latent codes: named blocks of G's input that a user can set (infogan's categorical and continuous
codes, aae's categorical cluster code). `ganforge sample --code c0=3`, the servers and the site read them through
these methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Code:
    name: str
    kind: str        # "categorical" | "continuous"
    size: int        # categories (categorical) or 1 (continuous)
    offset: int      # first column of the code in G's input vector


class LatentCodes:
    """Mixin for a family whose `codes` property lists Code blocks of G's input."""

    codes: Any

    def code(self, name: str) -> Code:
        for c in self.codes:
            if c.name == name:
                return c
        raise ValueError(f"this model has no code '{name}'; its codes are: {self.describe_codes()}")

    def describe_codes(self) -> str:
        return ", ".join(f"{c.name} (categorical, 0..{c.size - 1})" if c.kind == "categorical"
                         else f"{c.name} (continuous, trained on [-1, 1])" for c in self.codes)

    def code_values(self, latent: Tensor, name: str) -> Tensor:
        """A code read back from G's inputs: category indices (N,) or continuous values (N,)."""
        c = self.code(name)
        block = latent[:, c.offset:c.offset + c.size]
        return block.argmax(1) if c.kind == "categorical" else block[:, 0]

    def set_codes(self, latent: Tensor, codes: dict[str, Any]) -> Tensor:
        """A copy of `latent` with the given codes fixed: {name: one value, or one value per row}."""
        latent = latent.clone()
        n = latent.shape[0]
        for name, value in codes.items():
            c = self.code(name)
            v = torch.as_tensor(value, device=latent.device)
            v = v.expand(n) if v.dim() == 0 else v
            if v.shape != (n,):
                raise ValueError(f"code {name}: need one value or {n} values, got shape {tuple(v.shape)}")
            if c.kind == "categorical":
                if v.is_floating_point() and not torch.equal(v, v.round()):
                    raise ValueError(f"code {name} is categorical: give an integer in 0..{c.size - 1}")
                v = v.long()
                if int(v.min()) < 0 or int(v.max()) >= c.size:
                    raise ValueError(f"code {name} is categorical with {c.size} categories; "
                                     f"{int(v.max()) if int(v.max()) >= c.size else int(v.min())} is not in 0..{c.size - 1}")
                latent[:, c.offset:c.offset + c.size] = F.one_hot(v, c.size).to(latent.dtype)
            else:
                latent[:, c.offset] = v.to(latent.dtype)
        return latent
