"""Network building blocks (torch only), sized from a DataSpec."""

from .conditional import (AuxClassifierDiscriminator, ConditionalAuxClassifierDiscriminator, ConditionalDiscriminator, ConditionalGenerator,
                          ProxyEmbeddingHead, SeparateAuxClassifierDiscriminator, d2d_cross_entropy)
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_stages
from .fashion_net import FashionNet
from .mlp import GaussianNoise, MLPDiscriminator, MLPGenerator, NoisyMLPClassifier

__all__ = ["AuxClassifierDiscriminator", "ConditionalAuxClassifierDiscriminator", "ConditionalDiscriminator", "ConditionalGenerator", "DCGANDiscriminator", "DCGANGenerator", "FashionNet", "GaussianNoise", "MLPDiscriminator", "MLPGenerator", "NoisyMLPClassifier", "ProxyEmbeddingHead", "SeparateAuxClassifierDiscriminator", "d2d_cross_entropy", "dcgan_stages"]
