"""Progress output: a Rich bar on a terminal, plain periodic lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import format_duration
from .callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer


def summary(logs: dict[str, float], images_per_s: float) -> str:
    """'D 1.23  G 0.98  D(x) 0.71  D(G(z)) 0.30  acc r/f 0.82/0.77  412 img/s' from a step's logs."""
    parts = []
    for key, label in (("d/loss", "D"), ("g/loss", "G"), ("d/real", "D(x)"), ("d/fake", "D(G(z))"),
                       ("ae/recon", "rec"), ("vae/kl", "KL"), ("vae/bpd", "bits/dim"),
                       ("dann/class_loss", "cls"), ("dann/source_acc", "source acc"), ("dann/domain_acc", "domain acc")):
        if key in logs:
            parts.append(f"{label} {logs[key]:.3f}")
    if "d/acc_real" in logs:
        parts.append(f"acc r/f {logs['d/acc_real']:.2f}/{logs['d/acc_fake']:.2f}")
    if "progan/resolution" in logs:  # a growing family: the resolution it trains at, and the fade-in
        alpha = logs.get("progan/alpha", 1.0)
        parts.append(f"res {logs['progan/resolution']:.0f}" + (f" (fade {alpha:.2f})" if alpha < 1.0 else ""))
    if "aug/p" in logs:
        parts.append(f"ada p {logs['aug/p']:.2f}")
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
        self._by_time = False

    def on_train_start(self, trainer: "Trainer") -> None:
        self._t0 = self._last_print = time.perf_counter()
        self._step0 = trainer.step
        total, budget = trainer.total_steps, trainer.cfg.train.time
        self._by_time = not math.isfinite(total)  # a time budget alone: the bar fills with time
        if self.console.is_terminal:
            if self._by_time:
                columns = [TextColumn("[bold]step {task.fields[step]}"), BarColumn(), TimeElapsedColumn(),
                           TextColumn("{task.fields[left]}"), TextColumn("{task.fields[stats]}")]
                total_units, done = budget, budget - (trainer.time_left or 0.0)
            else:
                columns = [TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                           TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[left]}"),
                           TextColumn("{task.fields[stats]}")]
                total_units, done = total, trainer.step
            self._progress = Progress(*columns, console=self.console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task("train", total=total_units, completed=done, stats="",
                                                 step=trainer.step, left=self._left(trainer))
        else:
            left = f"the time budget is spent ({format_duration(trainer.time_left or 0)} of {format_duration(budget)} left)"
            to = f"until {left}" if self._by_time else f"to {total}" + (f" or until {left}" if budget > 0 else "")
            self.console.print(f"training {trainer.family.name} from step {trainer.step} {to}")

    @staticmethod
    def _left(trainer: "Trainer") -> str:
        left = trainer.time_left
        return "" if left is None else f"{format_duration(left)} left"

    def _rate(self, trainer: "Trainer", step: int) -> float:
        dt = time.perf_counter() - self._t0
        return (step - self._step0) * trainer.loader.batch_size / dt if dt > 0 else 0.0

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        # D and G values come from different phases with n_critic > 1: keep the latest of each
        self._logs.update(logs)
        last = step == trainer.total_steps
        if self._progress is not None:
            if step % self.every == 0 or last:
                done = trainer.cfg.train.time - (trainer.time_left or 0.0) if self._by_time else step
                self._progress.update(self._task, completed=done, step=step, left=self._left(trainer),
                                      stats=summary(self._logs, self._rate(trainer, step)))
        elif time.perf_counter() - self._last_print >= self.plain_every_s or last:
            self._last_print = time.perf_counter()
            rate = self._rate(trainer, step)
            if self._by_time:
                head = f"step {step}  {self._left(trainer)}"
            else:
                eta = (trainer.total_steps - step) * trainer.loader.batch_size / rate if rate else 0
                left = trainer.time_left
                eta = min(eta, left) if left is not None else eta
                head = f"step {step}/{trainer.total_steps}  ETA {eta:,.0f}s"
            self.console.print(f"{head}  {summary(self._logs, rate)}", highlight=False, soft_wrap=True)

    def on_metrics(self, trainer: "Trainer", step: int, values: dict[str, float]) -> None:
        self._logs.update(values)

    def on_event(self, trainer: "Trainer", record: dict[str, Any]) -> None:
        style = {"health": "yellow", "rollback": "red", "stopped": "bold red"}.get(record["event"], "cyan")
        self.console.print(f"[{style}][{record['event']}][/{style}] step {record['step']}: {record['message']}",
                           highlight=False, soft_wrap=True)

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        if self._progress is not None:
            done = trainer.cfg.train.time - (trainer.time_left or 0.0) if self._by_time else trainer.step
            self._progress.update(self._task, completed=done, step=trainer.step, left=self._left(trainer),
                                  stats=summary(self._logs, self._rate(trainer, trainer.step)))
            self._progress.stop()
            self._progress = None
