"""CampaignState: budgets, iterations and stopping rules, in memory."""

import time

from hts.campaign.state import CampaignState
from hts.campaign.store import TrialRecord
from tests.hts.campaign.planners.fakes import state


def _with_budget(budget: dict) -> CampaignState:
    s = state()
    s.campaign = s.campaign.model_copy(update={"budget": type(s.campaign.budget).model_validate(budget)})
    return s


def test_trials_left_by_iterations_evaluations_and_the_clock():
    """What adaptive exploitation is told the campaign has left: the tightest of its budgets."""
    s = _with_budget({"iterations": 20, "trials_per_iteration": 2, "samples_per_trial": 64})
    s.n_trials = 10
    assert s.trials_left() == 30
    s = _with_budget({"iterations": 20, "trials_per_iteration": 2, "samples_per_trial": 64, "max_evaluations": 1000})
    s.n_trials, s.evaluations = 10, 680
    assert s.trials_left() == 5  # 320 samples: 5 trials of 64
    s = _with_budget({"iterations": 20, "trials_per_iteration": 2, "wall_clock_hours": 155 / 3600})
    s.started = time.perf_counter() - 100.0
    assert s.trials_left() == 40  # no trial run in this run yet: no pace
    s.n_trials = 10  # 10 trials in 100 s, 55 s to the deadline: 5 more at that pace
    assert s.trials_left() == 5


def test_want_samples_and_stop_reasons():
    s = _with_budget({"iterations": 2, "trials_per_iteration": 3, "samples_per_trial": 64, "max_evaluations": 130})
    assert s.want() == 3 and s.samples() == 64 and s.stop_reason() is None
    s.record(TrialRecord(0, 0, "llm-bo", {}, 64, 64, 10, 1, {}, 0.1), [])
    assert s.want() == 2 and s.iteration == 0 and not s.iteration_done() and s.next_id == 1
    s.evaluations = 100
    assert s.samples() == 30  # what the evaluation budget has left
    s.evaluations = 130
    assert s.stop_reason() == "max_evaluations"
    s.evaluations, s.n_trials = 0, 6
    assert s.stop_reason() == "iterations" and s.iteration_done()
    s.n_trials = 0
    assert s.stop_reason(lambda: True) == "interrupted"


def test_a_trials_random_stream_depends_only_on_seed_and_id():
    s = state()
    assert s.trial_rng(5).random() == s.trial_rng(5).random() != s.trial_rng(6).random()
    assert s.trial_rng(5, 1).random() != s.trial_rng(5).random()
