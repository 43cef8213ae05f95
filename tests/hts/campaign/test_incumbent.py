"""The incumbent re-run by exploitation trials (hts.campaign.incumbent)."""

from __future__ import annotations

from hts.campaign.incumbent import Incumbent


def test_shrunk_mean_prefers_many_hits_over_one_lucky_sample():
    inc = Incumbent()
    assert inc.best() is None
    inc.add({"n_vac_S": 1, "temperature": 1.0}, 1.1, 1)  # one sample, a hit: 1.1 / 2
    inc.add({"n_vac_S": 2, "temperature": 1.0}, 0.9, 64)  # 57.6 / 65
    assert inc.best() == {"n_vac_S": 2, "temperature": 1.0}
    inc.add({"n_vac_S": 2, "temperature": 1.0}, 0.0, 64)  # re-run without a hit: 57.6 / 129
    assert inc.best() == {"n_vac_S": 1, "temperature": 1.0}


def test_nothing_to_exploit_without_a_positive_score():
    inc = Incumbent()
    inc.add({"a": 1}, 0.0, 64)
    inc.add({"a": 2}, 0.5, 0)  # no samples: ignored
    assert inc.best() is None


def test_rebuilt_from_stored_trials_counts_scout_groups_and_ax_trials_only():
    rows = [
        {
            "knobs": {"t": 1.0},
            "metrics": {"score": 0.2},
            "n_generated": 64,
            "extra": {"scout": True, "scout_obs": [[{"a": 1}, 1.05, 3], [{"a": 2}, 0.01, 10]]},
        },
        {"knobs": {"a": 3}, "metrics": {"score": 0.5}, "n_generated": 64, "extra": {"ax_trial": 2}},
        {"knobs": {"a": 9}, "metrics": {"score": 1.1}, "n_generated": 64, "extra": {}},  # not an Ax trial
    ]
    inc = Incumbent.from_trials(rows)
    assert inc.best() == {"a": 1}  # 3.15/4 beats 32/65; the non-Ax trial (70.4/65) is not counted


def test_near_misses_are_not_exploited():
    inc = Incumbent()
    inc.add({"a": 1}, 0.099, 64)  # closeness only: below the 0.1 weight however close
    assert inc.best(min_score=0.1) is None
    inc.add({"a": 2}, 0.3, 64)  # some hits
    assert inc.best(min_score=0.1) == {"a": 2}
