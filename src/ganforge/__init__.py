"""ganforge: train, evaluate, diagnose, export and serve GANs."""

__version__ = "0.1.0"
