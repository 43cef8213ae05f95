"""The scout planner: ``llm-bo``'s first ``bo.scout_trials`` trials let the model choose compositions
itself, its samples split over prompt settings (:mod:`hts.campaign.scout` says why)."""

from __future__ import annotations

from dataclasses import dataclass

from hts.campaign.plan import TrialKind, TrialPlan
from hts.campaign.scout import SCOUT_PROMPTS, scout_segments
from hts.campaign.state import CampaignState


@dataclass
class ScoutPlanner:
    trials: int  # bo.scout_trials
    setting: dict[str, int | float]  # hts.campaign.scout.scout_knobs

    def plan(self, state: CampaignState, want: int) -> list[TrialPlan]:
        """One scout trial while fewer than ``trials`` have run, else none. The prompt settings are
        drawn from the trial's own random stream, which the trial then goes on drawing from."""
        if state.n_trials >= self.trials or want <= 0:
            return []
        rng = state.trial_rng(state.next_id)
        parts = scout_segments(state.space, self.setting, SCOUT_PROMPTS, state.samples(), rng)
        return [TrialPlan(TrialKind.SCOUT, [s for s, _ in parts], rng=rng)]
