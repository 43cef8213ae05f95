"""Exploitation trials: ``llm-bo`` re-runs its best knob setting so far in part of each iteration.

A campaign wants many hits over the night (cumulative reward), while Ax's acquisition (noisy expected
improvement) seeks the best setting and gains nothing from re-running a setting it already knows:
on the formation-energy benchmark a session-6 run alternated trials with 64 of 64 hits and trials
with none, and spent its last 8 trials exploring without a hit. So ``bo.exploit_trials`` of the
``trials_per_iteration`` re-run the **incumbent**, the setting with the highest shrunk mean score,
``sum(score x samples) / (samples + 1)`` over every observation of it (a scout group of one sample
with a hit does not outrank a trial of 64 with 60), and the others come from Ax. Only a setting
that has produced hits is re-run (its shrunk mean above the closeness weight, which closeness alone
never reaches). Each re-run is attached to Ax as a trial of its own, so the model sees it too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def setting_key(params: Mapping[str, Any]) -> str:
    """A hashable identity of a knob setting (floats rounded to 1e-9)."""
    return json.dumps(
        {k: round(float(v), 9) if isinstance(v, float) else v for k, v in sorted(params.items())}, sort_keys=True
    )


class Incumbent:
    """Running per-setting score totals; :meth:`best` is the setting to exploit."""

    def __init__(self) -> None:
        self._total: dict[str, float] = {}
        self._n: dict[str, int] = {}
        self._params: dict[str, dict[str, Any]] = {}

    def add(self, params: Mapping[str, Any], score: float, n_samples: int) -> None:
        if n_samples <= 0:
            return
        k = setting_key(params)
        self._total[k] = self._total.get(k, 0.0) + score * n_samples
        self._n[k] = self._n.get(k, 0) + n_samples
        self._params[k] = dict(params)

    def best(self, min_score: float = 0.0) -> dict[str, Any] | None:
        """The setting of highest shrunk mean score, if that is above ``min_score`` (else ``None``).

        The loop passes the closeness weight (:data:`hts.campaign.objective.SHAPING`): closeness
        alone never scores above it, so only a setting that has produced hits is re-run, and a near
        miss is never exploited in place of exploring.
        """
        if not self._total:
            return None
        k = max(self._total, key=lambda key: self._total[key] / (self._n[key] + 1))
        return dict(self._params[k]) if self._total[k] / (self._n[k] + 1) > min_score else None

    @classmethod
    def from_trials(cls, rows: Iterable[Mapping[Any, Any]]) -> Incumbent:
        """Rebuilt from stored trial rows (``knobs``, ``metrics``, ``n_generated``, ``extra``): the
        Ax-run trials and the scout's composition groups (``extra.scout_obs``)."""
        inc = cls()
        for r in rows:
            extra = r.get("extra") or {}
            if extra.get("scout"):
                for params, score, n in extra.get("scout_obs", []):
                    inc.add(params, score, n)
            elif "ax_trial" in extra:
                inc.add(r["knobs"], float(r["metrics"]["score"]), int(r["n_generated"]))
        return inc
