"""Evaluation during training: every N steps, metrics of the EMA generator against the real data.

Logs `eval/<value>` to the progress bar, TensorBoard and the JSONL log, keeps the checkpoint with the
lowest FID under RUN/best/, and warns when the classifier sees the fakes cover only a few classes
(class-coverage collapse on labelled data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..config import EvalConfig
from ..data.store import TensorData
from ..train import distributed
from ..train.callbacks import Callback
from .base import Provenance, SampleSet
from .evaluate import compute, fake_set, headline, real_set
from .registry import needs_any, parse_metrics

if TYPE_CHECKING:  # pragma: no cover
    from ..train.trainer import Trainer

CLASS_COLLAPSE_FRACTION = 0.5  # warn when fakes fall into fewer than half of the classes ...
CLASS_COLLAPSE_KL = 1.0        # ... or their class histogram is this far (nats) from the data's


def resolve_extractor(name: str, data: TensorData, inception_weights: str = ""):
    """The extractor for `name`; 'auto' is the fashion classifier for grey images, Inception for RGB, the speech
    classifier for audio clips."""
    if data.spec.kind not in ("image", "audio"):
        return None
    from . import features

    if name == "auto":
        name = "speech" if data.spec.kind == "audio" else "fashion" if data.spec.channels == 1 else "inception"
    if name == "inception":
        return features.load("inception", weights=inception_weights or None)
    try:
        return features.load(name)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from None


class EvalCallback(Callback):
    def __init__(self, cfg: EvalConfig, data: TensorData, seed: int = 0) -> None:
        self.cfg = cfg
        self.data = data
        self.seed = seed
        self.metrics = parse_metrics(cfg.metrics, data.spec.kind)
        if self.data.spec.kind == "image" and "classes" not in self.metrics and data.spec.n_classes:
            self._classes = True  # also watch class coverage when the data is labelled
        else:
            self._classes = False
        self.extractor = None
        self.real = None
        self.best: float | None = None
        self.best_step: int | None = None
        self.last_step: int | None = None
        self.history: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "last_step": self.last_step, "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = state.get("best"), state.get("best_step")
        self.last_step = state.get("last_step")
        self.history = list(state.get("history", []))

    def _prepare(self) -> None:
        if self.real is not None:
            return
        self.extractor = resolve_extractor(self.cfg.features, self.data, self.cfg.inception_weights)
        if self._classes and (self.extractor is None or not self.extractor.is_classifier):
            self._classes = False
        self.real = real_set(self.data, self.extractor, self.cfg.n, seed=self.seed,
                             keep_images=needs_any(self.metrics, "images"))

    every_rank = True  # in a multi-process run every rank generates and featurises its share of the fakes

    def _fakes(self, trainer: "Trainer") -> SampleSet:
        """Features of the n fakes; with K processes each makes n/K of them and rank 0 gathers the rest."""
        fam, G = trainer.family, trainer.generator
        was_training = G.training
        G.eval()
        z = fam.sample_inputs(self.cfg.n, generator=torch.Generator().manual_seed(self.seed + 2))  # the same z on every rank
        start, stop = distributed.share(self.cfg.n)

        def generate(a: int, b: int) -> torch.Tensor:
            return fam.sample(b - a, z=z[start + a : start + b].to(trainer.device), net=G).float().cpu()

        fake = fake_set(generate, stop - start, self.extractor, keep_images=needs_any(self.metrics, "images"))
        G.train(was_training)
        if distributed.current().enabled:
            fake = SampleSet(fake.name, distributed.gather_rows(fake.features),
                             None if fake.logits is None else distributed.gather_rows(fake.logits),
                             None if fake.images is None else distributed.gather_rows(fake.images))
        return fake

    @torch.inference_mode()
    def evaluate(self, trainer: "Trainer") -> dict[str, float]:
        main = distributed.current().is_main
        if main:
            self._prepare()
        elif self.extractor is None and self.data.spec.kind in ("image", "audio"):
            self.extractor = resolve_extractor(self.cfg.features, self.data, self.cfg.inception_weights)
        fake = self._fakes(trainer)
        values: dict[str, float] = {}
        results = {}
        if main:
            names = self.metrics + (["classes"] if self._classes else [])
            prov = Provenance(**(self.extractor.provenance() if self.extractor else {"extractor": "raw", "resize": "none"}),
                              seed=self.seed, reference=f"{self.data.source} ({len(self.real)} samples)",
                              reference_sha256=self.real.sha256)
            results = compute(names, self.real, fake, prov, seed=self.seed, n_classes=self.data.spec.n_classes,
                              mixture=self.data.spec.name)
            values = {f"eval/{k}": v for k, v in headline(results).items()}
        values = distributed.broadcast_object(values)
        self.last_step = trainer.step
        self.history.append({"step": trainer.step, **values})
        trainer.log_metrics(values)
        if "classes" in results:
            self._check_classes(trainer, results["classes"].values)
        if "eval/fid" in values and self.cfg.keep_best:
            value = values["eval/fid"]
            if self.best is None or value < self.best:
                self.best, self.best_step = value, trainer.step
                if main:
                    with torch.inference_mode(False):
                        trainer.save_checkpoint(root=trainer.out_dir / "best", keep_last=1)
        return values

    def _check_classes(self, trainer: "Trainer", values: dict[str, float]) -> None:
        k = self.data.spec.n_classes
        present, kl = values["classes_present"], values["kl"]
        if present < CLASS_COLLAPSE_FRACTION * k or kl > CLASS_COLLAPSE_KL:
            trainer.event("health", f"class coverage collapse: the classifier puts the fakes into {present:.0f} of "
                                    f"{k} classes (KL to the data's histogram {kl:.2f} nats). G is dropping modes: "
                                    f"try a lower D learning rate, the hinge or wgan-gp loss, or an R1 penalty")

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        if self.cfg.every > 0 and step % self.cfg.every == 0:
            self.evaluate(trainer)

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        if self.cfg.every > 0 and self.last_step != trainer.step and not interrupted and trainer.step > 0:
            self.evaluate(trainer)


class StageSWD(Callback):
    """Families that grow (progan, `Family.grows`): at the end of each stage of the schedule (the step after
    which `family.stage_changed` is set) and at the end of training, the multi-scale sliced Wasserstein distance
    (Karras et al. 2018's metric, metrics/swd.py) between `n` EMA samples and `n` real images at the full size,
    per Laplacian-pyramid level: logged as `swd/<H>x<W>` and `swd/mean`, and as an event naming the stage."""

    every_rank = False

    def __init__(self, data: TensorData | None = None, n: int = 1000, seed: int = 0) -> None:
        self.data, self.n, self.seed = data, n, seed  # data None: the trainer's (on_train_start)
        self._real: torch.Tensor | None = None
        self.history: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))

    def on_train_start(self, trainer: "Trainer") -> None:
        if self.data is None:
            self.data = trainer.data

    @torch.inference_mode()
    def measure(self, trainer: "Trainer", label: str) -> dict[str, float]:
        from .swd import sliced_wasserstein

        if self._real is None:
            g = torch.Generator().manual_seed(self.seed)
            idx = torch.randperm(len(self.data), generator=g)[: self.n]
            self._real = self.data.to_float(self.data.x[idx])
        fam, G = trainer.family, trainer.generator
        was_training = G.training
        G.eval()
        z = fam.sample_inputs(len(self._real), generator=torch.Generator().manual_seed(self.seed + 3))
        fake = torch.cat([fam.sample(len(c), z=c.to(trainer.device), net=G).float().cpu() for c in z.split(250)])
        G.train(was_training)
        patch = min(7, *self._real.shape[2:])
        swd = sliced_wasserstein(self._real, fake, patch_size=patch, min_size=max(patch, 8), seed=self.seed)
        values = {f"swd/{k.removeprefix('swd_')}": v for k, v in swd.items()}
        self.history.append({"step": trainer.step, "stage": label, **values})
        trainer.log_metrics(values)
        levels = ", ".join(f"{k.removeprefix('swd/')} {v:.1f}" for k, v in values.items() if k != "swd/mean")
        trainer.event("info", f"{label} at step {trainer.step}: SWD x1e3 per pyramid level {levels} "
                              f"(mean {values['swd/mean']:.1f}; {len(fake)} EMA samples vs {len(self._real)} real)")
        return values

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        fam = trainer.family
        if fam.stage_changed and step > 1:  # a family that grows (Family.grows) declares stage_changed
            self.measure(trainer, f"end of a stage (next: {fam.describe_stage()})")

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        if not interrupted:
            self.measure(trainer, f"end of training ({trainer.family.describe_stage()})")
