"""Fully connected generator and discriminator (Goodfellow et al., 2014) for points or small images."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _mlp(sizes: list[int], act: nn.Module, dropout: float = 0.0) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), act]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPGenerator(nn.Module):
    """z (N, latent_dim) -> x with the data's shape; tanh output for images, linear for points."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], hidden: int, depth: int, tanh: bool) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        out_dim = 1
        for s in out_shape:
            out_dim *= s
        layers = _mlp([latent_dim] + [hidden] * depth, nn.ReLU())
        layers.append(nn.Linear(hidden, out_dim))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """x -> one logit per sample (N,). LeakyReLU(0.2) hidden layers."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int, depth: int) -> None:
        super().__init__()
        in_dim = 1
        for s in in_shape:
            in_dim *= s
        layers = _mlp([in_dim] + [hidden] * depth, nn.LeakyReLU(0.2))
        layers.append(nn.Linear(hidden, 1))
        self.net = nn.Sequential(*layers)

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (N,), last hidden layer (N, hidden)) from one pass."""
        h = self.net[:-1](torch.flatten(x, 1))
        return self.net[-1](h).squeeze(1), h

    def forward(self, x: Tensor) -> Tensor:
        return self.net(torch.flatten(x, 1)).squeeze(1)
