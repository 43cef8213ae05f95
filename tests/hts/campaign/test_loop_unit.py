"""run_loop against an in-memory planner: the loop stops when its planner has nothing to run."""

from __future__ import annotations

from pathlib import Path

import hts.campaign.loop as loop
from hts.campaign.plan import TrialKind, TrialPlan
from hts.campaign.proposers import RandomProposer
from hts.campaign.store import CampaignStore, sqlite_url
from tests.hts.campaign.planners.fakes import state
from tests.hts.campaign.test_trial import GapByVacancies


class Twice:
    """Plans one random trial twice, then nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def plan(self, s, want):
        self.calls += 1
        return [TrialPlan(TrialKind.RANDOM, [{}])] if self.calls <= 2 else []


def test_the_loop_stops_when_the_planner_has_nothing_left(tmp_path: Path, monkeypatch):
    s = state("random", iterations=10, samples=8)
    monkeypatch.setattr(loop, "make_planner", lambda *a, **k: Twice())
    store = CampaignStore(sqlite_url(tmp_path / "s.sqlite"))
    events = []
    summary = loop.run_loop(
        s.campaign, s.host, store, RandomProposer(s.host, s.campaign), GapByVacancies(), progress=events.append
    )
    assert summary.stopped == "nothing_to_plan" and summary.trials == 2 == len(events)
    assert list(store.trials_frame()["kind"]) == ["random", "random"] and summary.evaluations == 16
    store.close()
