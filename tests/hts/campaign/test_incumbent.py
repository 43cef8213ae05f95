"""The incumbent re-run by exploitation trials (hts.campaign.incumbent)."""

from __future__ import annotations

import json

from hts.campaign.incumbent import Incumbent
from hts.campaign.plan import Observation


def test_shrunk_mean_prefers_many_hits_over_one_lucky_sample():
    inc = Incumbent()
    assert inc.best() is None
    inc.add({"n_vac_S": 1, "temperature": 1.0}, 1.1, 1, 1)  # one sample, a hit: 1.1 / 2
    inc.add({"n_vac_S": 2, "temperature": 1.0}, 0.9, 64, 52)  # 57.6 / 65
    assert inc.best() == {"n_vac_S": 2, "temperature": 1.0}
    inc.add({"n_vac_S": 2, "temperature": 1.0}, 0.0, 64, 0)  # re-run without a hit: 57.6 / 129
    assert inc.best() == {"n_vac_S": 1, "temperature": 1.0}


def test_only_settings_with_hits_are_exploited():
    inc = Incumbent()
    inc.add({"a": 1}, 0.099, 64, 0)  # a near miss, however close
    inc.add({"a": 2}, 0.5, 0, 0)  # no samples: ignored
    assert inc.best() is None
    inc.add({"a": 3}, 0.08, 64, 5)  # a few hits, a lower score than the near miss
    assert inc.best() == {"a": 3}


def test_rebuilt_from_stored_trials_counts_scout_groups_and_ax_trials_only():
    rows = [
        {
            "knobs": {"t": 1.0},
            "metrics": {"score": 0.2},
            "n_generated": 64,
            "n_hits": 3,
            "extra": {"scout": True, "scout_obs": [[{"a": 1}, 1.05, 3, 3], [{"a": 2}, 0.01, 10, 0]]},
        },
        {"knobs": {"a": 3}, "metrics": {"score": 0.5}, "n_generated": 64, "n_hits": 30, "extra": {"ax_trial": 2}},
        {"knobs": {"a": 9}, "metrics": {"score": 1.1}, "n_generated": 64, "n_hits": 64, "extra": {}},  # not from Ax
    ]
    inc = replay_legacy(rows)
    assert inc.best() == {"a": 1}  # 3.15/4 beats 32/65; the non-Ax trial (70.4/65) is not counted


def test_a_setting_with_rare_hits_is_not_exploited():
    """2 hits in 64 samples, then none in 64: a hit rate of 1.6 %, under a 10 % floor."""
    inc = Incumbent()
    inc.add({"a": 1}, 0.12, 64, 2)
    inc.add({"a": 1}, 0.09, 64, 0)
    assert inc.best(min_hit_rate=0.1) is None and inc.best() == {"a": 1}
    inc.add({"a": 2}, 0.5, 64, 30)
    assert inc.best(min_hit_rate=0.1) == {"a": 2}


def test_hits_of_a_setting_over_all_or_its_last_runs():
    """A narrow composition used up: its recent runs show fewer new hits than its total."""
    inc = Incumbent()
    s = {"temperature": 1.0, "n_vac_S": 1}
    for hits in (33, 29, 12, 7):
        inc.add(s, hits / 64, 64, hits)
    inc.add({"temperature": 0.5, "n_vac_S": 1}, 1.0, 64, 64)  # another setting: not counted
    assert inc.hits_of(s) == (81, 256)
    assert inc.hits_of(s, last=2) == (19, 128)
    assert inc.hits_of({"temperature": 2.0}) == (0, 0)


def test_exploration_runs_and_how_many_came_after_a_setting_was_found():
    inc = Incumbent()
    inc.add({"a": 1}, 0.0, 64, 0, explored=True)
    inc.add({"a": 2}, 0.9, 64, 50, explored=True)  # found by exploration: not counted as a try after it
    inc.add({"a": 2}, 0.9, 64, 48)  # its re-run: not exploration
    inc.add({"a": 3}, 0.0, 64, 1, explored=True)
    inc.add({"a": 2}, 0.9, 64, 47)
    inc.add({"a": 4}, 0.0, 64, 0, explored=True)
    assert inc.explored() == [(0, 64), (50, 64), (1, 64), (0, 64)]
    assert inc.explored_since({"a": 2}) == 2
    assert inc.explored_since({"a": 1}) == 3
    assert inc.explored_since({"a": 9}) == 4  # never run: every exploration run counts


