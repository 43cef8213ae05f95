"""The ``screen`` strategy: what a user would try first, and the baseline every other strategy must beat.

Uniform random configurations under the campaign's rules (:class:`hts.campaign.proposers.RandomProposer`)
scored by the surrogate at its full speed, :data:`CHUNK` at a time. A chunk is stored as one trial.
Only what a user can act on is stored: the hits (canonicalised, de-duplicated against the archive,
each with its motif, exactly as in the other strategies), at most :data:`KEEP_PER_MOTIF` of each
motif, and the nearest misses (at most :data:`KEEP_NEAREST` a chunk, and only while they are among
the :data:`KEEP_MISSES` nearest stored so far: best distances and near misses for the oracle stay on
record); the rest are counted, not kept, so the store grows with the motifs found, not with the hours
screened.

Budget: ``budget.max_evaluations`` configurations when given, else as many as the campaign's
iterations x trials x samples would give any other strategy; ``budget.wall_clock_hours`` stops it
earlier when given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hts.campaign.config import Campaign
from hts.campaign.objective import distances
from hts.campaign.proposers import RandomProposer
from hts.campaign.score import Scorer, score_new
from hts.campaign.state import RunSummary, stop_reason
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord
from hts.defects import ConfigBatch
from hts.hosts import Host

CHUNK = 50_000
"""Configurations drawn and scored per call (and stored as one trial)."""
KEEP_NEAREST = 100
"""Misses kept per chunk at most, nearest to the targets first."""
KEEP_MISSES = 5_000
"""A chunk's miss is kept only while it is nearer than the ``KEEP_MISSES``-th nearest stored miss: a
night of screening would otherwise store 100 misses a chunk, ~800,000 rows that every oracle choice
and report reads."""
KEEP_PER_MOTIF = 500
"""Hits stored per motif: a night of screening finds millions of placements of one motif, which
neither the shortlist nor the oracle needs; the others are counted (trial ``extra``), not stored."""


def screen_budget(campaign: Campaign) -> int:
    """Configurations a screening campaign may score (see the module docstring)."""
    b = campaign.budget
    if b.max_evaluations is not None:
        return b.max_evaluations
    return b.iterations * b.trials_per_iteration * b.samples_per_trial


def run_screen(
    campaign: Campaign,
    host: Host,
    store: CampaignStore,
    scorer: Scorer,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    after_chunk: Callable[[], object] | None = None,
) -> RunSummary:
    """Run (or continue) a screening campaign until its budget is spent; resumable like the loop.
    ``after_chunk()`` is called after each stored chunk (the oracle beside generation)."""
    t_start = time.perf_counter()
    hours = campaign.budget.wall_clock_hours
    deadline = t_start + hours * 3600 if hours else None
    total = screen_budget(campaign)
    archive = store.known_hashes()
    proposer = RandomProposer(host, campaign)
    evaluations = store.n_evaluations()
    motifs = store.motifs_frame()
    per_motif: dict[str, int] = {str(k): int(v) for k, v in motifs["motif"].value_counts().items()}
    misses = NearestMisses.of(store)
    last = store.last_trial()
    trial_id = 0 if last is None else last[0] + 1
    stopped = "max_evaluations"
    while evaluations < total:
        halt = stop_reason(deadline, should_stop)
        if halt is not None:
            stopped = halt
            break
        n = min(CHUNK, total - evaluations)
        rng = np.random.default_rng([campaign.seed, trial_id])
        trial, records = screen_chunk(
            trial_id, proposer.propose({}, n, rng).batch, n, scorer, campaign, archive, per_motif, misses
        )
        store.record_trial(trial, records)
        archive.update(r.hash for r in records)
        evaluations += trial.n_valid
        if progress is not None:
            progress(_event(trial_id, evaluations, total, trial.n_hits, len(records)))
        if after_chunk is not None:
            after_chunk()
        trial_id += 1
    elapsed = time.perf_counter() - t_start
    return RunSummary(trial_id, evaluations, store.n_candidates(), store.n_hits(), stopped, elapsed)


def screen_chunk(
    trial_id: int,
    batch: ConfigBatch,
    n: int,
    scorer: Scorer,
    campaign: Campaign,
    archive: set[str],
    per_motif: dict[str, int],
    misses: NearestMisses,
) -> tuple[TrialRecord, list[CandidateRecord]]:
    """Score one chunk of ``n`` drawn configurations (``batch``: the valid ones) and keep what a user
    can act on: its trial row and the candidates to store (:func:`_worth_keeping`, :func:`_room`)."""
    t0 = time.perf_counter()
    pred = scorer.score(batch)
    d, _ = distances(pred.mean, list(pred.targets), campaign.targets)
    scored = score_new(batch.take(_worth_keeping(d, misses.threshold())), archive, scorer, campaign)
    records = [r for r in scored.records if _room(r.motif, per_motif)]
    misses.add([r.distance for r in records if not r.hit])
    n_hits = sum(r.hit for r in records)
    trial = TrialRecord(
        trial_id=trial_id,
        iteration=trial_id,
        strategy="screen",
        kind="screen",
        knobs={},
        n_generated=n,
        n_valid=len(batch),
        n_new=len(records),
        n_hits=n_hits,
        metrics={"hit_fraction": scored.n_hits / max(1, n), "best_distance": float(d.min())},
        wall_time_s=time.perf_counter() - t0,
        extra={"scored_hits": int((d == 0).sum()), "new_hits_not_stored": scored.n_hits - n_hits},
    )
    return trial, records


def _room(motif: str | None, per_motif: dict[str, int]) -> bool:
    """Whether a candidate is stored: misses always, a hit while its motif has fewer than
    :data:`KEEP_PER_MOTIF` stored hits (counted in ``per_motif``, updated here)."""
    if motif is None:
        return True
    if per_motif.get(motif, 0) >= KEEP_PER_MOTIF:
        return False
    per_motif[motif] = per_motif.get(motif, 0) + 1
    return True


def _worth_keeping(d: np.ndarray, threshold: float = np.inf) -> np.ndarray:
    """Rows to store: every hit and the :data:`KEEP_NEAREST` nearest misses nearer than ``threshold``."""
    misses = np.flatnonzero((d > 0) & (d < threshold))
    nearest = misses[np.argsort(d[misses], kind="stable")[:KEEP_NEAREST]]
    return np.sort(np.concatenate([np.flatnonzero(d == 0), nearest]))


def _event(trial_id: int, evaluations: int, total: int, hits: int, new: int) -> dict[str, Any]:
    """A progress event in the loop's shape (the bar counts configurations, not trials)."""
    return {
        "trial": trial_id,
        "iteration": trial_id,
        "trials": evaluations,
        "max_trials": total,
        "evaluations": evaluations,
        "new": new,
        "hits": hits,
        "score": hits / max(1, new),
    }


class NearestMisses:
    """The distances of the :data:`KEEP_MISSES` nearest misses stored so far; :meth:`threshold` is the
    distance a new miss must beat to be stored (infinite until there are that many)."""

    def __init__(self, distances: Sequence[float] | np.ndarray = ()) -> None:
        self.kept = np.sort(np.asarray(distances, dtype=float))[:KEEP_MISSES]

    @classmethod
    def of(cls, store: CampaignStore) -> NearestMisses:
        """From the misses a (resumed) store holds."""
        cands = store.candidates_frame(order_by_distance=True, predictions=False, limit=store.n_hits() + KEEP_MISSES)
        return cls(cands.loc[~cands["hit"].astype(bool), "distance"].to_numpy(dtype=float))

    def threshold(self) -> float:
        return float(self.kept[-1]) if len(self.kept) >= KEEP_MISSES else np.inf

    def add(self, distances: Sequence[float]) -> None:
        """Record the distances of newly stored misses."""
        if len(distances):
            self.kept = np.sort(np.concatenate([self.kept, np.asarray(distances, dtype=float)]))[:KEEP_MISSES]
