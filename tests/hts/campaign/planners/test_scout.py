"""ScoutPlanner: the first bo.scout_trials trials, the model choosing compositions, over prompt settings."""

from hts.campaign.plan import TrialKind
from hts.campaign.planners import ScoutPlanner
from hts.campaign.scout import SCOUT_PROMPTS, scout_knobs
from tests.hts.campaign.planners.fakes import fixed, state


def test_one_scout_trial_over_spread_prompts_then_none():
    s = state()
    setting = scout_knobs(s.space, fixed(s))
    planner = ScoutPlanner(1, setting)
    (plan,) = planner.plan(s, 2)
    assert plan.kind == TrialKind.SCOUT and plan.ax_index is None and plan.rng is not None
    assert len(plan.settings) == SCOUT_PROMPTS and plan.settings[0] == setting
    gaps = [p["prompt_homo_lumo_gap"] for p in plan.settings]
    assert len(set(gaps)) == SCOUT_PROMPTS  # the prompt spread over its range
    rest = [{k: v for k, v in p.items() if not k.startswith("prompt_")} for p in plan.settings]
    assert all(r == rest[0] for r in rest)  # only the prompt values differ
    assert [n for _, n in plan.parts(16)] == [4, 4, 4, 4]
    s.n_trials = 1
    assert planner.plan(s, 2) == []
    assert ScoutPlanner(0, setting).plan(state(), 2) == []


def test_the_scout_draws_from_the_trials_own_stream():
    """Planned twice for the same trial id, the same prompts: a resumed campaign draws what an
    uninterrupted one would."""
    s = state()
    setting = scout_knobs(s.space, fixed(s))
    a, b = ScoutPlanner(1, setting).plan(s, 1)[0], ScoutPlanner(1, setting).plan(s, 1)[0]
    assert a.settings == b.settings
