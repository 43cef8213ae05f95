"""Local trials around the leading setting (hts.campaign.local, Incumbent.leader)."""

from __future__ import annotations

import numpy as np

from hts.campaign.incumbent import Incumbent
from hts.campaign.knobs import Knob
from hts.campaign.local import choose_local, local_candidates, neighbours

SPACE = [
    Knob("prompt_homo_lumo_gap", 0.5, 1.5),
    Knob("temperature", 0.4, 1.6),
    Knob("n_vac_S", 0, 6, "int"),
    Knob("n_Mo_to_W", 0, 6, "int"),
    Knob("n_vac_Mo", 0, 6, "int"),
]


def _setting(vac_s: int, w: int, vac_mo: int, prompt: float = 0.9) -> dict:
    return {"prompt_homo_lumo_gap": prompt, "temperature": 1.0, "n_vac_S": vac_s, "n_Mo_to_W": w, "n_vac_Mo": vac_mo}


def test_neighbours_add_remove_or_change_one_defect_within_the_bounds():
    got = neighbours((1, 0), k_min=1, k_max=2, n_max=(6, 6))
    # (0, 0) has too few defects; (1, 0) -> (2, 0), (1, 1), (0, 1)
    assert got == [(0, 1), (1, 1), (2, 0)]
    assert neighbours((2, 0), k_min=2, k_max=2, n_max=(2, 1)) == [(1, 1)]  # only a change keeps the total


def test_leader_counts_near_misses_and_shrinks_single_samples():
    inc = Incumbent()
    assert inc.leader() is None
    inc.add(_setting(2, 0, 0), 0.0, 64, 0)  # scored nothing: never a leader
    assert inc.leader() is None
    inc.add(_setting(1, 5, 0), 0.099, 1, 0)  # one near miss: 0.099 / 2
    inc.add(_setting(3, 3, 0), 0.03, 64, 0)  # 1.92 / 65
    assert inc.leader() == _setting(1, 5, 0)


def test_an_undersampled_leader_is_confirmed_first_then_its_neighbours_are_searched():
    inc = Incumbent()
    inc.add(_setting(1, 5, 0), 0.099, 1, 0)
    assert local_candidates(inc, SPACE, 1, 6, tried_at=64) == [_setting(1, 5, 0)]
    inc.add(_setting(1, 5, 0), 0.3, 64, 15)  # confirmed on a full trial
    inc.add(_setting(1, 4, 0, prompt=1.2), 0.0, 64, 0)  # a neighbour already run (another prompt)
    got = local_candidates(inc, SPACE, 1, 6, tried_at=64)
    comps = {(s["n_vac_S"], s["n_Mo_to_W"], s["n_vac_Mo"]) for s in got}
    assert comps == {(0, 5, 0), (0, 6, 0), (2, 4, 0), (1, 4, 1), (0, 5, 1)}  # 6 defects at most, (1, 4, 0) done
    assert all(s["prompt_homo_lumo_gap"] == 0.9 and s["temperature"] == 1.0 for s in got)  # the leader's


def test_no_local_trial_without_count_knobs_or_a_leader():
    inc = Incumbent()
    assert local_candidates(inc, SPACE, 1, 6, 64) == []
    inc.add({"temperature": 1.0, "max_defects": 4}, 0.5, 64, 10)
    assert local_candidates(inc, [Knob("temperature", 0.4, 1.6), Knob("max_defects", 1, 6, "int")], 1, 6, 64) == []


def test_choice_follows_the_model_and_survives_without_one():
    cands = [_setting(1, 0, 0), _setting(1, 1, 0), _setting(1, 2, 0)]
    rng = np.random.default_rng(0)

    def predict(points):
        return [(float(p["n_Mo_to_W"] == 2), 1e-6) for p in points]

    assert choose_local(cands, predict, rng) == _setting(1, 2, 0)

    def broken(points):
        raise RuntimeError("no model fitted yet")

    picks = {choose_local(cands, broken, rng)["n_Mo_to_W"] for _ in range(40)}
    assert picks == {0, 1, 2}  # uniform without a model


