"""The DCGAN / MLP backbones the label- and code-conditioned families share, chosen by `arch`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data.spec import DataSpec
from ..nn import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator


def resolve_arch(family: str, arch: str, spec: DataSpec) -> str:
    """'auto' -> dcgan for images, mlp for points; an error that names the fix for impossible choices."""
    if arch not in ("auto", "dcgan", "mlp"):
        raise ValueError(f"{family} arch must be auto, dcgan or mlp, got '{arch}'")
    if arch == "dcgan" and spec.kind != "image":
        raise ValueError(f"{family} arch=dcgan needs images but '{spec.name}' holds {spec.kind}; use arch=mlp")
    return arch if arch != "auto" else ("dcgan" if spec.kind == "image" else "mlp")


def generator(arch: str, in_dim: int, spec: DataSpec, c: Any) -> nn.Module:
    """A z -> x generator taking `in_dim` inputs; `c` holds width/max_width (dcgan) or hidden/depth (mlp)."""
    if arch == "dcgan":
        return DCGANGenerator(in_dim, spec.shape, c.width, c.max_width)
    return MLPGenerator(in_dim, spec.shape, c.hidden, c.depth, tanh=spec.kind == "image")


def discriminator(arch: str, shape: tuple[int, ...], c: Any) -> nn.Module:
    """An x -> logit discriminator with `forward_with_features`, for inputs of `shape`."""
    if arch == "dcgan":
        return DCGANDiscriminator(shape, c.width, c.max_width, c.d_batchnorm)
    return MLPDiscriminator(shape, c.hidden, c.depth)


def feature_dim(base: nn.Module, shape: tuple[int, ...]) -> int:
    """Size of `base.forward_with_features`'s features for inputs of `shape` (one probe in eval mode)."""
    was = base.training
    with torch.no_grad():
        dim = base.eval().forward_with_features(torch.zeros(1, *shape))[1].shape[1]
    base.train(was)
    return int(dim)
