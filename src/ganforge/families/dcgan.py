"""DCGAN (Radford et al., 2015): all-convolutional G and D sized from the data's H x W."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..nn import DCGANDiscriminator, DCGANGenerator
from .base import AdversarialConfig, AdversarialFamily


@dataclass
class DCGANConfig(AdversarialConfig):
    latent_dim: int = 100
    width: int = 64         # channels of G's last and D's first conv; doubled per stage
    max_width: int = 512    # cap on channels per layer
    d_batchnorm: bool = True  # set False for WGAN-GP (the penalty is per-sample; BatchNorm mixes samples)


class DCGAN(AdversarialFamily):
    """Deep convolutional GAN; any adversarial loss, any image size."""

    Config = DCGANConfig
    name = "dcgan"
    description = "deep convolutional GAN (Radford 2015); images of any HxW"

    def __init__(self, cfg: DCGANConfig, spec, generator_only: bool = False) -> None:
        if spec.kind != "image":
            raise ValueError(f"dcgan needs images but '{spec.name}' holds {spec.kind}; use --family gan for 2-D points")
        super().__init__(cfg, spec, generator_only)

    def build_generator(self) -> nn.Module:
        return DCGANGenerator(self.cfg.latent_dim, self.spec.shape, self.cfg.width, self.cfg.max_width)

    def build_discriminator(self) -> nn.Module:
        return DCGANDiscriminator(self.spec.shape, self.cfg.width, self.cfg.max_width, self.cfg.d_batchnorm)
