"""BOPlanner: the scout alone first; then exploitation, local search and Ax share each iteration."""

import hts.campaign.planners.exploit as exploit
from hts.campaign.plan import TrialKind
from hts.campaign.planners import AxPlanner, BOPlanner, ExploitPlanner, LocalPlanner, ScoutPlanner
from hts.campaign.scout import scout_knobs
from tests.hts.campaign.planners.fakes import fixed, state
from tests.hts.campaign.planners.test_local import leader_setting


def planner(s, exploit_trials=1, local_trials=1):
    return BOPlanner(
        ScoutPlanner(1, scout_knobs(s.space, fixed(s))),
        ExploitPlanner(exploit_trials),
        LocalPlanner(local_trials),
        AxPlanner(),
    )


def test_the_scout_runs_alone_then_ax_fills_the_iteration():
    s = state()
    assert [p.kind for p in planner(s).plan(s, 2)] == [TrialKind.SCOUT]
    s.n_trials, s.next_id = 1, 1
    assert [p.kind for p in planner(s).plan(s, 1)] == [TrialKind.AX]  # nothing observed: no leader yet


def test_exploitation_then_local_search_then_ax(monkeypatch):
    monkeypatch.setattr(exploit, "extra_exploit_slots", lambda *a: 0)
    s = state()
    s.n_trials = 2
    best = leader_setting(s, n_vac_S=2)
    s.incumbent.add(best, 0.8, 64, 50)
    kinds = [p.kind for p in planner(s).plan(s, 3)]
    assert kinds == [TrialKind.EXPLOIT, TrialKind.PROBE, TrialKind.AX]
    assert [p.kind for p in planner(s, exploit_trials=0, local_trials=0).plan(s, 2)] == [TrialKind.AX] * 2
