"""Distance of predicted properties to a campaign's target windows, hits, and the trial metric.

For each target property ``p`` with window ``[lo, hi]`` (a point ``value +- tolerance`` or a range),
the normalised excess is ``e_p = max(0, |y_p - centre_p| - half_width_p) / half_width_p``: zero inside
the window, one window half-width outside it, and so on. The distance of a candidate is the weighted
root mean square ``d = sqrt(sum w_p e_p^2 / sum w_p)``; a **hit** is a candidate inside every window
(``d == 0``) by its predicted mean.

The trial metric given to Ax is ``score = (hits + SHAPING * sum(closeness(d))) / n_samples`` over
the trial's *new* candidates: the fraction of samples that are new hits, plus a small shaping term
that still points towards the windows while nothing hits them. Re-proposing archived or duplicate
candidates earns nothing, so the optimiser is pushed towards new hits, not the same one again. The
hit term comes first because with the shaping term alone a near miss scores almost as much as a hit
(``d = 0.14``: 0.99 against 1.0), and BO settles on near misses.

The closeness (:class:`ClosenessKernel`) is ``exp(-d^2 / 2)`` by default, which is ~0 a few window
half-widths away. ``bo.closeness_tail`` mixes in a heavy Cauchy tail, ``1 / (1 + (d / width)^2)``
with ``width`` in half-widths (``bo.closeness_width``), which keeps an ordering at any distance
(d = 14, 8, 2, 0.4 -> 0.04, 0.12, 0.69, 0.98 at width 3). It is off by default: it helped the
hardest target but cost the targets whose windows are easy to reach, because Ax then explored more
once it had a setting that hit (BENCHMARKS.md, "Research explorations": hit-first objective,
closeness tail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hts.campaign.config import Target
from hts.errors import ModelError


def target_matrix(targets: Mapping[str, Target]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(names, centres, half widths, weights) of the targets, in a fixed order."""
    names = list(targets)
    centre = np.array([targets[n].centre for n in names])
    half = np.array([targets[n].half_width for n in names])
    weight = np.array([targets[n].weight for n in names])
    return names, centre, half, weight


def distances(
    means: np.ndarray, model_targets: list[str], targets: Mapping[str, Target]
) -> tuple[np.ndarray, np.ndarray]:
    """(N,) distances and (N, P) normalised excesses for predicted ``means`` (N, T model targets)."""
    names, centre, half, weight = target_matrix(targets)
    missing = [n for n in names if n not in model_targets]
    if missing:
        raise ModelError(
            f"the surrogate does not predict {', '.join(missing)}; it predicts {', '.join(model_targets)}. "
            "Train one that does (hts surrogate train --targets ...)."
        )
    cols = [model_targets.index(n) for n in names]
    y = means[:, cols]
    excess = np.maximum(0.0, np.abs(y - centre) - half) / half
    d = np.sqrt((excess**2 * weight).sum(axis=1) / weight.sum())
    return d, excess


SHAPING = 0.1
"""Weight of the closeness term next to the hit count (a hit is worth 10 near misses)."""


@dataclass(frozen=True)
class ClosenessKernel:
    """Closeness of a candidate at distance ``d`` to the targets: 1 inside every window, falling outside
    as ``(1 - tail) exp(-d^2 / 2) + tail / (1 + (d / width)^2)``: a Gaussian core one window
    half-width wide and a heavy Cauchy tail (``bo.closeness_tail``, ``bo.closeness_width``; see the
    module docstring)."""

    width: float = 3.0
    tail: float = 0.0

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ValueError(f"closeness width must be positive, got {self.width}")
        if not 0.0 <= self.tail <= 1.0:
            raise ValueError(f"closeness tail must be within [0, 1], got {self.tail}")

    def __call__(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, dtype=float)
        return (1.0 - self.tail) * np.exp(-0.5 * d**2) + self.tail / (1.0 + (d / self.width) ** 2)


def hit_probability(
    means: np.ndarray, stds: np.ndarray, model_targets: list[str], targets: Mapping[str, Target]
) -> np.ndarray:
    """(N,) probability that a candidate is a true hit: every target property inside its window,
    under independent Gaussians of the surrogate's predicted mean and std (N, T model targets)."""
    from hts.campaign.acquisition import marginal_hit_probability

    cols = [model_targets.index(n) for n in targets]
    return marginal_hit_probability(means[:, cols], stds[:, cols], [t.window for t in targets.values()])


def trial_score(
    new_distances: np.ndarray,
    n_samples: int,
    kernel: ClosenessKernel = ClosenessKernel(),
    p_hit: np.ndarray | None = None,
) -> float:
    """The Ax objective of a trial (see the module docstring). With ``p_hit`` (the new candidates'
    :func:`hit_probability`, ``bo.hit_term: expected``) the hit term is the expected number of true
    hits instead of the count of predicted ones."""
    if n_samples <= 0:
        return 0.0
    return float((hit_term(new_distances, p_hit) + SHAPING * kernel(new_distances).sum()) / n_samples)


def hit_term(new_distances: np.ndarray, p_hit: np.ndarray | None = None) -> float:
    """The hit term of a trial score: the new candidates inside every window by their predicted
    means, or with ``p_hit`` the sum of their hit probabilities (``bo.hit_term: expected``)."""
    return float((new_distances == 0.0).sum()) if p_hit is None else float(np.sum(p_hit))


def score_sem(n_hits: float, n_samples: int) -> float:  # n_hits: a count, or :func:`hit_term`
    """Standard error of a trial score: the binomial error of its hit fraction, with the fraction
    shrunk to ``(hits + 0.5) / (n + 1)`` so that a trial with no hit (or only hits) still has one.

    Ax is given it with every score, so that trials (and the scout's composition groups) weigh by
    how many samples they rest on.
    """
    n = max(1, n_samples)
    p = (n_hits + 0.5) / (n + 1)
    return float(np.sqrt(p * (1.0 - p) / n))
