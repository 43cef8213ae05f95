"""LocalPlanner: compositions next to the leading setting, one per trial or several in a probe."""

from hts.campaign.local import LOCAL_PROBES
from hts.campaign.plan import TrialKind
from hts.campaign.planners import LocalPlanner
from tests.hts.campaign.planners.fakes import state

COUNTS = ("n_vac_S", "n_S_to_Se", "n_vac_Mo", "n_Mo_to_W")


def leader_setting(s, **counts):
    base = {k.name: (k.low + k.high) / 2 for k in s.space if not k.name.startswith("n_")}
    return {**base, **{n: counts.get(n, 0) for n in (k.name for k in s.space if k.name.startswith("n_"))}}


def test_an_untried_leader_with_hits_is_confirmed_on_a_whole_trial():
    s = state()
    leader = leader_setting(s, n_vac_S=2)
    s.incumbent.add(leader, 0.5, 1, 1)  # one sample so far: under a trial's worth, untried
    (plan,) = LocalPlanner(1).plan(s, 2)
    assert plan.kind == TrialKind.LOCAL and plan.knobs == leader and plan.ax_index == 0


def test_a_tried_leader_is_probed_around_on_its_neighbours():
    s = state()
    leader = leader_setting(s, n_vac_S=2)
    s.incumbent.add(leader, 0.5, 64, 20)
    (plan,) = LocalPlanner(1).plan(s, 2)
    assert plan.kind == TrialKind.PROBE and plan.ax_index is None and len(plan.settings) == LOCAL_PROBES
    for part in plan.settings:
        steps = sum(abs(int(part[n]) - int(leader[n])) for n in part if n.startswith("n_"))
        assert 1 <= steps <= 2 and {k: v for k, v in part.items() if not k.startswith("n_")} == {
            k: v for k, v in leader.items() if not k.startswith("n_")
        }
    # Ax's model ranks them: the fake prefers more S vacancies, so the first pick adds one
    assert plan.settings[0]["n_vac_S"] == 3


def test_no_local_trials_without_a_leader_or_without_slots():
    s = state()
    assert LocalPlanner(1).plan(s, 2) == []
    s.incumbent.add(leader_setting(s, n_vac_S=2), 0.5, 64, 20)
    assert LocalPlanner(0).plan(s, 2) == [] and LocalPlanner(1).plan(s, 0) == []


def test_switch_knobs_have_no_compositions_to_search():
    s = state(extra="bo: {defect_knobs: switches, local_trials: 0}\n")
    s.incumbent.add({"temperature": 1.0, "max_defects": 4}, 0.5, 64, 20)
    assert LocalPlanner(1).plan(s, 2) == []