def test_exploration_runs_are_rebuilt_from_stored_trials():
    """Ax and local trials are exploration; exploitation re-runs and the scout are not."""
    rows = [
        {
            "knobs": {},
            "metrics": {},
            "n_generated": 8,
            "n_hits": 2,
            "extra": {"scout": True, "scout_obs": [[{"a": 1}, 0.5, 8, 2]]},
        },
        {"knobs": {"a": 2}, "metrics": {"score": 0.1}, "n_generated": 64, "n_hits": 3, "extra": {"ax_trial": 1}},
        {
            "knobs": {"a": 1},
            "metrics": {"score": 0.6},
            "n_generated": 64,
            "n_hits": 40,
            "extra": {"ax_trial": 2, "exploit": True},
        },
        {
            "knobs": {"a": 3},
            "metrics": {"score": 0.0},
            "n_generated": 64,
            "n_hits": 0,
            "extra": {"ax_trial": 3, "local": True},
        },
    ]
    inc = replay_legacy(rows)
    assert inc.explored() == [(3, 64), (0, 64)]
    assert inc.explored_since({"a": 1}) == 2 and inc.explored_since({"a": 3}) == 0


def test_a_trial_drawn_in_parts_is_one_exploration_try():
    """A local probe's parts are settings of their own, but one exploration run for the allocation;
    rebuilt the same way from its stored observations; the scout's parts explore nothing."""
    parts = [({"a": 1}, 0.9, 16, 14), ({"a": 2}, 0.0, 16, 0), ({"a": 3}, 0.1, 16, 1)]
    inc = Incumbent()
    inc.add({"a": 0}, 0.5, 64, 30)
    inc.add_group(parts, explored=True)
    assert inc.explored() == [(15, 48)]
    assert inc.hits_of({"a": 1}) == (14, 16) and inc.best() == {"a": 1}
    assert inc.explored_since({"a": 0}) == 1 and inc.explored_since({"a": 1}) == 0
    rows = [
        {"knobs": {"t": 1.0}, "metrics": {"score": 0.2}, "n_generated": 8, "n_hits": 1,
         "extra": {"scout": True, "scout_obs": [[{"s": 1}, 0.1, 8, 1]]}},
        {"knobs": {"a": 0}, "metrics": {"score": 0.5}, "n_generated": 64, "n_hits": 30,
         "extra": {"ax_trial": 3, "exploit": True}},
        {"knobs": {"a": 1}, "metrics": {"score": 0.3}, "n_generated": 48, "n_hits": 15,
         "extra": {"local": True, "probe_obs": [list(p) for p in parts]}},
    ]  # fmt: skip
    rebuilt = replay_legacy(rows)
    assert rebuilt.explored() == [(15, 48)]  # the scout and the exploitation run are not exploration
    assert rebuilt.best() == {"a": 1} and rebuilt.hits_of({"a": 2}) == (0, 16)


def replay_legacy(rows: list[dict]) -> Incumbent:
    """An incumbent replayed from trial rows as stores before the kind column kept them (flags in
    ``extra``), through the store's legacy converter: what ``--resume`` of such a store rebuilds."""
    from hts.campaign.store_legacy import legacy_kind, legacy_observations

    trials = []
    for i, r in enumerate(rows):
        text = {"trial_id": i, **r, **{k: json.dumps(r[k]) for k in ("knobs", "metrics", "extra")}}
        obs = [
            Observation(json.loads(o["parameters"]), o["score"], o["sem"], o["n_samples"], o["n_hits"], o["ax_index"])
            for o in legacy_observations(text)
        ]
        trials.append((legacy_kind("llm-bo", r["extra"]), obs))
    return Incumbent.replay(trials)


def test_replay_of_stored_observations_by_kind():
    """Exploitation re-runs are not exploration; Ax and local trials are; a probe is one try."""
    trials = [
        ("scout", [Observation({"a": 1}, 0.5, 0.1, 8, 2, 0)]),
        ("ax", [Observation({"a": 2}, 0.1, 0.05, 64, 3, 1)]),
        ("exploit", [Observation({"a": 1}, 0.6, 0.05, 64, 40, 2)]),
        ("probe", [Observation({"a": 3}, 0.0, 0.1, 16, 0, 3), Observation({"a": 4}, 0.2, 0.1, 16, 3, 4)]),
        ("fixed", []),
    ]
    inc = Incumbent.replay(trials)
    assert inc.explored() == [(3, 64), (3, 32)]
    assert inc.hits_of({"a": 1}) == (42, 72) and inc.explored_since({"a": 1}) == 2
