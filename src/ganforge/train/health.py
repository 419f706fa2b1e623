"""Training-health monitor, first version: the classic GAN failure modes, detected while training.

- discriminator overpowering with vanishing G gradients: D's accuracy on real and fake stays above
  `d_acc_high` while G's gradient norm falls below `g_grad_collapse` x its early median (Arjovsky &
  Bottou 2017 explain why a near-perfect D starves the minimax G of gradient);
- mode collapse suspected: the per-dimension spread of a fake batch sits far below a real batch's (the median
  ratio over the last `window` steps, so a ratio that hovers around the threshold, dipping below it more often
  than not, still warns: counting steps in a row missed a StyleGAN2 run that collapsed onto one shape while its
  ratio wandered across 0.2);
- D memorising a small training set: r_t = E[sign(D(real))] (Karras et al. 2020) stays above `rt_high`, and
  the advice names --augment ada;
- non-convergence: the D loss oscillates with an amplitude that keeps growing, window after window;
- non-finite loss: roll back to the last checkpoint (the trainer reseeds and lowers the learning rates),
  and stop after `max_rollbacks`, saying why.
Each warning is given once per run, in the progress output and in the JSONL log. At the end of training
a summary says where D's loss and accuracy sit against the band healthy runs usually show.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

from ..config import HealthConfig
from .callbacks import Callback

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

ADVICE = {
    "d_overpowering": (
        "the discriminator is overpowering the generator: D accuracy {acc:.0%} for {n} steps while G's "
        "gradient norm fell to {ratio:.1%} of its early level (vanishing gradient). Try the non-saturating "
        "loss (model.loss=ns), a lower D learning rate (train.lr_d), label smoothing (model.label_smoothing=0.1), "
        "an R1 penalty (model.r1_weight=10) or a Wasserstein loss (model.loss=wgan-gp)"
    ),
    "non_convergence": (
        "training is not converging: the D loss oscillates with growing amplitude (std per {w} steps: "
        "{amps}). Try lower learning rates (train.lr_d, train.lr_g), more D steps (model.n_critic=2..5), "
        "an R1 penalty (model.r1_weight=10), or the wgan-gp / hinge loss"
    ),
    "mode_collapse": (
        "mode collapse suspected: a fake batch's spread has been {ratio:.1%} of a real batch's (median of the "
        "last {n} logged batches), so G produces near-identical samples. Try a lower learning rate, the wgan-gp "
        "or hinge loss, or a larger batch; check the sample grids"
    ),
    "memorising": (
        "the discriminator is memorising the {n_images:,} training images: r_t = E[sign(D(real))] has stayed at "
        "{rt:.2f} for {n} steps (1 = D is sure of every real image; {target} is the healthy level ADA steers to), so "
        "its gradients stop teaching G the data. Train with discriminator augmentation: --augment ada (or "
        "--augment diffaugment){extra}"
    ),
    "class_collapse": (
        "mode collapse within classes suspected: fakes of one class spread {ratio:.1%} as much as real images "
        "of that class (median of the last {n} logged batches), so G ignores z and draws one image per class "
        "(the batch as a whole still varies across classes). Try the concatenating discriminator "
        "(model.projection=false), a lower learning rate, or an R1 penalty (model.r1_weight=10); check "
        "`ganforge sample --class all`"
    ),
}


class HealthMonitor(Callback):
    every_rank = True  # step logs are averaged over the ranks, so every rank rolls back or stops together

    def __init__(self, cfg: HealthConfig) -> None:
        self.cfg = cfg
        self.warned: set[str] = set()
        self.early_g_grad: list[float] = []
        self.run_overpower = 0
        self.collapse_ratios: list[float] = []  # fake / real spread of the last `window` steps
        self.class_collapse_ratios: list[float] = []  # the same within classes (conditional families)
        self.run_memorising = 0
        self._window_losses: list[float] = []
        self.amplitudes: list[float] = []  # std of the D loss in each completed window
        self.band: list[tuple[float, float]] = []  # (D loss, D accuracy) of recent steps, for the summary

    def state_dict(self) -> dict[str, Any]:
        return {"warned": sorted(self.warned), "early_g_grad": self.early_g_grad,
                "run_overpower": self.run_overpower, "collapse_ratios": self.collapse_ratios,
                "class_collapse_ratios": self.class_collapse_ratios, "run_memorising": self.run_memorising,
                "window_losses": self._window_losses, "amplitudes": self.amplitudes,
                "band": [list(b) for b in self.band]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warned = set(state.get("warned", []))
        self.early_g_grad = list(state.get("early_g_grad", []))
        self.run_overpower = int(state.get("run_overpower", 0))
        # checkpoints from before the rolling median (run_collapse counters) start the window afresh
        self.collapse_ratios = [float(v) for v in state.get("collapse_ratios", [])]
        self.class_collapse_ratios = [float(v) for v in state.get("class_collapse_ratios", [])]
        self.run_memorising = int(state.get("run_memorising", 0))
        self._window_losses = list(state.get("window_losses", []))
        self.amplitudes = list(state.get("amplitudes", []))
        self.band = [tuple(b) for b in state.get("band", [])]

    def _warn(self, trainer: "Trainer", key: str, **values: Any) -> None:
        if key in self.warned:
            return
        self.warned.add(key)
        trainer.event("health", ADVICE[key].format(**values))

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        bad = sorted(k for k, v in logs.items() if not math.isfinite(v))
        if bad:
            trainer.rollback(reason=f"non-finite {', '.join(bad)} at step {step}")
            return
        if not self.cfg.enabled:
            return
        w = self.cfg.window
        g_grad = logs.get("g/grad_norm")
        if g_grad is not None and len(self.early_g_grad) < w:
            self.early_g_grad.append(g_grad)
        if "d/acc_real" in logs and "d/acc_fake" in logs:
            acc = 0.5 * (logs["d/acc_real"] + logs["d/acc_fake"])
            ratio = math.inf
            if g_grad is not None and len(self.early_g_grad) >= w:
                ratio = g_grad / max(statistics.median(self.early_g_grad), 1e-12)
            if acc > self.cfg.d_acc_high and ratio < self.cfg.g_grad_collapse:
                self.run_overpower += 1
            elif g_grad is not None:
                self.run_overpower = 0
            if self.run_overpower >= w:
                self._warn(trainer, "d_overpowering", acc=acc, n=self.run_overpower, ratio=ratio)
        if "stats/fake_spread" in logs and "stats/real_spread" in logs and step > self.cfg.warmup:
            self._track_spread(trainer, "mode_collapse", self.collapse_ratios,
                               logs["stats/fake_spread"] / max(logs["stats/real_spread"], 1e-12))
        if "stats/fake_class_spread" in logs and "stats/real_class_spread" in logs and step > self.cfg.warmup:
            self._track_spread(trainer, "class_collapse", self.class_collapse_ratios,
                               logs["stats/fake_class_spread"] / max(logs["stats/real_class_spread"], 1e-12))
        if "d/rt" in logs and step > self.cfg.warmup and trainer.family.spec.kind == "image":
            self._track_memorising(trainer, logs["d/rt"])
        if "d/adv" in logs:
            self._track_oscillation(trainer, logs["d/adv"])
            if "d/acc_real" in logs:
                acc = 0.5 * (logs["d/acc_real"] + logs["d/acc_fake"])
                self.band = (self.band + [(logs["d/adv"], acc)])[-w:]

    def _track_spread(self, trainer: "Trainer", key: str, ratios: list[float], ratio: float) -> None:
        """Collapse: the median fake / real spread ratio of the last `window` steps below `spread_ratio`."""
        ratios.append(ratio)
        del ratios[: -self.cfg.window]
        if len(ratios) == self.cfg.window:
            median = statistics.median(ratios)
            if median < self.cfg.spread_ratio:
                self._warn(trainer, key, ratio=median, n=len(ratios))

    def _track_memorising(self, trainer: "Trainer", rt: float) -> None:
        """D overfitting (Karras et al. 2020): r_t above `rt_high` for a window of steps. An ADA run steers
        r_t itself and is told only when p has reached 1 and r_t still stays high."""
        aug = getattr(trainer, "augment", None)
        saturated = aug is None or not aug.adaptive or aug.p >= 1.0
        self.run_memorising = self.run_memorising + 1 if rt > self.cfg.rt_high and saturated else 0
        if self.run_memorising >= self.cfg.window:
            extra = ""
            if aug is not None and aug.adaptive:
                extra = "; ADA's p is already 1: add DiffAugment's cutout, or use more images"
            elif aug is not None:
                extra = f"; --augment {aug.kind} is on already: try ada, or more images"
            data = trainer.loader.data
            n_images = data.stream.index.total if getattr(data, "stream", None) is not None else len(data)
            self._warn(trainer, "memorising", n_images=n_images, rt=rt, n=self.run_memorising,
                       target=aug.target if aug is not None and aug.adaptive else 0.6, extra=extra)

    def _track_oscillation(self, trainer: "Trainer", d_loss: float) -> None:
        """Non-convergence: the D loss's per-window std grows by >= 1.5x over 4 windows in a row (>= 4x overall)."""
        self._window_losses.append(d_loss)
        if len(self._window_losses) < self.cfg.window:
            return
        self.amplitudes = (self.amplitudes + [statistics.pstdev(self._window_losses)])[-5:]
        self._window_losses = []
        a = self.amplitudes
        if len(a) == 5 and all(y >= 1.5 * x for x, y in zip(a, a[1:])) and a[-1] >= 4 * a[0] > 0:
            self._warn(trainer, "non_convergence", w=self.cfg.window, amps=", ".join(f"{v:.3g}" for v in a))

    def summary(self, loss_name: str) -> str | None:
        """Where the run sits against common practice: D loss ~0.5-0.8 (cross-entropy), D accuracy ~70-80%."""
        if not self.band:
            return None
        d_loss = statistics.fmean(b[0] for b in self.band)
        acc = statistics.fmean(b[1] for b in self.band)
        parts = [f"D accuracy {acc:.0%} over the last {len(self.band)} steps (healthy runs typically sit near 70-80%)"]
        if loss_name in ("ns", "minimax"):
            parts.append(f"D loss {d_loss:.2f} (typically 0.5-0.8 with this loss)")
        verdict = "within" if 0.6 <= acc <= 0.9 else ("above: D is winning" if acc > 0.9 else "below: D is losing")
        return "; ".join(parts) + f" -> {verdict} the usual band"

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        text = self.summary(trainer.family.loss_name)
        if text:
            trainer.event("summary", text)
