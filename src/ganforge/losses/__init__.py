"""Loss functions: pure functions of logits and tensors."""

from .adversarial import LOSSES, AdversarialLoss, get_loss
from .penalties import gradient_penalty, interpolate, r1_penalty

__all__ = ["LOSSES", "AdversarialLoss", "get_loss", "gradient_penalty", "interpolate", "r1_penalty"]
