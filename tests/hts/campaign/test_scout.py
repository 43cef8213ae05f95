"""The scout trial's composition groups (hts.campaign.scout)."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.knobs import Knob
from hts.campaign.objective import score_sem, trial_score
from hts.campaign.scout import (
    composition_matrix,
    scout_knobs,
    scout_observations,
    scout_segments,
    segmented_observations,
)
from hts.defects import ConfigBatch, DefectConfiguration
from hts.hosts import get_host


def _host():
    return get_host("MoS2", (4, 4, 1))


def _sites(host, element):
    return [i for i, s in enumerate(host.site_species) if s == element]


def _batch(host, configs):
    return ConfigBatch.from_configs([DefectConfiguration.from_mapping(host, c) for c in configs])


def test_composition_matrix_counts_types_per_row():
    host = _host()
    s, mo = _sites(host, "S"), _sites(host, "Mo")
    batch = _batch(host, [{s[0]: "VAC", s[1]: "Se", mo[0]: "W"}, {s[2]: "VAC"}, {s[3]: "Se", s[4]: "Se"}])
    comp = composition_matrix(host, batch)
    names = [r.name for r in host.rules]
    rows = [{n: int(c) for n, c in zip(names, row, strict=True) if c} for row in comp]
    assert rows == [{"vac_S": 1, "S->Se": 1, "Mo->W": 1}, {"vac_S": 1}, {"S->Se": 2}]


def test_scout_knobs_take_fixed_values_clipped_full_budget_and_middle_otherwise():
    space = [
        Knob("prompt_homo_lumo_gap", 0.5, 1.5),
        Knob("prompt_formation_energy", 0.0, 4.0),
        Knob("temperature", 0.4, 1.6),
        Knob("max_defects", 1, 8, "int"),
        Knob("rule_vac_S", 0, 1, "int"),
        Knob("n_vac_S", 0, 8, "int"),
    ]
    knobs = scout_knobs(space, {"prompt_homo_lumo_gap": 2.0, "temperature": 1.0, "max_defects": 6})
    assert knobs == {
        "prompt_homo_lumo_gap": 1.5,  # clipped to the knob's bounds
        "prompt_formation_energy": 2.0,  # not in llm-fixed's setting: the middle
        "temperature": 1.0,
        "max_defects": 8,
        "rule_vac_S": 1,
    }


def test_scout_observations_group_by_composition():
    host = _host()
    s, mo = _sites(host, "S"), _sites(host, "Mo")
    space = [Knob("temperature", 0.4, 1.6), Knob("n_vac_S", 0, 4, "int"), Knob("n_S_to_Se", 0, 4, "int")]
    # three samples with one S vacancy (two new: one a hit), one with two Se (new, no hit), one with W (not a knob)
    batch = _batch(host, [{s[0]: "VAC"}, {s[1]: "VAC"}, {s[2]: "VAC"}, {s[3]: "Se", s[4]: "Se"}, {mo[0]: "W"}])
    new_rows = [0, 2, 3, 4]
    d = np.array([0.0, 0.5, 1.0, 0.0])
    obs = scout_observations(host, space, {"temperature": 1.0}, batch, 5, new_rows, d)
    by_comp = {(o.parameters["n_vac_S"], o.parameters["n_S_to_Se"]): o for o in obs}
    assert set(by_comp) == {(1, 0), (0, 2)}  # the W sample cannot be put into this space
    vac = by_comp[(1, 0)]
    assert vac.n_samples == 3 and vac.parameters["temperature"] == 1.0
    assert vac.score == pytest.approx(trial_score(np.array([0.0, 0.5]), 3))
    assert vac.sem == pytest.approx(score_sem(1, 3)) and vac.n_hits == 1
    se = by_comp[(0, 2)]
    assert se.n_samples == 1 and se.score == pytest.approx(trial_score(np.array([1.0]), 1))


def test_switches_scout_is_one_observation():
    host = _host()
    s = _sites(host, "S")
    space = [Knob("max_defects", 1, 4, "int"), Knob("rule_vac_S", 0, 1, "int")]
    batch = _batch(host, [{s[0]: "VAC"}, {s[1]: "VAC"}])
    obs = scout_observations(host, space, {"max_defects": 4, "rule_vac_S": 1}, batch, 4, [0], np.array([0.0]))
    assert len(obs) == 1
    assert obs[0].parameters == {"max_defects": 4, "rule_vac_S": 1}
    assert obs[0].score == pytest.approx(trial_score(np.array([0.0]), 4)) and obs[0].n_samples == 4


def test_score_sem_shrinks_with_samples_and_is_never_zero():
    assert score_sem(0, 64) > 0 and score_sem(64, 64) > 0
    assert score_sem(32, 64) < score_sem(1, 2)


def test_scout_segments_spread_the_prompt_knobs_and_keep_the_first_at_the_targets():
    space = [
        Knob("prompt_homo_lumo_gap", 0.45, 1.55),
        Knob("prompt_formation_energy", 0.0, 4.0),
        Knob("temperature", 0.4, 1.6),
        Knob("n_vac_S", 0, 6, "int"),
    ]
    scout = {"prompt_homo_lumo_gap": 1.0, "prompt_formation_energy": 2.0, "temperature": 1.0}
    segs = scout_segments(space, scout, 5, 64, np.random.default_rng(0))
    assert [m for _, m in segs] == [13, 13, 13, 13, 12] and segs[0][0] == scout
    gaps = sorted(s["prompt_homo_lumo_gap"] for s, _ in segs[1:])
    # a Latin hypercube: one value in each quarter of the range, the temperature left alone
    assert [int((g - 0.45) / 1.1 * 4) for g in gaps] == [0, 1, 2, 3]
    assert all(s["temperature"] == 1.0 for s, _ in segs)
    assert scout_segments(space, scout, 1, 64, np.random.default_rng(0)) == [(scout, 64)]
    assert len(scout_segments(space, scout, 8, 3, np.random.default_rng(0))) == 3  # never an empty segment
    no_prompt = [Knob("temperature", 0.4, 1.6)]
    assert scout_segments(no_prompt, {"temperature": 1.0}, 4, 64, np.random.default_rng(0)) == [
        ({"temperature": 1.0}, 64)
    ]


def test_segmented_observations_key_groups_by_prompt_setting():
    """The same composition drawn under two prompt values gives two observations, each with its own
    prompt value, samples and score."""
    host = _host()
    s = _sites(host, "S")
    space = [Knob("prompt_homo_lumo_gap", 0.5, 1.5), Knob("n_vac_S", 0, 4, "int"), Knob("n_S_to_Se", 0, 4, "int")]
    a, b = {"prompt_homo_lumo_gap": 1.0}, {"prompt_homo_lumo_gap": 0.6}
    batch = ConfigBatch.concat(
        host, [_batch(host, [{s[0]: "VAC"}, {s[1]: "Se"}]), _batch(host, [{s[2]: "VAC"}, {s[3]: "VAC"}, {s[4]: "Se"}])]
    )
    assert len(batch) == 5
    # rows 0 and 1 (segment a) and 2 and 4 (segment b) are new; row 3 repeats row 2 by symmetry
    obs = segmented_observations(
        host, space, [(a, 2, 2), (b, 4, 3)], batch, [0, 1, 2, 4], np.array([0.0, 1.0, 0.0, 2.0])
    )
    got = {(o.parameters["prompt_homo_lumo_gap"], o.parameters["n_vac_S"], o.parameters["n_S_to_Se"]): o for o in obs}
    assert set(got) == {(1.0, 1, 0), (1.0, 0, 1), (0.6, 1, 0), (0.6, 0, 1)}
    assert got[(0.6, 1, 0)].n_samples == 2 and got[(0.6, 1, 0)].n_hits == 1
    assert got[(1.0, 1, 0)].n_samples == 1 and got[(1.0, 1, 0)].score == pytest.approx(trial_score(np.zeros(1), 1))


def test_concat_pads_batches_to_a_common_width():
    host = _host()
    s = _sites(host, "S")
    one, three = _batch(host, [{s[0]: "VAC"}]), _batch(host, [{s[1]: "Se", s[2]: "Se", s[3]: "VAC"}])
    both = ConfigBatch.concat(host, [one, three])
    assert both.sites.shape == (2, 3) and list(both.n_defects) == [1, 3]
    assert [c.as_dict() for c in both.to_configs()] == [one.to_configs()[0].as_dict(), three.to_configs()[0].as_dict()]
    assert len(ConfigBatch.concat(host, [])) == 0


def test_a_trial_drawn_in_parts_keeps_each_parts_setting_and_samples():
    from hts.campaign.proposers import Proposal
    from hts.campaign.scout import propose_segments, split_samples

    assert split_samples(64, 4) == [16] * 4 and split_samples(10, 4) == [3, 3, 2, 2]
    host = _host()
    asked: list[tuple[dict, int]] = []

    class Echo:  # one S vacancy per valid sample; every other part loses a sample to invalidity
        def propose(self, knobs, n, rng):
            asked.append((dict(knobs), n))
            m = n - (len(asked) % 2)
            return Proposal(
                _batch(host, [{_sites(host, "S")[i]: "VAC"} for i in range(m)]), n, {"valid_fraction": m / n}
            )

    parts = [({"n_vac_S": 1, "temperature": 1.0}, 3), ({"n_vac_S": 1, "temperature": 0.5}, 2)]
    proposal, segments = propose_segments(Echo(), host, parts, np.random.default_rng(0))
    assert asked == [(dict(s), m) for s, m in parts]
    assert segments == [(parts[0][0], 3, 2), (parts[1][0], 2, 2)]
    assert proposal.n_generated == 5 and len(proposal.batch) == 4
    assert proposal.stats["valid_fraction"] == pytest.approx((2 / 3 * 3 + 1.0 * 2) / 5)
