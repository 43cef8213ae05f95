"""In-memory stand-ins for the planner tests: a campaign state without a store, and a fake Ax client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hts.campaign.config import parse_campaign
from hts.campaign.knobs import fixed_knobs, knob_space
from hts.campaign.state import CampaignState
from hts.hosts import get_host
from tests.hts.campaign.conftest import campaign_text


class FakeAx:
    """Hands out trial indices in order and remembers what it was told; ``predict`` scores a setting
    by its ``n_vac_S`` count (more S vacancies, higher)."""

    def __init__(self) -> None:
        self.attached: list[dict[str, Any]] = []
        self.completed: dict[int, tuple[float, float]] = {}
        self.suggestions = 0

    def attach_trial(self, parameters: dict[str, Any]) -> int:
        self.attached.append(dict(parameters))
        return len(self.attached) - 1

    def get_next_trials(self, max_trials: int) -> dict[int, dict[str, Any]]:
        out = {}
        for _ in range(max_trials):
            self.suggestions += 1
            setting = {"temperature": 0.5 + 0.01 * self.suggestions}
            out[self.attach_trial(setting)] = setting
        return out

    def complete_trial(self, index: int, raw_data: dict[str, tuple[float, float]]) -> None:
        self.completed[index] = raw_data["score"]

    def predict(self, points: list[dict[str, Any]]) -> list[dict[str, tuple[float, float]]]:
        return [{"score": (float(p.get("n_vac_S", 0)), 0.0)} for p in points]


def state(strategy: str = "llm-bo", iterations: int = 4, samples: int = 16, extra: str = "") -> CampaignState:
    """A campaign state of the 4x4 MoS2 test campaign with no trial run, its knob space and a fake Ax."""
    campaign = parse_campaign(campaign_text(Path("unused"), strategy, iterations, samples, extra))
    host = get_host("MoS2", (4, 4, 1))
    s = CampaignState(campaign, host)
    if strategy == "llm-bo":
        s.space = knob_space(campaign, host)
        s.ax = FakeAx()
    return s


def fixed(s: CampaignState) -> dict[str, Any]:
    return fixed_knobs(s.campaign, s.host)