def test_a_probe_takes_several_distinct_neighbours_and_counts_them_tried_at_a_parts_samples():
    from hts.campaign.local import choose_probes

    inc = Incumbent()
    inc.add(_setting(1, 1, 0), 0.5, 64, 30)
    inc.add(_setting(1, 2, 0), 0.9, 16, 15)  # a probe part of 16 samples: tried at 16, not at 64
    at_16 = local_candidates(inc, SPACE, 1, 6, tried_at=16)
    at_64 = local_candidates(inc, SPACE, 1, 6, tried_at=64)
    assert inc.leader() == _setting(1, 2, 0)  # 13.5/17 beats 32/65: the probe found a better composition
    assert at_16 and all((s["n_vac_S"], s["n_Mo_to_W"], s["n_vac_Mo"]) != (1, 1, 0) for s in at_16)  # tried
    assert at_64 == [_setting(1, 2, 0)]  # by a full trial's measure the leader itself is untried
    rng = np.random.default_rng(0)
    picks = choose_probes(at_16, 4, None, rng)
    assert len(picks) == 4 and len({tuple(sorted(p.items())) for p in picks}) == 4
    assert all(p in at_16 for p in picks)
    assert len(choose_probes(at_16[:2], 4, None, rng)) == 2  # fewer candidates than parts: all of them
    # the model decides: the settings it predicts best come first
    best_first = choose_probes(at_16, 2, lambda pts: [(float(p["n_vac_Mo"]), 0.0) for p in pts], rng)
    assert all(p["n_vac_Mo"] == 1 for p in best_first)


def test_an_untried_near_miss_is_probed_beside_its_neighbours_and_an_untried_hit_is_confirmed():
    from hts.campaign.local import plan_local_trials

    rng = np.random.default_rng(0)
    near = Incumbent()
    near.add(_setting(1, 5, 0), 0.099, 1, 0)  # a scout group: one sample, a near miss
    plan = plan_local_trials(near, SPACE, 1, 6, 16, 4, 1, None, rng)
    assert len(plan) == 1 and len(plan[0]) == 4
    assert plan[0][0] == _setting(1, 5, 0)  # the leader itself on a part, first
    comps = [(s["n_vac_S"], s["n_Mo_to_W"], s["n_vac_Mo"]) for s in plan[0][1:]]
    assert len(set(comps)) == 3 and all(
        c in {(0, 5, 0), (0, 6, 0), (2, 4, 0), (1, 4, 1), (0, 5, 1), (1, 4, 0)} for c in comps
    )
    hit = Incumbent()
    hit.add(_setting(1, 5, 0), 1.1, 2, 1)  # a scout group with a hit: confirmed on a whole trial
    assert plan_local_trials(hit, SPACE, 1, 6, 16, 4, 1, None, rng) == [[_setting(1, 5, 0)]]
    assert plan_local_trials(near, SPACE, 1, 6, 64, 1, 1, None, rng) == [[_setting(1, 5, 0)]]  # no probes
    hit.add(_setting(1, 5, 0), 0.5, 64, 30)  # tried: its neighbours, four to a probe, two probes at most
    two = plan_local_trials(hit, SPACE, 1, 6, 16, 4, 2, None, rng)
    assert [len(p) for p in two] == [4, 2]  # six untried neighbours
    assert all(s != _setting(1, 5, 0) for p in two for s in p)


def test_once_the_leaders_neighbours_are_all_tried_the_runner_up_is_searched_around():
    """Best-first: an unlucky part (no hit in 16 samples) must not end the search next to it."""
    inc = Incumbent()
    inc.add(_setting(1, 5, 0), 0.099, 64, 0)  # the leader, tried, a near miss
    for comp in neighbours((1, 5, 0), 1, 6, (6, 6, 6)):
        inc.add(_setting(*comp), 0.0 if comp != (1, 4, 0) else 0.09, 16, 0)  # all tried; (1, 4, 0) second
    assert inc.ranked()[:2] == [_setting(1, 5, 0), _setting(1, 4, 0)]
    got = local_candidates(inc, SPACE, 1, 6, tried_at=16)
    comps = {(s["n_vac_S"], s["n_Mo_to_W"], s["n_vac_Mo"]) for s in got}
    assert comps and all(c in set(neighbours((1, 4, 0), 1, 6, (6, 6, 6))) for c in comps)
    assert (1, 3, 0) in comps and (1, 5, 0) not in comps
