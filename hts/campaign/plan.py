"""What a trial will run: its kind and the knob settings its samples are drawn with.

A :class:`TrialPlan` comes from a planner (:mod:`hts.campaign.planners`) and is carried out by
:func:`hts.campaign.trial.run_trial`. Its kind is stored with the trial (the store's ``kind`` column),
so reports and ``--resume`` read it back instead of decoding it from other fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np


class TrialKind(StrEnum):
    """Why a trial runs. ``llm-bo`` plans scout, exploit, local, probe and ax trials; ``llm-fixed`` fixed
    trials, ``random`` random ones; ``screen`` records its chunks as screen trials."""

    SCOUT = "scout"  # the model chooses compositions itself; its groups become Ax observations
    EXPLOIT = "exploit"  # re-runs the best setting so far
    LOCAL = "local"  # one composition next to the leading setting
    PROBE = "probe"  # several compositions next to the leading setting, a part of the samples each
    AX = "ax"  # Ax's suggestion
    FIXED = "fixed"  # llm-fixed's one setting
    RANDOM = "random"  # uniform random configurations through the loop (the random strategy)
    SCREEN = "screen"  # a chunk of uniform random configurations (hts.campaign.screen)

    @property
    def in_parts(self) -> bool:
        """Whether the trial's samples are drawn in parts, each part observed on its own (per
        composition for the scout)."""
        return self in (TrialKind.SCOUT, TrialKind.PROBE)

    @property
    def explores(self) -> bool:
        """Whether the trial counts as exploration for adaptive exploitation
        (:mod:`hts.campaign.allocation`)."""
        return self in (TrialKind.AX, TrialKind.LOCAL, TrialKind.PROBE)


@dataclass
class TrialPlan:
    """One trial to run: its kind and the settings of its parts (one setting unless ``kind.in_parts``).

    ``ax_index``: the Ax trial the result completes (a single-setting trial of ``llm-bo``); parts are
    attached to Ax when they have been observed. ``rng``: the trial's random stream when the planner
    has drawn from it already (the scout's prompt spread); otherwise the loop makes it from the seed
    and the trial id.
    """

    kind: TrialKind
    settings: list[dict[str, Any]]
    ax_index: int | None = None
    rng: np.random.Generator | None = field(default=None, repr=False)

    @property
    def knobs(self) -> dict[str, Any]:
        """The setting stored in the trial's row: its first part's."""
        return dict(self.settings[0])

    def parts(self, n: int) -> list[tuple[dict[str, Any], int]]:
        """``(setting, samples)`` of each part for a trial of ``n`` samples, split evenly, the larger
        parts first; parts that would get no sample are dropped."""
        settings = self.settings[: max(1, n)]
        return list(zip(settings, split_samples(n, len(settings)), strict=True))


@dataclass(frozen=True)
class Observation:
    """What Ax and the incumbent learn from a trial or from one of its parts: a knob setting, its trial
    score (:func:`hts.campaign.objective.trial_score`), the score's standard error, the samples drawn
    and the hits among them; ``ax_index``: the Ax trial it completed."""

    parameters: dict[str, Any]
    score: float
    sem: float
    n_samples: int
    n_hits: int
    ax_index: int | None = None


def split_samples(n: int, k: int) -> list[int]:
    """``n`` samples split over ``k`` parts as evenly as possible, the larger parts first."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]
