"""Seeded latents that every runtime reproduces bit for bit: Python, the browser and AWS Lambda.

A seed stands for the same image everywhere a generator is served: `ganforge sample`, the HTTP API, the
static site (JavaScript, `serve/static/latent.js`) and the Lambda handler (numpy only). torch's and
numpy's generators cannot be reproduced in JavaScript, so the latents come from a small counter-based
generator that needs only 32-bit integer arithmetic:

    key(seed, row)  = mix(mix(seed) + row)                         (all arithmetic mod 2**32)
    bits(row, j)    = mix(key ^ mix(j + 0x9E3779B9))
    uniform(row, j) = (bits + 0.5) / 2**32                          in (0, 1), never 0 or 1

where `mix` is the "lowbias32" integer hash (C. Wellons, 2018). Row r's noise takes uniforms j = 0, 1, ...
in pairs through the Box-Muller transform (z[2i] = r cos t, z[2i+1] = r sin t), in float64, then float32.
Latent codes (InfoGAN) follow: a categorical code of size K uses the next uniform u as category floor(u K),
a continuous one 2u - 1. Row r depends only on (seed, r), so the first image of seed s is the same whether
1 or 64 images are asked for. Truncation psi scales the noise (not the codes) towards its mean, 0: the trick
of families that truncate in z. A family that truncates in w (stylegan, model_info "truncation") takes its
latents unscaled (psi = 1 here) and psi as a generator input instead. A family without the trick (progan,
model_info truncation space "none") refuses psi != 1 with `no_truncation_message`.

This module imports numpy only: the Lambda package ships a copy of it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

MAX_SEED = 2**31 - 1
_M32 = np.uint64(0xFFFFFFFF)


def mix(x: np.ndarray) -> np.ndarray:
    """lowbias32 on uint64 arrays holding 32-bit values (wrapping multiplication)."""
    x = np.asarray(x, dtype=np.uint64) & _M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & _M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & _M32
    x ^= x >> np.uint64(16)
    return x


def uniforms(seed: int, rows: int, count: int, first_row: int = 0) -> np.ndarray:
    """(rows, count) float64 uniforms in (0, 1) of rows first_row.. of `seed`."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")
    r = np.arange(first_row, first_row + rows, dtype=np.uint64)
    key = mix((mix(np.uint64(seed)) + r) & _M32)[:, None]
    j = mix((np.arange(count, dtype=np.uint64) + np.uint64(0x9E3779B9)) & _M32)[None, :]
    return (mix(key ^ j).astype(np.float64) + 0.5) / 2.0**32


def no_truncation_message(family: str, reason: str, psi: float, option: str = "truncation") -> str:
    """The refusal of psi != 1 by a model without the truncation trick (Family.truncation None, model_info
    truncation space "none"), the same words from the sampler, the CLI and the servers (`option`: the name
    the caller gave psi)."""
    why = f": {reason}" if reason else ""
    return (f"{family} has no truncation trick{why}; {option} {psi:g} would give the same images as 1, "
            f"so use {option} 1 or leave it out")


def seeded_latents(seed: int, n: int, noise_dim: int, codes: Sequence[dict[str, Any]] = (),
                   truncation: float = 1.0, first_row: int = 0) -> np.ndarray:
    """The (n, width) float32 generator inputs of a seed: noise_dim N(0, 1) values then the codes.

    `codes`: [{"name", "kind": "categorical"|"continuous", "size"}] in the model's order, laid out
    back to back after the noise (one-hot for categorical, one value for continuous).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 < truncation <= 1:
        raise ValueError(f"truncation must be in (0, 1], got {truncation}")
    pairs = (noise_dim + 1) // 2
    u = uniforms(seed, n, 2 * pairs + len(codes), first_row)
    radius = np.sqrt(-2.0 * np.log(u[:, 0:2 * pairs:2]))
    angle = 2.0 * math.pi * u[:, 1:2 * pairs:2]
    noise = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=2).reshape(n, 2 * pairs)[:, :noise_dim]
    parts = [noise * truncation]
    for i, code in enumerate(codes):
        v = u[:, 2 * pairs + i]
        if code["kind"] == "categorical":
            k = int(code["size"])
            parts.append(np.eye(k)[np.minimum((v * k).astype(np.int64), k - 1)])
        else:
            parts.append((2.0 * v - 1.0)[:, None])
    return np.concatenate(parts, axis=1).astype(np.float32)


def set_codes(latent: np.ndarray, codes: Sequence[dict[str, Any]], noise_dim: int,
              values: dict[str, float]) -> np.ndarray:
    """A copy of `latent` with codes fixed: {name: category index or continuous value} (same for all rows)."""
    latent, offset = latent.copy(), noise_dim
    by_name = {}
    for code in codes:
        by_name[code["name"]] = (code, offset)
        offset += int(code["size"]) if code["kind"] == "categorical" else 1
    for name, value in values.items():
        if name not in by_name:
            raise ValueError(f"this model has no code '{name}'; its codes are: {', '.join(by_name) or 'none'}")
        code, at = by_name[name]
        if code["kind"] == "categorical":
            k = int(code["size"])
            if float(value) != int(value) or not 0 <= int(value) < k:
                raise ValueError(f"code {name} is categorical: give an integer in 0..{k - 1}, got {value}")
            latent[:, at:at + k] = 0.0
            latent[:, at + int(value)] = 1.0
        else:
            latent[:, at] = float(value)
    return latent


def between(a: np.ndarray, b: np.ndarray, t: float, noise_dim: int) -> np.ndarray:
    """The latent a fraction t of the way from row a to row b: the noise slides on the sphere (slerp,
    White 2016), the codes linearly. float64 arithmetic, float32 out."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = a64[:noise_dim], b64[:noise_dim]
    cos = float(np.dot(na, nb) / (np.linalg.norm(na) * np.linalg.norm(nb)))
    omega = math.acos(min(max(cos, -1 + 1e-7), 1 - 1e-7))
    s = math.sin(omega)
    noise = (math.sin((1 - t) * omega) / s) * na + (math.sin(t * omega) / s) * nb
    codes = (1 - t) * a64[noise_dim:] + t * b64[noise_dim:]
    return np.concatenate([noise, codes]).astype(np.float32)
