"""Training: the loop, its callbacks and the health monitor."""

from .callbacks import Callback, Checkpointer, MetricsLogger, SampleGrid
from .health import HealthMonitor
from .progress import ProgressBar
from .ema import EMA
from .hardware import resolve_device
from .trainer import Trainer, TrainingStopped
from .run import build_run, default_callbacks

__all__ = [
    "EMA", "Callback", "Checkpointer", "HealthMonitor", "MetricsLogger", "ProgressBar", "SampleGrid",
    "Trainer", "TrainingStopped", "build_run", "default_callbacks", "resolve_device",
]
