"""Network building blocks (torch only), sized from a DataSpec."""

from .conditional import AuxClassifierDiscriminator, ConditionalDiscriminator, ConditionalGenerator
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_stages
from .mlp import MLPDiscriminator, MLPGenerator

__all__ = ["AuxClassifierDiscriminator", "ConditionalDiscriminator", "ConditionalGenerator", "DCGANDiscriminator", "DCGANGenerator", "MLPDiscriminator", "MLPGenerator", "dcgan_stages"]
