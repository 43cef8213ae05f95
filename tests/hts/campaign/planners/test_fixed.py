"""FixedPlanner: llm-fixed and random run one setting in every trial."""

from hts.campaign.plan import TrialKind
from hts.campaign.planners import FixedPlanner
from tests.hts.campaign.planners.fakes import fixed, state


def test_every_trial_runs_the_fixed_setting():
    s = state("llm-fixed")
    plans = FixedPlanner(fixed(s)).plan(s, 3)
    assert [p.kind for p in plans] == [TrialKind.FIXED] * 3
    assert all(p.knobs == fixed(s) and p.ax_index is None and p.rng is None for p in plans)
    assert plans[0].knobs["prompt_homo_lumo_gap"] == 0.6 and plans[0].knobs["temperature"] == 1.0
    assert FixedPlanner(fixed(s)).plan(s, 0) == []
