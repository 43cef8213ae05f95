"""Local trials: ``llm-bo`` searches the defect compositions next to its leading setting.

What: ``bo.local_trials`` of each iteration's trials work around the **leader**, the setting of
highest shrunk mean score (:meth:`hts.campaign.incumbent.Incumbent.leader`; a near miss counts). While
the leader's composition is untried they run it; after that a trial is a **probe**: its samples are
split over :data:`LOCAL_PROBES` untried compositions one move away (a defect added, removed or changed
into another type), with the leader's prompt values and temperature, chosen by Thompson draws from
Ax's predictions, each part an Ax observation with its binomial standard error. An untried near miss
is probed beside its neighbours rather than confirmed on a whole trial. The search is best-first:
once the leader's neighbours are all tried, the runner-up's are next; with none left the slot goes
to Ax. Once a setting is exploited, local trials go on in the exploration slots adaptive exploitation
(:mod:`hts.campaign.allocation`) leaves, centred on the leader.

Why: while nothing hits, the trial scores are ~0 everywhere and BoTorch's acquisition goes to the
corners of the count simplex and of the prompt and temperature ranges, never back to the near misses
the scout found. Neighbouring compositions differ in hit rate by tens of percent, which 16 samples
tell apart, so one probe scans four of them (BENCHMARKS.md, "Research explorations": composition
ceilings, local trials, local probes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hts.campaign.incumbent import Incumbent

LOCAL_PROBES = 4
"""Compositions one probe splits its samples over (64 samples: 16 each)."""

Predict = Callable[[list[dict[str, Any]]], list[tuple[float, float]]]
"""``predict(settings)`` -> ``(mean, sem)`` of the trial score at each setting."""


def composition_counts(params: Mapping[str, Any], count_names: Sequence[str]) -> tuple[int, ...]:
    """The counts of a setting's ``n_*`` knobs, in ``count_names`` order."""
    return tuple(round(float(params[n])) for n in count_names)


def neighbours(counts: Sequence[int], k_min: int, k_max: int, n_max: Sequence[int]) -> list[tuple[int, ...]]:
    """Compositions one move from ``counts``: one defect added or removed, or one changed into another
    type; the total stays within ``[k_min, k_max]`` and each count within ``[0, n_max]``."""
    base = list(counts)
    total = sum(base)
    out: set[tuple[int, ...]] = set()
    for i in range(len(base)):
        for delta in (1, -1):
            c = base.copy()
            c[i] += delta
            if 0 <= c[i] <= n_max[i] and k_min <= total + delta <= k_max:
                out.add(tuple(c))
        for j in range(len(base)):
            if i != j and base[i] > 0 and base[j] < n_max[j]:
                c = base.copy()
                c[i] -= 1
                c[j] += 1
                out.add(tuple(c))
    return sorted(out)


def local_candidates(
    incumbent: Incumbent,
    space: Sequence[Any],
    k_min: int,
    k_max: int,
    tried_at: int,
    around_untried: bool = False,
) -> list[dict[str, Any]]:
    """The settings a local trial may run (see the module docstring); empty without a leader, or when
    the knob space has no composition counts. A composition counts as tried once ``tried_at`` samples
    have been drawn with it (a trial's samples, or a probe's). ``around_untried``: the leader's
    untried neighbours even while its own composition is untried."""
    counts = [k for k in space if k.name.startswith("n_")]
    if not counts:
        return []
    names = [k.name for k in counts]
    sampled = incumbent.samples_by(lambda p: composition_counts(p, names) if all(n in p for n in names) else None)
    n_max = [int(k.high) for k in counts]
    if len(counts) == 1:  # the one count is the budget itself
        k_min, k_max = int(counts[0].low), int(counts[0].high)
    for rank, leader in enumerate(incumbent.ranked()):  # best first: the leader, then the runners-up
        centre = composition_counts(leader, names)
        if rank == 0 and sampled.get(centre, 0) < tried_at and not around_untried:
            return [dict(leader)]
        out = []
        for comp in neighbours(centre, k_min, k_max, n_max):
            if sampled.get(comp, 0) >= tried_at:
                continue
            setting = dict(leader)
            setting.update({n: int(v) for n, v in zip(names, comp, strict=True)})
            out.append(setting)
        if out:
            return out
    return []


def choose_local(candidates: list[dict[str, Any]], predict: Predict | None, rng: np.random.Generator) -> dict[str, Any]:
    """One of ``candidates`` by a Thompson draw from ``predict``'s means and standard errors (uniformly
    at random without a model, or when the model cannot predict yet)."""
    if len(candidates) == 1:
        return candidates[0]
    if predict is not None:
        try:
            pred = predict(candidates)
        except Exception:  # Ax has no fitted model yet (e.g. still in its Sobol start)
            pred = None
        if pred is not None:
            mean = np.array([m for m, _ in pred], dtype=float)
            sem = np.array([s for _, s in pred], dtype=float)
            if np.isfinite(mean).all():
                draw = mean + np.nan_to_num(sem, nan=0.0) * rng.standard_normal(len(candidates))
                return candidates[int(np.argmax(draw))]
    return candidates[int(rng.integers(len(candidates)))]


def plan_local_trials(
    incumbent: Incumbent,
    space: Sequence[Any],
    k_min: int,
    k_max: int,
    tried_at: int,
    per_trial: int,
    n: int,
    predict: Predict | None,
    rng: np.random.Generator,
) -> list[list[dict[str, Any]]]:
    """Up to ``n`` local trials, each a list of settings (more than one: a probe, see the module
    docstring). An untried leader that has hit is confirmed on a whole trial; an untried near miss
    (no hit yet) is probed on a part, beside ``per_trial - 1`` of its neighbours."""
    candidates = local_candidates(incumbent, space, k_min, k_max, tried_at)
    leader = incumbent.leader()
    near_miss = per_trial > 1 and leader is not None and candidates == [leader] and incumbent.hits_of(leader)[0] == 0
    if near_miss:
        candidates += local_candidates(incumbent, space, k_min, k_max, tried_at, around_untried=True)
    out: list[list[dict[str, Any]]] = []
    while candidates and len(out) < n:
        if near_miss and not out:
            picks = [candidates[0], *choose_probes(candidates[1:], per_trial - 1, predict, rng)]
        else:
            picks = choose_probes(candidates, per_trial, predict, rng)
        candidates = [c for c in candidates if all(c is not p for p in picks)]
        out.append(picks)
    return out


def choose_probes(
    candidates: list[dict[str, Any]], k: int, predict: Predict | None, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Up to ``k`` of ``candidates``, one :func:`choose_local` draw after another (without repeats)."""
    left = list(candidates)
    out: list[dict[str, Any]] = []
    while left and len(out) < k:
        pick = choose_local(left, predict, rng)
        left = [c for c in left if c is not pick]
        out.append(pick)
    return out
