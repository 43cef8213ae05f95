"""The local-search planner: ``bo.local_trials`` trials of each iteration search the compositions next
to the leading setting, chosen by Ax's model (:mod:`hts.campaign.local` says how and why)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hts.campaign.axclient import OBJECTIVE, optimiser_warnings
from hts.campaign.local import LOCAL_PROBES, plan_local_trials
from hts.campaign.plan import TrialKind, TrialPlan
from hts.campaign.proposers import max_defects
from hts.campaign.state import CampaignState


@dataclass
class LocalPlanner:
    trials: int  # bo.local_trials

    def plan(self, state: CampaignState, want: int) -> list[TrialPlan]:
        """Up to ``min(trials, want)`` local trials: one composition (attached to Ax now), or a probe of
        several (each part attached once observed). None without a leader or composition knobs."""
        n = min(self.trials, want)
        if n <= 0:
            return []
        campaign = state.campaign

        def predict(points: list[dict[str, Any]]) -> list[tuple[float, float]]:
            return [p[OBJECTIVE] for p in state.ax.predict(points=points)]

        with optimiser_warnings():
            trials = plan_local_trials(
                state.incumbent,
                state.space,
                max(1, campaign.defects.min_defects),
                max_defects(state.host, campaign),
                max(1, campaign.budget.samples_per_trial // LOCAL_PROBES),
                LOCAL_PROBES,
                n,
                predict,
                state.trial_rng(state.next_id, 1),
            )
            return [
                TrialPlan(TrialKind.LOCAL, parts, state.ax.attach_trial(parameters=parts[0]))
                if len(parts) == 1
                else TrialPlan(TrialKind.PROBE, parts)
                for parts in trials
            ]
