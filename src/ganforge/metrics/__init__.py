"""Evaluation metrics for generated samples."""

from .mixtures import mode_coverage

__all__ = ["mode_coverage"]
