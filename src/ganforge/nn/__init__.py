"""Network building blocks (torch only), sized from a DataSpec."""

from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_stages
from .mlp import MLPDiscriminator, MLPGenerator

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "dcgan_stages"]
