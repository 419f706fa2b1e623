"""Network building blocks (torch only), sized from a DataSpec."""

from .conditional import (AuxClassifierDiscriminator, ConditionalAuxClassifierDiscriminator, ConditionalDiscriminator, ConditionalGenerator,
                          TextConditionalDiscriminator, TextConditionalGenerator, TextPreview, TextProjectionDiscriminator,
                          ProxyEmbeddingHead, SeparateAuxClassifierDiscriminator, d2d_cross_entropy)
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_stages
from .fastgan import FastGANDiscriminator, FastGANGenerator
from .fashion_net import FashionNet
from .mlp import GaussianNoise, MLPDiscriminator, MLPGenerator, NoisyMLPClassifier
from .progan import ProGANDiscriminator, ProGANGenerator, progan_levels
from .stylegan import StyleGAN2Discriminator, StyleGAN2Generator

__all__ = ["AuxClassifierDiscriminator", "ConditionalAuxClassifierDiscriminator", "ConditionalDiscriminator", "ConditionalGenerator", "DCGANDiscriminator", "DCGANGenerator", "FastGANDiscriminator", "FastGANGenerator", "FashionNet", "GaussianNoise", "MLPDiscriminator", "MLPGenerator", "NoisyMLPClassifier", "ProGANDiscriminator", "ProGANGenerator", "ProxyEmbeddingHead", "SeparateAuxClassifierDiscriminator", "StyleGAN2Discriminator", "StyleGAN2Generator", "TextConditionalDiscriminator", "TextConditionalGenerator", "TextPreview", "TextProjectionDiscriminator", "d2d_cross_entropy", "dcgan_stages", "progan_levels"]
