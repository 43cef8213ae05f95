"""Local trials: ``llm-bo`` searches the defect compositions next to its leading setting.

With ``bo.defect_knobs: composition`` every trial fixes a count per defect type. While no setting
hits, Ax's Gaussian process sees trial scores of ~0 everywhere, and its acquisition then goes to the
corners of the count simplex (six defects of one type) and of the prompt and temperature ranges,
trial after trial: on the mid-gap benchmark (session 7, seed 3) 28 of the 31 trials after the scout
were such corners, and none hit, although the scout had found near misses (one S vacancy and five W
substitutions, a predicted gap 0.005 eV outside the window), whose composition is one of the 21
that hit.

So ``bo.local_trials`` of each iteration's trials search a trust region around the **leader**, the
setting of highest shrunk mean score so far (:meth:`hts.campaign.incumbent.Incumbent.leader`; a near
miss counts, through the closeness term of the score): the leader itself while its composition is
untried (a scout group rests on one or two samples), else the compositions one move away (one
defect added, removed, or changed into another type), with the leader's prompt values and
temperature, leaving out compositions already tried (below). Ax's model
chooses among them: a Thompson draw from its predictive mean and standard error at each
(:meth:`ax.Client.predict`), so that the Gaussian process still decides, within the region where the
evidence is. The trial is attached to Ax like any other. Without a leader (no score above zero yet)
the slot goes to Ax.

Once the leader's own composition has been tried, a local trial is a **probe**: its samples are split
over ``bo.local_probes`` of those compositions (64 over 4: 16 each), chosen one Thompson draw after
another, and each part, grouped by the composition drawn, becomes an Ax observation of its own with
its binomial standard error, as the scout's groups do (:mod:`hts.campaign.scout`). A composition then
counts as tried once a part's samples have been drawn with it. Why: a composition's hit rate
differs from its neighbours' by tens of percent (mid-gap, random placements scored by the surrogate:
one S vacancy, one Se and one W hit in 49 % of them, with a second Se in 94 %;
``benchmarks/bench_knob_ceiling.py --by composition``), which 16 samples
tell apart, so a probe scans four neighbours for the samples of one trial. An untried leader is
confirmed on a whole trial when it has hit (it may be the setting to exploit), and probed on a part
beside three of its neighbours when it is only a near miss.

With ``bo.local_after_exploit`` (the default) local trials go on once a setting is exploited, centred
on the leader (usually the exploited setting), in the exploration slots that adaptive exploitation
(:mod:`hts.campaign.allocation`) leaves: where the exploited setting leaves headroom, its neighbours
are where a better one most likely is. With one composition per trial (session 10, ``local_probes:
1``) running on after exploitation was no better (mid-gap 465 against 499 hits per 1,000): a scan of
the ~16 neighbours took a quarter of the campaign.

The search is best-first: once every composition next to the leader has been tried, local trials
search next to the runner-up, and so on down the settings ranked by shrunk mean score
(:meth:`hts.campaign.incumbent.Incumbent.ranked`); only when none has an untried neighbour does the
slot go to Ax. Why: a part of 16 samples can miss a composition that hits in a fifth of its samples
(a 3 % chance each), and on the mid-gap benchmark (seed 4) an unlucky scan left the leader, a near
miss, with no untried neighbour; Ax then spent every later trial on that near miss's composition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hts.campaign.incumbent import Incumbent

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
