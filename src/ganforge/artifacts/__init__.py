"""What leaves training: the (EMA) generator and its config, ready to sample."""

from .classifier import Classifier
from .sampler import Sampler

__all__ = ["Classifier", "Sampler"]
