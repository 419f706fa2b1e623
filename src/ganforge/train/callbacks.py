"""Callbacks: everything around the loop. Each does one thing and says why when it acts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoint import count_nonfinite
from ..image import save_grid, save_scatter

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer


class Callback:
    # in a multi-process run, callbacks run on rank 0 only, unless they decide something every rank must
    # agree on (health: rollbacks) or take part in a collective (evaluation gathers every rank's features)
    every_rank = False

    def on_train_start(self, trainer: "Trainer") -> None: ...
    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None: ...
    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None: ...
    def on_event(self, trainer: "Trainer", record: dict[str, Any]) -> None: ...
    def on_metrics(self, trainer: "Trainer", step: int, values: dict[str, float]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Checkpointer(Callback):
    """Checkpoint every `every` steps, and always when training ends (also on Ctrl-C), unless a save failed:
    a second try (e.g. on a full disk) would only fail again and bury the first error."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.last_saved: int | None = None  # the last step a save was tried at (a non-finite state is skipped)
        self.failed = False

    def on_train_start(self, trainer: "Trainer") -> None:
        if trainer.step == 0 and not any((trainer.out_dir / "checkpoints").glob("step_*")):
            self._save(trainer)  # a step-0 checkpoint: something to roll back to from the first step

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        if self.every > 0 and step % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        if not self.failed and self.last_saved != trainer.step:
            self._save(trainer)

    def _save(self, trainer: "Trainer") -> None:
        try:
            trainer.save_checkpoint()
        except BaseException:
            self.failed = True
            raise
        self.last_saved = trainer.step


AUDIO_CLIPS = 4  # audio runs: WAV files written beside each spectrogram grid


class SampleGrid(Callback):
    """A PNG of G's samples from one fixed latent batch every `every` steps, plus `final.png` (audio: a grid of
    spectrograms, and the first AUDIO_CLIPS clips as NAME_i.wav).

    The latent batch comes from its own seeded generator, so grids are comparable across steps and runs
    and drawing them never touches the training RNG.
    """

    def __init__(self, every: int, n: int, seed: int, reference: torch.Tensor | None = None,
                 table: Any = None) -> None:
        self.every, self.n, self.seed = every, n, seed
        self.reference = reference  # mixture centres, drawn in red on scatter plots
        self.table = table  # table data: the real Table, drawn beside the samples (histograms, correlations)
        self.z: torch.Tensor | None = None
        self.last_path: Path | None = None

    @torch.inference_mode()
    def _draw(self, trainer: "Trainer", name: str) -> Path:
        fam = trainer.family
        if self.z is None:
            n = self.n if fam.spec.kind in ("image", "audio") else max(self.n, 2000)
            self.z = fam.sample_inputs(n, generator=torch.Generator().manual_seed(self.seed))
        G = trainer.generator
        was_training = G.training
        G.eval()
        x = fam.sample(len(self.z), z=self.z.to(trainer.device), net=G).float().cpu()
        G.train(was_training)
        folder = trainer.out_dir / "samples"
        if fam.spec.kind == "table":  # rows decoded into the table's units: a CSV, and histograms beside the real
            from ..data.table import transformer_from_spec
            from ..data.table_plots import save_table_figure

            fake = transformer_from_spec(fam.spec).inverse(x)
            folder.mkdir(parents=True, exist_ok=True)
            fake.write(folder / f"{name}.csv")
            path = folder / f"{name}.png"
            if self.table is not None:
                save_table_figure(self.table, fake, path, title=f"{name}: synthetic vs real")
            self.last_path = path
            return path
        if fam.spec.kind == "image":
            path = save_grid(x, folder / f"{name}.png")
        elif fam.spec.kind == "audio":  # spectrograms in a grid, and the first clips as WAV files beside it
            from ..data.audio import spectrogram_images, write_wav

            path = save_grid(spectrogram_images(x), folder / f"{name}.png")
            for i, clip in enumerate(x[:AUDIO_CLIPS]):
                write_wav(folder / f"{name}_{i}.wav", clip, fam.spec.sample_rate)
        else:
            path = save_scatter(x, folder / f"{name}.png", reference=self.reference)
        self.last_path = path
        return path

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        if self.every > 0 and step % self.every == 0:
            self._draw(trainer, f"step_{step:08d}")

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        # after a divergence (stopped on NaN) the weights in memory are not the ones checkpointed: draw nothing
        # rather than a grid of NaNs that final.png would pass off as the result
        bad = count_nonfinite(list(trainer.generator.parameters()))
        if bad:
            trainer.event("warning", f"no samples/final.png: {bad:,} of the generator's weights are not finite "
                                     f"(training diverged); sample from the last checkpoint instead")
            return
        self._draw(trainer, "final")


class MetricsLogger(Callback):
    """Every `every` steps: one JSON line per step with every logged value, and TensorBoard scalars.

    Events (health warnings, rollbacks) go to the same JSONL file as {"event": ...} records.
    """

    def __init__(self, every: int, tensorboard: bool = True) -> None:
        self.every = every
        self.tensorboard = tensorboard
        self._file = None
        self._writer = None
        self._writer_class = None
        if tensorboard:  # imported now, at set-up (~50 ms), not on the training clock at on_train_start
            from torch.utils.tensorboard import SummaryWriter

            self._writer_class = SummaryWriter
        self._t0 = 0.0
        self._step0 = 0

    def on_train_start(self, trainer: "Trainer") -> None:
        self._file = open(trainer.out_dir / "log.jsonl", "a", buffering=1)
        if self.tensorboard:
            self._writer = self._writer_class(str(trainer.out_dir / "tb"), purge_step=trainer.step or None)
        self._t0, self._step0 = time.perf_counter(), trainer.step

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        if self.every <= 0 or step % self.every:
            return
        dt = time.perf_counter() - self._t0
        record = {"step": step, "time": time.time(), **logs}
        if dt > 0:
            record["perf/images_per_s"] = (step - self._step0) * trainer.loader.batch_size / dt
        self._file.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for k, v in record.items():
                if k not in ("step", "time"):
                    self._writer.add_scalar(k, v, step)

    def on_metrics(self, trainer: "Trainer", step: int, values: dict[str, float]) -> None:
        if self._file is not None:
            self._file.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")
        if self._writer is not None:
            for k, v in values.items():
                self._writer.add_scalar(k, v, step)

    def on_event(self, trainer: "Trainer", record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
        if self._writer is not None:
            self._writer.add_text(record["event"], record["message"], record["step"])

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None
