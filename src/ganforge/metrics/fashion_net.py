"""The Fashion-MNIST classifier now lives in nn/fashion_net.py (training loads it for srgan's content loss).

This name stays importable because the shipped weights' fashion.json records its architecture as
`ganforge.metrics.fashion_net.FashionNet` (weights trained from now on record the nn/ path).
"""

from __future__ import annotations

from ..nn.fashion_net import FEATURE_DIM, N_CLASSES, FashionNet, conv_bn_relu, count_parameters

__all__ = ["FEATURE_DIM", "N_CLASSES", "FashionNet", "conv_bn_relu", "count_parameters"]
