"""Running one planned trial: propose, score, observe.

:func:`run_trial` draws the plan's samples (part after part for a trial drawn in parts), scores what is
new (:func:`hts.campaign.score.score_new`), and for ``llm-bo`` gives Ax and the incumbent what the trial
observed (:func:`observe`): one observation for a trial of one setting, one per composition group of
each part for the scout and the probes. It returns what the store commits in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from hts.campaign.axclient import OBJECTIVE, optimiser_warnings
from hts.campaign.objective import score_sem, trial_score
from hts.campaign.plan import Observation, TrialPlan
from hts.campaign.proposers import Proposal, Proposer
from hts.campaign.score import ScoredBatch, Scorer, score_new
from hts.campaign.scout import Segment, propose_segments, segmented_observations
from hts.campaign.state import CampaignState
from hts.campaign.store import CandidateRecord, TrialRecord


@dataclass
class TrialOutcome:
    """What one trial produced: its row, its new candidates, and its observations (``llm-bo`` only)."""

    trial: TrialRecord
    candidates: list[CandidateRecord]
    observations: list[Observation] = field(default_factory=list)


def run_trial(plan: TrialPlan, state: CampaignState, proposer: Proposer, scorer: Scorer) -> TrialOutcome:
    """Run ``plan`` as the campaign's next trial (id ``state.next_id``); the state is not advanced."""
    t0 = time.perf_counter()
    trial_id = state.next_id
    rng = plan.rng if plan.rng is not None else state.trial_rng(trial_id)
    n = state.samples()
    segments: list[Segment] = []
    if plan.kind.in_parts:
        proposal, segments = propose_segments(proposer, state.host, plan.parts(n), rng)
    else:
        proposal = proposer.propose(plan.knobs, n, rng)
    scored = score_new(proposal.batch, state.archive, scorer, state.campaign)
    observations = observe(state, plan, proposal, segments, scored) if state.ax is not None else []
    record = TrialRecord(
        trial_id=trial_id,
        iteration=state.iteration,
        strategy=state.campaign.strategy,
        kind=plan.kind.value,
        knobs=plan.knobs,
        n_generated=proposal.n_generated,
        n_valid=len(proposal.batch),
        n_new=len(scored.records),
        n_hits=scored.n_hits,
        metrics=trial_metrics(scored, proposal.n_generated),
        wall_time_s=time.perf_counter() - t0,
        extra={**proposal.stats, "first_hit_sample": scored.first_hit},
    )
    return TrialOutcome(record, scored.records, observations)


def trial_metrics(scored: ScoredBatch, n_generated: int) -> dict[str, float]:
    """The trial's score (Ax's objective), its fraction of samples that were new hits, its best distance."""
    return {
        OBJECTIVE: trial_score(scored.distances, n_generated),
        "hit_fraction": scored.n_hits / max(1, n_generated),
        "best_distance": float(scored.distances.min()) if scored.distances.size else float("nan"),
    }


def observe(
    state: CampaignState, plan: TrialPlan, proposal: Proposal, segments: list[Segment], scored: ScoredBatch
) -> list[Observation]:
    """Complete the trial's Ax trials with their scores and standard errors and record them in the
    incumbent; return the observations (each with its Ax trial index) for the store."""
    ax, inc = state.ax, state.incumbent
    with optimiser_warnings():
        if not plan.kind.in_parts:
            n = proposal.n_generated
            score = trial_score(scored.distances, n)
            obs = Observation(plan.knobs, score, score_sem(scored.n_hits, n), n, scored.n_hits, plan.ax_index)
            ax.complete_trial(plan.ax_index, raw_data={OBJECTIVE: (obs.score, obs.sem)})
            inc.add(obs.parameters, obs.score, obs.n_samples, obs.n_hits, plan.kind.explores)
            return [obs]
        parts = segmented_observations(state.host, state.space, segments, proposal.batch, scored.rows, scored.distances)
        out = [replace(o, ax_index=_attach(ax, o)) for o in parts]
    inc.add_group([(o.parameters, o.score, o.n_samples, o.n_hits) for o in out], explored=plan.kind.explores)
    return out


def _attach(ax: Any, obs: Observation) -> int:
    """Attach an observed setting to Ax as a completed trial; its index."""
    index = int(ax.attach_trial(parameters=obs.parameters))
    ax.complete_trial(index, raw_data={OBJECTIVE: (obs.score, obs.sem)})
    return index
