"""Phases as data: what a family declares about each of its optimisation phases, and what the phases of
one training step hand to each other.

The trainer builds its optimizers, learning rates, schedules, the EMA trigger and the torch.compile
exclusions from a family's `phase_specs()` alone; it knows no phase by name (docs/architecture.md,
"Phases").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Phase:
    """One optimisation phase: which networks it trains, with which optimizer settings, and when it runs.

    A phase runs at step s when s >= start and (s - offset) % every == 0: D every step and G every
    `n_critic`-th step, or a regulariser every k steps. A *lazy* regulariser (Karras et al. 2020, "Lazy
    regularization") scales its penalty by `every` itself and steps the optimizer of the phase it
    regularises (`optimizer`); that optimizer then runs at lr * c and betas ** c with c = k / (k + 1), so k
    main steps plus one regularisation step move the weights as k plain steps would (their Appendix B).
    """

    name: str                                   # the phase in logs ("d/grad_norm") and in loss(name, batch, ctx)
    networks: tuple[str, ...]                   # the family's attributes whose parameters this phase trains
    lr: str = "lr_d"                            # train.<lr> is its learning rate
    betas: tuple[str, str] = ("beta1", "beta2")  # train.<betas[i]> are its Adam betas
    every: int = 1                              # runs every `every` steps ...
    offset: int = 0                             # ... on the steps s with (s - offset) % every == 0 ...
    start: int = 0                              # ... from step `start` on (e.g. after a warm-up)
    optimizer: str = ""                         # the phase whose optimizer it steps; "": its own
    lazy: bool = False                          # a lazy regulariser (see above); needs `optimizer`
    updates_ema: bool = False                   # the EMA of G follows once this phase has stepped
    double_backward: bool = False               # its loss differentiates a gradient (R1, WGAN-GP)

    def __post_init__(self) -> None:
        if self.every < 1 or self.start < 0:
            raise ValueError(f"phase '{self.name}': every must be >= 1 and start >= 0, got {self.every}, {self.start}")
        if self.lazy and not self.optimizer:
            raise ValueError(f"phase '{self.name}' is a lazy regulariser: name the phase whose optimizer it steps")

    def runs_at(self, step: int) -> bool:
        return step >= self.start and (step - self.offset) % self.every == 0

    @property
    def optimizer_key(self) -> str:
        """The name of the optimizer this phase steps (its own name unless it shares one)."""
        return self.optimizer or self.name


def check_phases(phases: tuple[Phase, ...], owner: str) -> None:
    """A clear error for a phase list the trainer cannot run: duplicate names, unknown shared optimizers."""
    names = [p.name for p in phases]
    if not names:
        raise ValueError(f"{owner} declares no phases")
    if len(set(names)) != len(names):
        raise ValueError(f"{owner} declares a phase twice: {', '.join(names)}")
    for p in phases:
        if p.optimizer and p.optimizer not in names:
            raise ValueError(f"{owner}'s phase '{p.name}' steps the optimizer of '{p.optimizer}', which is not one "
                             f"of its phases ({', '.join(names)})")
        if p.optimizer:
            owner_phase = phases[names.index(p.optimizer)]
            if owner_phase.optimizer:
                raise ValueError(f"{owner}'s phase '{p.name}' shares '{p.optimizer}''s optimizer, which is itself shared")
            if set(p.networks) != set(owner_phase.networks):
                raise ValueError(f"{owner}'s phase '{p.name}' trains {p.networks} but shares the optimizer of "
                                 f"'{p.optimizer}', which trains {owner_phase.networks}")


def lazy_ratio(phases: tuple[Phase, ...], optimizer: str) -> float:
    """c = prod k / (k + 1) over the lazy regularisers that step `optimizer` (1 when there are none)."""
    c = 1.0
    for p in phases:
        if p.lazy and p.optimizer_key == optimizer:
            c *= p.every / (p.every + 1)
    return c


@dataclass
class StepContext:
    """What the phases of one training step share: the step, the phases that run in it (in order), and
    what an earlier phase hands to a later one (`handoff`, e.g. D's fakes with their graph for G's phase).

    A family called without a context (loss(phase, batch)) shares nothing: each phase draws its own."""

    step: int
    phases: tuple[str, ...]
    handoff: dict[str, Any] = field(default_factory=dict)

    def will_run(self, phase: str) -> bool:
        return phase in self.phases


def runs_later(ctx: StepContext | None, phase: str) -> bool:
    """Whether `phase` runs later in this step (so an earlier phase may hand it something); False without a
    context or outside autograd (nothing to hand over)."""
    return ctx is not None and ctx.will_run(phase) and torch.is_grad_enabled()


def take(ctx: StepContext | None, key: str) -> Any:
    """What an earlier phase of this step handed over under `key` (removed from the context), or None."""
    return None if ctx is None else ctx.handoff.pop(key, None)
