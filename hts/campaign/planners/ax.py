"""The Ax planner: the trials an iteration has left go to Ax's suggestions (Sobol at the start, then
BoTorch's acquisition over the knob space, :mod:`hts.campaign.axclient`)."""

from __future__ import annotations

from dataclasses import dataclass

from hts.campaign.axclient import optimiser_warnings
from hts.campaign.plan import TrialKind, TrialPlan
from hts.campaign.state import CampaignState


@dataclass
class AxPlanner:
    def plan(self, state: CampaignState, want: int) -> list[TrialPlan]:
        """Up to ``want`` suggestions (Ax may give fewer while it hands over from Sobol to BoTorch)."""
        if want <= 0:
            return []
        with optimiser_warnings():
            suggested = state.ax.get_next_trials(max_trials=want)
        return [TrialPlan(TrialKind.AX, [dict(p)], int(i)) for i, p in suggested.items()]
