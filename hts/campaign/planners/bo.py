"""``llm-bo``'s planner: the scout, then exploitation, local search and Ax's suggestions, in that order,
sharing each iteration's trials."""

from __future__ import annotations

from dataclasses import dataclass

from hts.campaign.plan import TrialPlan
from hts.campaign.planners.ax import AxPlanner
from hts.campaign.planners.exploit import ExploitPlanner
from hts.campaign.planners.local import LocalPlanner
from hts.campaign.planners.scout import ScoutPlanner
from hts.campaign.state import CampaignState


@dataclass
class BOPlanner:
    scout: ScoutPlanner
    exploit: ExploitPlanner
    local: LocalPlanner
    ax: AxPlanner

    def plan(self, state: CampaignState, want: int) -> list[TrialPlan]:
        """A scout trial alone while the scout runs; else exploitation trials first, local trials in
        the slots left, and Ax's suggestions in the rest."""
        scout = self.scout.plan(state, want)
        if scout:
            return scout
        plans = self.exploit.plan(state, want)
        plans += self.local.plan(state, want - len(plans))
        return plans + self.ax.plan(state, want - len(plans))
