"""Progress output: a Rich bar on a terminal, plain periodic lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer


def summary(logs: dict[str, float], images_per_s: float) -> str:
    """'D 1.23  G 0.98  D(x) 0.71  D(G(z)) 0.30  acc r/f 0.82/0.77  412 img/s' from a step's logs."""
    parts = []
    for key, label in (("d/loss", "D"), ("g/loss", "G"), ("d/real", "D(x)"), ("d/fake", "D(G(z))")):
        if key in logs:
            parts.append(f"{label} {logs[key]:.3f}")
    if "d/acc_real" in logs:
        parts.append(f"acc r/f {logs['d/acc_real']:.2f}/{logs['d/acc_fake']:.2f}")
    for key, value in logs.items():
        if key.startswith("eval/") and key.count("/") == 1:
            parts.append(f"{key[5:].upper()} {value:.4g}")
    parts.append(f"{images_per_s:,.0f} img/s")
    return "  ".join(parts)


class ProgressBar(Callback):
    def __init__(self, console: Console | None = None, every: int = 5, plain_every_s: float = 10.0) -> None:
        self.console = console or Console(stderr=True)
        self.every = every
        self.plain_every_s = plain_every_s
        self._progress: Progress | None = None
        self._task = None
        self._logs: dict[str, float] = {}
        self._t0 = self._last_print = 0.0
        self._step0 = 0

    def on_train_start(self, trainer: "Trainer") -> None:
        self._t0 = self._last_print = time.perf_counter()
        self._step0 = trainer.step
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"),
                console=self.console, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=trainer.cfg.train.steps, completed=trainer.step, stats="")
        else:
            self.console.print(f"training {trainer.family.name} from step {trainer.step} to {trainer.cfg.train.steps}")

    def _rate(self, trainer: "Trainer", step: int) -> float:
        dt = time.perf_counter() - self._t0
        return (step - self._step0) * trainer.loader.batch_size / dt if dt > 0 else 0.0

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        # D and G values come from different phases with n_critic > 1: keep the latest of each
        self._logs.update(logs)
        if self._progress is not None:
            if step % self.every == 0 or step == trainer.cfg.train.steps:
                self._progress.update(self._task, completed=step, stats=summary(self._logs, self._rate(trainer, step)))
        elif time.perf_counter() - self._last_print >= self.plain_every_s or step == trainer.cfg.train.steps:
            self._last_print = time.perf_counter()
            rate = self._rate(trainer, step)
            left = (trainer.cfg.train.steps - step) * trainer.loader.batch_size / rate if rate else 0
            self.console.print(f"step {step}/{trainer.cfg.train.steps}  ETA {left:,.0f}s  {summary(self._logs, rate)}",
                               highlight=False, soft_wrap=True)

    def on_metrics(self, trainer: "Trainer", step: int, values: dict[str, float]) -> None:
        self._logs.update(values)

    def on_event(self, trainer: "Trainer", record: dict[str, Any]) -> None:
        style = {"health": "yellow", "rollback": "red", "stopped": "bold red"}.get(record["event"], "cyan")
        self.console.print(f"[{style}][{record['event']}][/{style}] step {record['step']}: {record['message']}",
                           highlight=False, soft_wrap=True)

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=trainer.step, stats=summary(self._logs, self._rate(trainer, trainer.step)))
            self._progress.stop()
            self._progress = None
