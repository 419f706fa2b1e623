"""The training loop: for each step, for each phase of the family: zero grads, autocast, loss, backward,
clip, step; then EMA and the callbacks. Checkpoints, grids, logs, progress and health are callbacks.

Full-state resume: weights, EMA, optimizers, step, torch/numpy/python RNG, loader position and callback
state are all in the checkpoint, so "train 2N" and "train N, resume, train N" give identical weights.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..checkpoint import NonFiniteWeights, latest_checkpoint, read_checkpoint, write_checkpoint
from ..config import RunConfig, validate
from ..data.store import Loader
from ..families.base import Family
from ..families.phases import StepContext, lazy_ratio
from ..nn.augment import Augmenter
from . import distributed, memory
from .callbacks import Callback
from .ema import EMA
from .hardware import resolve_device, resolve_precision


class TrainingStopped(RuntimeError):
    """Training cannot go on (e.g. losses stayed non-finite after the allowed rollbacks)."""


class Trainer:
    def __init__(self, family: Family, loader: Loader, cfg: RunConfig, out_dir: str | Path,
                 callbacks: list[Callback] | None = None, dist: distributed.DistInfo | None = None) -> None:
        validate(cfg)  # every setting's range (train.steps, learning rates, ...), before the run folder exists
        self.augment = make_augmenter(cfg.train, family)  # also before the folder: a bad policy writes nothing
        self.family = family
        self.loader = loader
        self.cfg = cfg
        self.dist = dist if dist is not None else distributed.current()
        self.out_dir = Path(out_dir)
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.callbacks = list(callbacks or [])
        tc = cfg.train
        self.device = resolve_device(tc.device, self.dist.local_rank if self.dist.enabled else None)
        self.precision, self.precision_reason = resolve_precision(tc, self.device, family.spec.kind)
        if self.dist.enabled and self.device.type == "cpu" and self.precision_reason.startswith("auto"):
            # auto may time a convolution (hardware.bf16_conv_speedup): every rank takes rank 0's answer
            picked = distributed.broadcast_object((self.precision, self.precision_reason))
            self.precision, self.precision_reason = picked
        # on CPU, each step's activations are host memory: reuse them instead of page-faulting afresh (memory.py)
        self.malloc = memory.tune_malloc() if tc.malloc == "auto" and self.device.type == "cpu" else None
        if (loader.rank, loader.world_size) != (self.dist.rank, self.dist.world_size):
            raise ValueError(f"the loader is set up for rank {loader.rank} of {loader.world_size}, but this process "
                             f"is rank {self.dist.rank} of {self.dist.world_size}")
        if tc.sync_bn and self.dist.enabled:
            if self.device.type != "cuda":
                raise ValueError("train.sync_bn needs CUDA ranks (PyTorch's SyncBatchNorm does not run on CPU); "
                                 "drop --set train.sync_bn=true, or use a family without BatchNorm")
            self.family = family = nn.SyncBatchNorm.convert_sync_batchnorm(family)
        self.family.to(self.device)
        if tc.channels_last:
            self.family.to(memory_format=torch.channels_last)
        # the family's phases, as data: optimizers, learning rates, the EMA trigger and torch.compile's
        # exclusions all come from this list; the trainer knows no phase by name (families/phases.py)
        self.phase_list = family.check_phases()
        self.params = {p.name: list(family.parameters_for(p.name)) for p in self.phase_list}
        self._param_ids = {ph: {id(p) for p in ps} for ph, ps in self.params.items()}
        self.optimizers = self._build_optimizers()
        self.ema = EMA(family.G, tc.ema_decay, tc.ema_warmup) if tc.ema_decay > 0 else None
        family.shard = (self.dist.rank, self.dist.world_size)
        self.ddp: dict[str, nn.Module] = {}
        if self.dist.enabled:  # one DDP wrapper per phase, each reducing only its own parameters
            self.ddp = {ph: distributed.wrap_phase(family, ph, self.params[ph])
                        for ph in self.params if self.params[ph]}
            distributed.sync_buffers(family)
        self.step = 0
        self.rollbacks = 0
        self.events: list[dict[str, Any]] = []
        self.last_logs: dict[str, float] = {}
        self._stop_reason: str | None = None
        self._elapsed0 = 0.0             # training seconds of earlier sessions (from the checkpoint)
        self._fit_t0: float | None = None  # perf_counter() when this session's fit() started
        self._stop_agreed = False
        self.compiled: list[str] = []
        if tc.compile:
            self.compiled = self._compile()

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam per optimizer the phases name (a phase's own, or the one a lazy regulariser shares), with
        the learning rate and betas of the train.* keys its phase declares, scaled for lazy regularisers.

        A phase without parameters (e.g. pix2pix's L1-only baseline has no D) gets no optimizer. The fused
        Adam (one kernel over all tensors) is ~6x faster than the per-tensor loop on CPU: ~60 ms of a DCGAN step.
        """
        settings = vars(self.cfg.train)  # train.* by name: the phases name their keys
        fused = self.device.type in ("cpu", "cuda")
        optimizers = {}
        for p in self.phase_list:
            if p.optimizer or not self.params[p.name]:  # a shared optimizer is built with its owner
                continue
            for key in (p.lr, *p.betas):
                if key not in settings:
                    raise ValueError(f"{self.family.name}'s phase '{p.name}' reads train.{key}, which does not exist")
            c = lazy_ratio(self.phase_list, p.name)  # Karras et al. 2020, Appendix B: lr * c, betas ** c
            lr, betas = settings[p.lr] * c, tuple(settings[b] ** c for b in p.betas)
            optimizers[p.name] = torch.optim.Adam(self.params[p.name], lr=lr, betas=betas, fused=fused)
        for opt in optimizers.values():
            for g in opt.param_groups:  # the undecayed rate; saved with the optimizer state
                g["base_lr"] = g["lr"]
        return optimizers

    # -- randomness -----------------------------------------------------------------------------
    @staticmethod
    def seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    @property
    def generator(self) -> nn.Module:
        """The generator to sample from: the EMA copy when there is one (its BatchNorm statistics re-estimated with
        its own weights first: EMA.refresh_batchnorm)."""
        if self.ema is None:
            return self.family.G
        self.ema.refresh_batchnorm(self.family, self.loader.batch_size)
        return self.ema.module

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def describe_speed(self) -> str:
        """One line: precision (and why), memory format, compilation, processes."""
        tc = self.cfg.train
        parts = [f"{self.precision} ({self.precision_reason})"]
        if self.precision == "bf16":
            parts[0] = f"bf16 autocast with fp32 weights ({self.precision_reason})"
        if tc.channels_last and self.family.spec.kind == "image":
            parts.append("channels_last")
        if self.compiled:
            parts.append("compiled " + "+".join(self.compiled))
        if self.malloc:
            parts.append(self.malloc)
        if self.dist.enabled:
            parts.append(f"{self.dist.world_size} processes ({self.dist.backend}), "
                         f"{self.loader.local_batch} of the {self.loader.batch_size} samples per step each")
        return ", ".join(parts) + f", on {self.device}"

    def _compile(self) -> list[str]:
        """torch.compile each top-level network in place (state_dict names unchanged); D stays eager when a
        penalty differentiates through its gradient, which compiled graphs do not support."""
        eager = {i for p in self.phase_list if p.double_backward for i in self._param_ids[p.name]}
        done = []
        for name, child in self.family.named_children():
            ids = {id(p) for p in child.parameters()}
            if not ids:
                continue
            if ids & eager:
                self.event("info", f"torch.compile: {name} stays eager (its loss differentiates a gradient: R1 / WGAN-GP)")
                continue
            child.compile(dynamic=False)
            done.append(name)
        return done

    # -- the loop -------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        fam, tc = self.family, self.cfg.train
        batch = self.loader.next_batch().to(self.device, channels_last=tc.channels_last)
        logs: dict[str, Any] = {}
        active = [p for p in self.phase_list if p.runs_at(self.step)]
        ctx = StepContext(self.step, tuple(p.name for p in active))
        if tc.lr_decay != "none":
            scale = self.lr_scale(self.step)
            for opt in self.optimizers.values():
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * scale
        done: list[str] = []
        for spec in active:
            phase = spec.name
            opt = self.optimizers[spec.optimizer_key]
            opt.zero_grad(set_to_none=True)
            # the parameters of a phase that already stepped (D, in G's phase) get no gradient now: their
            # weight gradients would be thrown away, and skipping them saves about a third of D's backward
            frozen = [p for ph in done for p in self.params[ph]
                      if p.requires_grad and id(p) not in self._param_ids[phase]]
            for p in frozen:
                p.requires_grad_(False)
            try:
                with self.autocast():
                    out = self.ddp[phase](batch, ctx) if phase in self.ddp else fam.loss(phase, batch, ctx)
                out.loss.backward()
            finally:
                for p in frozen:
                    p.requires_grad_(True)
            if tc.grad_clip > 0:
                logs[f"{phase}/grad_norm"] = torch.nn.utils.clip_grad_norm_(self.params[phase], tc.grad_clip)
            else:  # the norm alone (the health monitor reads it): clip_grad_norm_ with an infinite bound would also
                # multiply every gradient by 1 (100 vs 290 us a call on ctgan's two MLPs, 2 CPU threads)
                grads = [p.grad for p in self.params[phase] if p.grad is not None]
                logs[f"{phase}/grad_norm"] = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
            opt.step()
            fam.after_step(phase)
            logs.update(out.logs)
            logs.setdefault(f"{phase}/loss", out.loss.detach())
            done.append(phase)
        if self.dist.enabled:
            distributed.sync_buffers(fam)
        if self.ema is not None and any(p.updates_ema for p in active):
            self.ema.update(fam.G)
        self.step += 1
        if self.dist.enabled:  # every rank logs (and so decides) the same: the averages over the ranks
            values, stop = distributed.average_logs(logs, self._stop_reason is not None, self.device)
            if stop and self._stop_reason is None:
                self._stop_reason = f"another process stopped at step {self.step}"
            self._stop_agreed = stop
        else:
            values = {k: float(v) for k, v in logs.items()}
        if self.augment is not None:  # ADA: r_t averaged over the ranks, so every rank moves p alike
            if "d/rt" in values:
                self.augment.observe(values["d/rt"], tc.batch_size)
            if self.augment.kind == "ada":
                values["aug/p"] = self.augment.p
        return values

    def _should_stop(self) -> bool:
        """A single process stops when asked; K processes stop together, once all have heard (one step later
        at most), since a rank that leaves early would leave the others waiting in a collective."""
        if self.dist.enabled:
            return self._stop_agreed
        return self._stop_reason is not None

    # -- budgets: steps and wall-clock time ---------------------------------------------------------
    @property
    def total_steps(self) -> float:
        """The step limit: train.steps, or none (inf) when a time budget is given with steps = 0."""
        tc = self.cfg.train
        return math.inf if tc.steps == 0 and tc.time > 0 else tc.steps

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, over every resumed session of the run (what `train.time` limits)."""
        running = time.perf_counter() - self._fit_t0 if self._fit_t0 is not None else 0.0
        return self._elapsed0 + running

    @property
    def time_left(self) -> float | None:
        """Seconds left of the time budget (None without one)."""
        tc = self.cfg.train
        return max(0.0, tc.time - self.elapsed) if tc.time > 0 else None

    def progress(self, step: int | None = None) -> float | None:
        """The fraction of the run done, by steps or time, whichever is further (None: no limit known)."""
        tc = self.cfg.train
        step = self.step if step is None else step
        parts = []
        if math.isfinite(self.total_steps) and self.total_steps > 0:
            parts.append(step / self.total_steps)
        if tc.time > 0:
            parts.append(self.elapsed / tc.time)
        return min(1.0, max(parts)) if parts else None

    def _budget_left(self) -> bool:
        if self.step >= self.total_steps:
            return False
        if self.cfg.train.time <= 0:
            return True
        spent = self.elapsed >= self.cfg.train.time
        if self.dist.enabled:  # every rank stops at the same step: rank 0's clock decides
            spent = distributed.broadcast_flag(spent, self.device)
        return not spent

    def fit(self) -> "Trainer":
        """Train up to cfg.train.steps (and within cfg.train.time). Ctrl-C (or SIGTERM) stops after the current
        step with a checkpoint."""
        self._stop_agreed = False
        self._fit_t0 = time.perf_counter()
        if self.step < self.total_steps:
            self.family.check_ready()  # before on_train_start writes the first checkpoint
        self._emit("on_train_start")
        restore = self._install_signal_handlers()
        failure: BaseException | None = None
        try:
            while not self._should_stop() and self._budget_left():
                self.family.train()
                logs = self.train_step()
                self.last_logs = logs
                self._emit("on_step_end", self.step, logs)
        except BaseException as e:
            failure = e
            raise
        finally:
            restore()
            interrupted = self._stop_reason is not None and self.step < self.total_steps
            self._end(interrupted, failure)
            self._elapsed0, self._fit_t0 = self.elapsed, None
        return self

    def _end(self, interrupted: bool, failure: BaseException | None) -> None:
        """on_train_end for every callback. After a failure, a callback's own error (e.g. a second write to a
        full disk) becomes a note on the first one instead of replacing it."""
        if failure is None:
            self._emit("on_train_end", interrupted)
            return
        for cb in self.callbacks:
            try:
                cb.on_train_end(self, interrupted)
            except Exception as e:
                failure.add_note(f"then {type(cb).__name__}.on_train_end failed too: {e}")

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self._stop_reason is not None:  # second Ctrl-C: abort at once
                raise KeyboardInterrupt
            self._stop_reason = f"{signal.Signals(signum).name} at step {self.step}"
            self.event("interrupt", "stopping at the end of the current step: saving a checkpoint (Ctrl-C again to abort)")

        for s in previous:
            signal.signal(s, handler)

        def restore():
            for s, h in previous.items():
                signal.signal(s, h)

        return restore

    def _emit(self, hook: str, *args: Any) -> None:
        step = self.step
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)
            if hook == "on_step_end" and self.step != step:  # a rollback: this step's logs are void
                return

    def log_metrics(self, values: dict[str, float]) -> None:
        """Values computed outside the step (e.g. FID by an evaluation callback): logged like step values."""
        for cb in self.callbacks:
            cb.on_metrics(self, self.step, values)

    def event(self, kind: str, message: str) -> None:
        """A notable event (health warning, rollback, interrupt): kept, and shown by callbacks that care."""
        record = {"event": kind, "step": self.step, "message": message, "time": time.time()}
        self.events.append(record)
        for cb in self.callbacks:
            cb.on_event(self, record)

    # -- state ----------------------------------------------------------------------------------
    def run_config(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "ganforge_version": __version__,
            "precision": self.precision,
            "world_size": self.dist.world_size,
            "family": self.family.name,
            "model": asdict(self.family.cfg),
            "spec": self.family.spec.to_json(),
            "run": self.cfg.to_dict(),
        }

    def lr_scale(self, step: int) -> float:
        """The learning-rate multiplier of `step` under `train.lr_decay` (1 throughout for "none"). With a time
        budget the decay follows the fraction of the budget spent, or of the steps if that is further."""
        tc = self.cfg.train
        if tc.lr_decay == "none":
            return 1.0
        if tc.time <= 0:  # steps alone: exactly reproducible
            if tc.steps <= 0:
                return 1.0
            start = tc.lr_decay_start * tc.steps
            return 1.0 if step < start else max(0.0, 1.0 - (step - start) / (tc.steps - start))
        frac, start = self.progress(step) or 0.0, tc.lr_decay_start
        return 1.0 if frac < start or start >= 1 else max(0.0, 1.0 - (frac - start) / (1.0 - start))

    def state_dict(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        return {
            "step": self.step,
            "elapsed_s": round(self.elapsed, 3),
            "rollbacks": self.rollbacks,
            "ema_updates": self.ema.updates if self.ema else 0,
            "loader": self.loader.state_dict(),
            "rng_python": _jsonable(random.getstate()),
            "rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "lr": {ph: [g["lr"] for g in opt.param_groups] for ph, opt in self.optimizers.items()},
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks if cb.state_dict()},
            "augment": self.augment.state_dict() if self.augment is not None else None,
            "events": self.events[-50:],
        }

    def save_checkpoint(self, root: str | Path | None = None, keep_last: int | None = None) -> Path | None:
        """Checkpoint the full state under `root` (default: the run directory; e.g. RUN/best for the best).

        A state with non-finite weights is not written (it would become what resume, rollback and sampling
        use): a warning event names the step and None is returned.
        """
        optim = {f"optim/{ph}": opt.state_dict() for ph, opt in self.optimizers.items()}
        optim["rng/torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            optim["rng/cuda"] = torch.cuda.get_rng_state_all()
        try:
            return write_checkpoint(
                self.out_dir if root is None else root, self.step,
                config=self.run_config(),
                model=self.family.state_dict(),
                ema=self.generator.state_dict() if self.ema else None,
                optim=optim,
                state=self.state_dict(),
                keep_last=self.cfg.log.keep_last if keep_last is None else keep_last,
            )
        except NonFiniteWeights as e:
            self.event("warning", f"no checkpoint written at step {self.step}: {e.count:,} weights or optimizer "
                                  f"values are not finite (the last finite checkpoint stays the newest)")
            return None

    def load_checkpoint(self, path: str | Path | None = None) -> Path:
        """Restore the full training state from a checkpoint (default: the latest in out_dir)."""
        path = Path(path) if path is not None else latest_checkpoint(self.out_dir)
        if path is None:
            raise ValueError(f"no checkpoint to resume in '{self.out_dir}'")
        ck = read_checkpoint(path)
        saved_family = ck["config"].get("family")
        if saved_family != self.family.name:
            raise ValueError(f"checkpoint {path} is a '{saved_family}' run, not '{self.family.name}'")
        saved_precision = ck["config"].get("precision")
        if (self.precision_reason.startswith("auto") and saved_precision in ("fp32", "bf16")
                and saved_precision != self.precision):
            # auto resolved differently this time (another machine, or a measured speed-up near the threshold):
            # the run continues as it started, so resume stays bit-exact, and says what that costs
            now = self.precision
            self.precision, self.precision_reason = saved_precision, f"auto, kept from the run's start ({path.name})"
            self.event("warning", f"train.precision=auto picks {now} on this machine, but the run started in "
                                  f"{saved_precision}; it continues in {saved_precision} so that resume stays "
                                  f"bit-exact (pass --precision {now} to switch, at the cost of that exactness)")
        self.family.load_state_dict(ck["model"])
        for ph, opt in self.optimizers.items():
            opt.load_state_dict(ck["optim"][f"optim/{ph}"])
        torch.set_rng_state(ck["optim"]["rng/torch"])
        if "rng/cuda" in ck["optim"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ck["optim"]["rng/cuda"])
        st = ck["state"]
        self.step = int(st["step"])
        self._elapsed0 = float(st.get("elapsed_s", 0.0))  # the time budget continues where the checkpoint left it
        if self._fit_t0 is not None:  # a rollback inside fit: the clock keeps running from now
            self._fit_t0 = time.perf_counter()
        self.rollbacks = int(st.get("rollbacks", 0))
        if self.ema is not None:
            self.ema.load(ck["ema"], int(st.get("ema_updates", 0)))
        self.loader.load_state_dict(st["loader"])
        random.setstate(_tupled(st["rng_python"]))
        n = st["rng_numpy"]
        np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
        for ph, lrs in st.get("lr", {}).items():
            for g, lr in zip(self.optimizers[ph].param_groups, lrs):
                g["lr"] = lr
                g.setdefault("base_lr", lr)  # checkpoints from before train.lr_decay existed
        if self.augment is not None and st.get("augment"):
            self.augment.load_state_dict(st["augment"])
        saved_cb = st.get("callbacks", {})
        for cb in self.callbacks:
            if type(cb).__name__ in saved_cb:
                cb.load_state_dict(saved_cb[type(cb).__name__])
        return path

    def rollback(self, reason: str) -> None:
        """Go back to the last checkpoint after a non-finite loss; stop after `max_rollbacks` tries.

        The RNG is reseeded (a different batch/noise sequence) and the learning rates are scaled by
        `rollback_lr_factor`, since replaying the exact same steps would diverge again.
        """
        hc = self.cfg.health
        if self.rollbacks >= hc.max_rollbacks:
            msg = (f"{reason}; stopped after {self.rollbacks} rollbacks. Lower the learning rates "
                   f"(--set train.lr_d=... train.lr_g=...), enable train.grad_clip, or use a more stable loss")
            self.event("stopped", msg)
            raise TrainingStopped(msg)
        path = latest_checkpoint(self.out_dir)
        if path is None:
            raise TrainingStopped(f"{reason}; no checkpoint to roll back to")
        rollbacks = self.rollbacks + 1
        self.load_checkpoint(path)
        self.rollbacks = rollbacks
        torch.manual_seed(self.cfg.train.seed + 7919 * rollbacks)
        self.loader.seed = self.loader.seed + 104729 * rollbacks
        self.loader.load_state_dict({**self.loader.state_dict(), "position": 0})
        for opt in self.optimizers.values():
            for g in opt.param_groups:
                g["lr"] *= self.cfg.health.rollback_lr_factor
                g["base_lr"] *= self.cfg.health.rollback_lr_factor
        self.event("rollback", f"{reason}: rolled back to step {self.step} ({path.name}), learning rates "
                               f"x{self.cfg.health.rollback_lr_factor}, rollback {rollbacks}/{hc.max_rollbacks}")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return [_jsonable(o) for o in obj]
    return obj


def _tupled(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_tupled(o) for o in obj)
    return obj



def make_augmenter(tc: Any, family: Family) -> Augmenter | None:
    """train.augment as an Augmenter attached to the family (None for `none`); a clear error where the family
    has no discriminator on images to augment for."""
    if tc.augment == "none":
        return None
    aug = Augmenter(tc.augment, tc.augment_policy, tc.augment_p, tc.ada_target, tc.ada_interval, tc.ada_kimg)
    if family.spec.kind != "image" or family.kind != "latent" or not hasattr(family, "augmented"):
        raise ValueError(f"--augment {tc.augment} augments the images a latent image family's discriminator sees; "
                         f"'{family.name}' on {family.spec.kind} data has none to augment: drop --augment")
    family.augment = aug
    return aug
