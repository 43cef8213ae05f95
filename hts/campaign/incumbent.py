"""Exploitation trials: ``llm-bo`` re-runs its best knob setting so far in part of each iteration.

A campaign wants many hits over the night (cumulative reward), while Ax's acquisition (noisy expected
improvement) seeks the best setting and gains nothing from re-running a setting it already knows. So
``bo.exploit_trials`` of the ``trials_per_iteration`` re-run the **incumbent**, the setting with the
highest shrunk mean score, ``sum(score x samples) / (samples + 1)`` over every observation of it (a
scout group of one sample with a hit does not outrank a trial of 64 with 60), and the others come
from Ax. Only a setting that has produced a hit is re-run, so a near miss never takes the place of
exploring; and only one whose hits came in at least :data:`EXPLOIT_MIN_HIT_RATE` of its samples,
so that a setting that hit by luck is not re-run trial after trial without another
hit. Each re-run is attached to Ax as a trial of its own, so the model sees it too
(BENCHMARKS.md, "Research explorations": exploitation trials).

:meth:`Incumbent.leader` is the same ranking without the hit requirement: the centre of the local
trials' search (:mod:`hts.campaign.local`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from hts.campaign.plan import Observation, TrialKind

EXPLOIT_MIN_HIT_RATE = 0.1
"""Only a setting whose hits came in at least this fraction of its samples is exploited."""


def setting_key(params: Mapping[str, Any]) -> str:
    """A hashable identity of a knob setting (floats rounded to 1e-9)."""
    return json.dumps(
        {k: round(float(v), 9) if isinstance(v, float) else v for k, v in sorted(params.items())}, sort_keys=True
    )


class Incumbent:
    """Running per-setting score totals and hits; :meth:`best` is the setting to exploit."""

    def __init__(self) -> None:
        self._total: dict[str, float] = {}
        self._n: dict[str, int] = {}
        self._hits: dict[str, int] = {}
        self._params: dict[str, dict[str, Any]] = {}
        self._runs: dict[str, list[tuple[int, int]]] = {}  # (hits, samples) of each run, in order
        self._first: dict[str, int] = {}  # the position in the run log of each setting's first run
        self._explored: list[tuple[int, int, int]] = []  # (position, hits, samples) of exploration runs
        self._clock = 0  # samples recorded so far: the position of the next run

    def add(self, params: Mapping[str, Any], score: float, n_samples: int, n_hits: int, explored: bool = False) -> None:
        """Record one run of a setting; ``explored``: an exploration trial (Ax's or a local one)."""
        if n_samples <= 0:
            return
        k = setting_key(params)
        position = self._clock  # samples recorded before this run: a clock that only moves forward
        self._clock += n_samples
        self._first.setdefault(k, position)
        if explored:
            self._explored.append((position, n_hits, n_samples))
        self._total[k] = self._total.get(k, 0.0) + score * n_samples
        self._n[k] = self._n.get(k, 0) + n_samples
        self._hits[k] = self._hits.get(k, 0) + n_hits
        self._params[k] = dict(params)
        self._runs.setdefault(k, []).append((n_hits, n_samples))

    def add_group(self, runs: Iterable[tuple[Mapping[str, Any], float, int, int]], explored: bool = False) -> None:
        """Record the parts of one trial drawn in parts, ``(setting, score, samples, hits)`` each (the
        scout's composition groups, a local probe's compositions): each setting as a run of its own,
        and, when ``explored``, the trial as *one* exploration run with the parts' hits and samples
        (one try for :func:`hts.campaign.allocation.extra_exploit_slots`, however many parts)."""
        position = self._clock
        hits = samples = 0
        for params, score, n, h in runs:
            self.add(params, score, n, h)
            hits, samples = hits + h, samples + max(0, n)
        if explored and samples > 0:
            self._explored.append((position, hits, samples))

    def hits_of(self, params: Mapping[str, Any], last: int | None = None) -> tuple[int, int]:
        """``(hits, samples)`` of one setting over its runs so far, or over its ``last`` runs only
        (``(0, 0)`` if never run). Hits are *new* unique candidates, so a setting's recent runs show
        how much it has left: re-running a narrow composition uses up its distinct hits."""
        runs = self._runs.get(setting_key(params), [])
        runs = runs[-last:] if last else runs
        return sum(h for h, _ in runs), sum(n for _, n in runs)

    def explored(self) -> list[tuple[int, int]]:
        """``(hits, samples)`` of the exploration runs so far, in order."""
        return [(h, n) for _, h, n in self._explored]

    def explored_since(self, params: Mapping[str, Any]) -> int:
        """Exploration runs recorded after the setting's first run (all of them if it never ran):
        the tries that have not found a better setting since this one was found."""
        first = self._first.get(setting_key(params), -1)
        return sum(1 for position, _, _ in self._explored if position > first)

    def best(self, min_hit_rate: float = 0.0) -> dict[str, Any] | None:
        """Of the settings that have produced a hit, in at least ``min_hit_rate`` of their samples
        over all their runs, the one of highest shrunk mean score (``None`` while none has): a near
        miss is never exploited in place of exploring, nor is a setting whose hits were rare."""
        return self._top([k for k, h in self._hits.items() if h > 0 and h >= min_hit_rate * self._n[k]])

    def leader(self) -> dict[str, Any] | None:
        """The setting of highest shrunk mean score among those that scored above zero, hit or not
        (the centre of :mod:`hts.campaign.local`'s trust region); ``None`` while none has."""
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def ranked(self) -> list[dict[str, Any]]:
        """The settings that scored above zero, by shrunk mean score, best first (the leader first)."""
        keys = sorted((k for k, t in self._total.items() if t > 0), key=lambda k: -self._total[k] / (self._n[k] + 1))
        return [dict(self._params[k]) for k in keys]

    def _top(self, keys: list[str]) -> dict[str, Any] | None:
        """Of ``keys``, the setting of highest shrunk mean score ``total / (samples + 1)``."""
        if not keys:
            return None
        return dict(self._params[max(keys, key=lambda k: self._total[k] / (self._n[k] + 1))])

    def samples_by(self, key: Callable[[dict[str, Any]], Hashable | None]) -> dict[Hashable, int]:
        """Samples drawn so far, summed over the settings that share ``key(setting)`` (``None``: left out)."""
        out: dict[Hashable, int] = {}
        for k, params in self._params.items():
            group = key(params)
            if group is not None:
                out[group] = out.get(group, 0) + self._n[k]
        return out

    @classmethod
    def replay(cls, trials: Iterable[tuple[str, Sequence[Observation]]]) -> Incumbent:
        """Rebuilt from stored trials, ``(kind, observations)`` each in trial order
        (:meth:`hts.campaign.store.CampaignStore.observations_by_trial`): a trial drawn in parts as one
        group, any other as one run; exploration as :attr:`TrialKind.explores` says."""
        inc = cls()
        for kind_name, observations in trials:
            kind = TrialKind(kind_name)
            runs = [(o.parameters, o.score, o.n_samples, o.n_hits) for o in observations]
            if kind.in_parts:
                inc.add_group(runs, explored=kind.explores)
            else:
                for params, score, n, hits in runs:
                    inc.add(params, score, n, hits, explored=kind.explores)
        return inc
