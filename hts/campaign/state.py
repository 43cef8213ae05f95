"""A running campaign in memory: its counters, archive and optimiser, and the rules that stop it.

The loop (:mod:`hts.campaign.loop`) and the planners (:mod:`hts.campaign.planners`) read and advance a
:class:`CampaignState`; the store is only written to. On ``--resume`` the state is rebuilt from the
store (:meth:`CampaignState.resume`): the trials and evaluations so far, every stored hash, and the
incumbent replayed from the stored observations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hts.campaign.config import Campaign
from hts.campaign.incumbent import Incumbent
from hts.campaign.knobs import Knob
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord
from hts.hosts import Host


@dataclass
class RunSummary:
    """What one run of a campaign did (a resumed run counts everything stored)."""

    trials: int
    evaluations: int
    candidates: int
    hits: int
    stopped: str
    wall_time_s: float


def stop_reason(deadline: float | None, should_stop: Callable[[], bool] | None) -> str | None:
    """``wall_clock`` past ``deadline`` (``time.perf_counter()``), ``interrupted`` when ``should_stop()``
    says so (a signal), else ``None``: the stopping rules every strategy's loop shares."""
    if deadline is not None and time.perf_counter() > deadline:
        return "wall_clock"
    if should_stop is not None and should_stop():
        return "interrupted"
    return None


@dataclass
class CampaignState:
    """The counters, archive and optimiser of a running campaign (see the module docstring)."""

    campaign: Campaign
    host: Host
    n_trials: int = 0
    evaluations: int = 0
    next_id: int = 0
    archive: set[str] = field(default_factory=set)
    incumbent: Incumbent = field(default_factory=Incumbent)
    ax: Any = None  # llm-bo's Ax client (hts.campaign.axclient), else None
    space: list[Knob] = field(default_factory=list)  # llm-bo's knob space
    resumed_at: int = 0  # trials stored before this run
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def resume(cls, campaign: Campaign, host: Host, store: CampaignStore) -> CampaignState:
        """The state after the trials already stored (an empty store: a new campaign)."""
        last = store.last_trial()
        n_trials = store.n_trials() if last else 0
        return cls(
            campaign,
            host,
            n_trials=n_trials,
            evaluations=store.n_evaluations(),
            next_id=(last or (-1, 0))[0] + 1,
            archive=store.known_hashes(),
            incumbent=Incumbent.replay(store.observations_by_trial()) if last else Incumbent(),
            resumed_at=n_trials,
        )

    @property
    def trials_per_iteration(self) -> int:
        return self.campaign.budget.trials_per_iteration

    @property
    def max_trials(self) -> int:
        return self.campaign.budget.iterations * self.trials_per_iteration

    @property
    def iteration(self) -> int:
        """The iteration the next trial belongs to."""
        return self.n_trials // self.trials_per_iteration

    @property
    def deadline(self) -> float | None:
        """``budget.wall_clock_hours`` after this run started (``time.perf_counter()``), or ``None``."""
        hours = self.campaign.budget.wall_clock_hours
        return self.started + hours * 3600 if hours else None

    def stop_reason(self, should_stop: Callable[[], bool] | None = None) -> str | None:
        """Why the campaign stops before its next trial (``iterations``, ``max_evaluations``,
        ``wall_clock``, ``interrupted``), or ``None`` while it goes on."""
        limit = self.campaign.budget.max_evaluations
        if self.n_trials >= self.max_trials:
            return "iterations"
        if limit is not None and self.evaluations >= limit:
            return "max_evaluations"
        return stop_reason(self.deadline, should_stop)

    def want(self) -> int:
        """Trials left in the current iteration (no more than the campaign has left)."""
        q = self.trials_per_iteration
        return min(q - self.n_trials % q, self.max_trials - self.n_trials)

    def samples(self) -> int:
        """Samples of the next trial: ``budget.samples_per_trial``, fewer when the evaluation budget
        has less left (at least one)."""
        b = self.campaign.budget
        if b.max_evaluations is None:
            return b.samples_per_trial
        return max(1, min(b.samples_per_trial, b.max_evaluations - self.evaluations))

    def trials_left(self) -> int:
        """Trials the campaign has left: by its iterations, by its evaluation budget when it has one,
        and by its wall-clock limit when it has one (at the mean pace of this run's trials so far)."""
        b = self.campaign.budget
        left = self.max_trials - self.n_trials
        if b.max_evaluations is not None:
            left = min(left, -(-max(0, b.max_evaluations - self.evaluations) // max(1, b.samples_per_trial)))
        run_here = self.n_trials - self.resumed_at
        deadline = self.deadline
        if deadline is not None and run_here > 0:
            now = time.perf_counter()
            pace = (now - self.started) / run_here
            left = min(left, int(max(0.0, deadline - now) / max(pace, 1e-9)))
        return left

    def trial_rng(self, trial_id: int, *stream: int) -> np.random.Generator:
        """The random stream of a trial: from the campaign's seed and the trial id (and ``stream``
        for a planner's own draws), so a resumed campaign draws what an uninterrupted one would."""
        return np.random.default_rng([self.campaign.seed, trial_id, *stream])

    def iteration_done(self) -> bool:
        """Whether the last trial recorded ended an iteration (or the campaign's last one)."""
        return self.n_trials % self.trials_per_iteration == 0 or self.n_trials == self.max_trials

    def record(self, trial: TrialRecord, candidates: Iterable[CandidateRecord]) -> None:
        """Advance past a stored trial."""
        self.n_trials += 1
        self.evaluations += trial.n_valid
        self.next_id = trial.trial_id + 1
        self.archive.update(c.hash for c in candidates)

    def summary(self, store: CampaignStore, stopped: str) -> RunSummary:
        """The run's summary, with the stored candidates and hits."""
        elapsed = time.perf_counter() - self.started
        return RunSummary(self.n_trials, self.evaluations, store.n_candidates(), store.n_hits(), stopped, elapsed)
