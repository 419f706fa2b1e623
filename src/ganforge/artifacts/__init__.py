"""What leaves training: the (EMA) generator and its config, ready to sample."""

from .sampler import Sampler, slerp

__all__ = ["Sampler", "slerp"]
