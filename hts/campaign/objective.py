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

The closeness is ``exp(-d^2 / 2)``, ~0 a few window half-widths away. A heavy-tailed closeness that
keeps an ordering at any distance helped the hardest target but cost the targets whose windows are easy
to reach, and scoring trials by the expected number of true hits (the surrogate's uncertainty) instead
of the predicted ones was no better either; both were removed (BENCHMARKS.md, "Research explorations").
"""

from __future__ import annotations

from collections.abc import Mapping

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


def closeness(d: np.ndarray) -> np.ndarray:
    """Closeness of candidates at distances ``d`` to the targets: 1 inside every window, ``exp(-d^2 / 2)``
    outside (one window half-width: 0.61, three: 0.01)."""
    return np.exp(-0.5 * np.asarray(d, dtype=float) ** 2)


def trial_score(new_distances: np.ndarray, n_samples: int) -> float:
    """The Ax objective of a trial (see the module docstring): new hits plus :data:`SHAPING` x the new
    candidates' closeness, per sample drawn."""
    if n_samples <= 0:
        return 0.0
    return float(((new_distances == 0.0).sum() + SHAPING * closeness(new_distances).sum()) / n_samples)


def score_sem(n_hits: int, n_samples: int) -> float:
    """Standard error of a trial score: the binomial error of its hit fraction, with the fraction
    shrunk to ``(hits + 0.5) / (n + 1)`` so that a trial with no hit (or only hits) still has one.

    Ax is given it with every score, so that trials (and the scout's composition groups) weigh by
    how many samples they rest on.
    """
    n = max(1, n_samples)
    p = (n_hits + 0.5) / (n + 1)
    return float(np.sqrt(p * (1.0 - p) / n))
