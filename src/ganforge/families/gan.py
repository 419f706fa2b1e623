"""The original GAN (Goodfellow et al., 2014): MLP generator and discriminator.

`loss=minimax` is the paper's saturating objective min_G log(1 - D(G(z))); `loss=ns` (the default) is the
non-saturating -log D(G(z)) the paper recommends in practice. Works on points (ring8, grid25) and on small
images (flattened; tanh output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from ..nn import MLPDiscriminator, MLPGenerator
from .base import AdversarialConfig, AdversarialFamily


@dataclass
class GANConfig(AdversarialConfig):
    latent_dim: int = 64
    hidden: int = 256      # units per hidden layer, G and D
    depth: int = 3         # hidden layers, G and D
    # D reads x * d_input_scale. With weight clipping (loss wgan) every weight and bias stays within
    # +-clip_value, so a critic fed points spread over +-4 (grid25) cannot put its kinks where the modes are;
    # bringing the points to about unit size (1 / their per-coordinate RMS) lets it. Gulrajani et al.'s toy
    # code divides its 25-Gaussian data by 2.828 for the same reason. 1 (the default) leaves the input as is.
    d_input_scale: float = 1.0


class GAN(AdversarialFamily):
    """Vanilla MLP GAN; minimax or non-saturating (or any other adversarial loss)."""

    Config = GANConfig
    name = "gan"
    description = "original MLP GAN (Goodfellow 2014); points or small images"

    def __init__(self, cfg: GANConfig, spec, generator_only: bool = False) -> None:
        v = cfg.d_input_scale
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
            raise ValueError(f"model.d_input_scale must be a positive number (e.g. 0.354 for grid25 with --loss "
                             f"wgan; 1 leaves D's input as it is), got {v!r}")
        super().__init__(cfg, spec, generator_only)

    def build_generator(self) -> nn.Module:
        c = self.cfg
        return MLPGenerator(c.latent_dim, self.spec.shape, c.hidden, c.depth, tanh=self.spec.kind == "image")

    def build_discriminator(self) -> nn.Module:
        return MLPDiscriminator(self.spec.shape, self.cfg.hidden, self.cfg.depth, self.cfg.d_input_scale)
