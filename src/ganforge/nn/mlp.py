"""Fully connected generator and discriminator (Goodfellow et al., 2014) for points or small images."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _mlp(sizes: list[int], act: nn.Module, dropout: float = 0.0, batchnorm: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b, bias=not batchnorm), nn.BatchNorm1d(b), act] if batchnorm else [nn.Linear(a, b), act]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPGenerator(nn.Module):
    """z (N, latent_dim) -> x with the data's shape; tanh output for images, linear for points."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], hidden: int, depth: int, tanh: bool,
                 batchnorm: bool = False) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        out_dim = 1
        for s in out_shape:
            out_dim *= s
        layers = _mlp([latent_dim] + [hidden] * depth, nn.ReLU(), batchnorm=batchnorm)
        layers.append(nn.Linear(hidden, out_dim))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """x -> one logit per sample (N,). LeakyReLU(0.2) hidden layers.

    `input_scale` multiplies x before the first layer (a constant, not learned): 1 leaves it as is."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int, depth: int, input_scale: float = 1.0) -> None:
        super().__init__()
        if not (input_scale > 0 and math.isfinite(input_scale)):
            raise ValueError(f"the discriminator's input_scale must be a positive number, got {input_scale}")
        in_dim = 1
        for s in in_shape:
            in_dim *= s
        self.input_scale = float(input_scale)
        layers = _mlp([in_dim] + [hidden] * depth, nn.LeakyReLU(0.2))
        layers.append(nn.Linear(hidden, 1))
        self.net = nn.Sequential(*layers)

    def _flat(self, x: Tensor) -> Tensor:
        x = torch.flatten(x, 1)
        return x * self.input_scale if self.input_scale != 1.0 else x

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (N,), last hidden layer (N, hidden)) from one pass."""
        h = self.net[:-1](self._flat(x))
        return self.net[-1](h).squeeze(1), h

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self._flat(x)).squeeze(1)


class GaussianNoise(nn.Module):
    """Adds N(0, sigma^2) noise in training mode; the identity in eval mode."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.sigma > 0:
            return x + self.sigma * torch.randn_like(x)
        return x

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class NoisyMLPClassifier(nn.Module):
    """x -> K class logits, the semi-supervised discriminator of Salimans et al. (2016) for MNIST-sized
    inputs: Gaussian noise on the input (`input_noise`) and on every hidden layer (`hidden_noise`), ReLU,
    weight-normalised linear layers. `forward_with_features` also returns the last hidden layer, the
    features that feature matching compares."""

    def __init__(self, in_shape: tuple[int, ...], n_classes: int, hidden: tuple[int, ...] = (1000, 500, 250, 250, 250),
                 input_noise: float = 0.3, hidden_noise: float = 0.5) -> None:
        super().__init__()
        from torch.nn.utils.parametrizations import weight_norm

        in_dim = 1
        for s in in_shape:
            in_dim *= s
        layers: list[nn.Module] = [GaussianNoise(input_noise)]
        prev = in_dim
        for i, h in enumerate(hidden):
            if i > 0:
                layers.append(GaussianNoise(hidden_noise))
            layers += [weight_norm(nn.Linear(prev, h)), nn.ReLU()]
            prev = h
        self.trunk = nn.Sequential(*layers)
        self.head_noise = GaussianNoise(hidden_noise)
        self.head = weight_norm(nn.Linear(prev, n_classes))

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(torch.flatten(x, 1))
        return self.head(self.head_noise(h)), h

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_features(x)[0]
