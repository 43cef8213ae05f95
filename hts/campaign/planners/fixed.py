"""``llm-fixed`` and ``random``: every trial runs the same setting (the targets' centres in the prompt,
temperature 1, the full defect budget; :func:`hts.campaign.knobs.fixed_knobs`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hts.campaign.plan import TrialKind, TrialPlan
from hts.campaign.state import CampaignState


@dataclass
class FixedPlanner:
    setting: dict[str, Any]
    kind: TrialKind = TrialKind.FIXED  # TrialKind.RANDOM for the random strategy

    def plan(self, state: CampaignState, want: int) -> list[TrialPlan]:
        """``want`` trials of the fixed setting."""
        return [TrialPlan(self.kind, [dict(self.setting)]) for _ in range(want)]
