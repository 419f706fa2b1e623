"""Inception Score (Salimans et al., 2016): exp(E_x KL(p(y|x) || p(y))).

p(y) is the mean prediction over a split; the score is computed per split and reported as the mean
and population std over splits (as in the paper's reference code). All in float64; logits go through
log_softmax, so confident predictions neither overflow nor take log(0).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .base import Metric, as_float64


def _log_probs(x: Tensor, from_logits: bool | None) -> Tensor:
    rows_sum_to_one = bool(((x.sum(1) - 1).abs() <= 1e-6).all()) and bool(((x >= 0) & (x <= 1)).all())
    if from_logits is None:
        from_logits = not rows_sum_to_one
    if from_logits:
        return torch.log_softmax(x, dim=1)
    if not rows_sum_to_one:
        raise ValueError("from_logits=False but the rows are not probabilities (each in [0, 1], summing "
                         "to 1); pass logits with from_logits=True")
    return x.log()                                      # log(0) = -inf, handled where it is used


def inception_score(logits_or_probs: Any, splits: int = 10,
                    from_logits: bool | None = None) -> dict[str, float]:
    """IS of (N, K) class logits or probabilities; from_logits=None guesses (rows summing to 1 = probs).

    The N rows are cut into `splits` contiguous parts of near-equal size (none dropped).
    Returns {"mean", "std"}; K classes predicted confidently and uniformly give exactly K.
    """
    x = as_float64(logits_or_probs, "logits_or_probs")
    if not 1 <= splits <= x.shape[0]:
        raise ValueError(f"splits must be between 1 and the number of samples ({x.shape[0]}), got {splits}")
    log_p = _log_probs(x, from_logits)
    scores = []
    for part in torch.tensor_split(log_p, splits):
        log_marginal = torch.logsumexp(part, dim=0) - math.log(part.shape[0])        # log p(y), (K,)
        p = part.exp()
        terms = torch.where(p > 0, p * (part - log_marginal), torch.zeros_like(p))   # 0 log 0 = 0
        scores.append(torch.exp(terms.sum(1).mean()))
    values = torch.stack(scores)
    return {"mean": float(values.mean()), "std": float(values.std(unbiased=False))}


class InceptionScore(Metric):
    """IS over all logits fed with update(fake=logits); options as in `inception_score`. Higher is better."""

    name = "inception_score"
    higher_is_better = True

    def __init__(self, splits: int = 10, from_logits: bool | None = None) -> None:
        self.splits, self.from_logits = splits, from_logits
        self.reset()

    def reset(self) -> None:
        self._batches: list[Tensor] = []

    def update(self, real: Any = None, fake: Any = None) -> None:
        if real is not None:
            raise ValueError("the Inception Score uses generated samples only; pass update(fake=logits)")
        if fake is None:
            raise ValueError("InceptionScore.update needs fake=... class logits or probabilities (B, K)")
        self._batches.append(as_float64(fake, "fake"))

    def counts(self) -> tuple[int, int]:
        return 0, sum(len(b) for b in self._batches)

    def compute(self) -> dict[str, float]:
        if not self._batches:
            raise RuntimeError("InceptionScore: call update(fake=logits) before compute()")
        return inception_score(torch.cat(self._batches), self.splits, self.from_logits)
