"""Loss functions: pure functions of logits and tensors."""

from .adversarial import LOSSES, AdversarialLoss, get_loss
from .penalties import gp_of_gradient, gradient_penalty, interpolate, r1_penalty

__all__ = ["LOSSES", "AdversarialLoss", "get_loss", "gp_of_gradient", "gradient_penalty", "interpolate", "r1_penalty"]
