"""AxPlanner: the slots left go to Ax's suggestions."""

from hts.campaign.plan import TrialKind
from hts.campaign.planners import AxPlanner
from tests.hts.campaign.planners.fakes import state


def test_suggestions_fill_the_slots_left():
    s = state()
    plans = AxPlanner().plan(s, 2)
    assert [(p.kind, p.ax_index) for p in plans] == [(TrialKind.AX, 0), (TrialKind.AX, 1)]
    assert AxPlanner().plan(s, 0) == [] and s.ax.suggestions == 2
