"""Proposers (hts.campaign.proposers): the campaign's rules in random proposals, the knob names and
what the LLM proposer keeps of a generator's answers (a fake generator: no model is loaded).

Rule and composition knobs handed to the generator are tested in test_knobs.py, chunked random
draws in test_startup.py."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.config import Campaign, parse_campaign
from hts.campaign.proposers import (
    LLMProposer,
    RandomProposer,
    allowed_codes,
    campaign_rules,
    count_knob,
    knob_allowed,
    knob_composition,
    max_defects,
    rule_knob,
)
from hts.defects import DefectConfiguration
from hts.hosts import get_host
from llm.generation import GenerationResult

HOST = get_host("MoS2", (4, 4, 1))  # 48 sites: 16 Mo, 32 S
RULES = ["Mo->W", "S->Se", "vac_Mo", "vac_S"]  # the host's rules, in its order


def _campaign(defects: str = "{min_defects: 1, max_defects: 8}", strategy: str = "random") -> Campaign:
    return parse_campaign(
        f"""\
name: proposers
host: {{material: MoS2, supercell: [4, 4, 1]}}
defects: {defects}
targets:
  homo_lumo_gap: {{value: 0.6, tolerance: 0.15}}
strategy: {strategy}
surrogate: {{model: default}}
dask: {{enabled: false}}
"""
    )


def _rules_used(configs: list[DefectConfiguration]) -> set[str]:
    return set().union(*(c.rule_counts() for c in configs))


def test_knob_names():
    assert [rule_knob(r) for r in RULES] == ["rule_Mo_to_W", "rule_S_to_Se", "rule_vac_Mo", "rule_vac_S"]
    assert [count_knob(r) for r in RULES] == ["n_Mo_to_W", "n_S_to_Se", "n_vac_Mo", "n_vac_S"]


def test_campaign_rules_follow_the_hosts_order():
    assert campaign_rules(HOST, _campaign()) == RULES  # nothing listed: every rule of the host
    listed = _campaign('{allowed: [vac_S, "Mo->W"]}')
    assert campaign_rules(HOST, listed) == ["Mo->W", "vac_S"]


def test_allowed_codes_are_the_campaigns_rules_only():
    assert allowed_codes(HOST, _campaign()).tolist() == HOST.allowed.tolist()
    ok = allowed_codes(HOST, _campaign('{allowed: [vac_S, "Mo->W"]}'))
    expected = np.zeros_like(HOST.allowed)
    expected[HOST.sites_of("S"), HOST.code_of("VAC")] = True
    expected[HOST.sites_of("Mo"), HOST.code_of("W")] = True
    np.testing.assert_array_equal(ok, expected)
    assert ok.sum() == 32 + 16


def test_max_defects_takes_the_tighter_of_count_and_concentration():
    assert max_defects(HOST, _campaign("{max_defects: 8}")) == 6  # 0.125 x 48 sites
    assert max_defects(HOST, _campaign("{max_defects: 4}")) == 4
    assert max_defects(HOST, _campaign("{max_defects: 8, max_concentration: 0.05}")) == 2  # int(2.4)
    assert max_defects(HOST, _campaign("{max_defects: 8, max_concentration: 0.01}")) == 1  # never below one


def test_knob_composition_reads_the_count_knobs():
    assert knob_composition(HOST, {}) is None
    assert knob_composition(HOST, {"temperature": 1.0, "max_defects": 3, "rule_vac_S": 1}) is None
    knobs = {"n_S_to_Se": 2.4, "n_vac_S": 1.6, "temperature": 0.8}
    assert knob_composition(HOST, knobs) == {"S->Se": 2, "vac_S": 2}  # rounded, other knobs ignored


def test_knob_allowed_switches_rules_off_and_leaves_its_input():
    allowed = allowed_codes(HOST, _campaign())
    before = allowed.copy()
    out = knob_allowed(HOST, allowed, {"rule_vac_S": 0.4, "rule_S_to_Se": 1, "temperature": 0.0})
    np.testing.assert_array_equal(allowed, before)
    assert not out[:, HOST.code_of("VAC")][HOST.sites_of("S")].any()  # vac_S off (0.4 rounds to 0)
    assert out[HOST.sites_of("Mo"), HOST.code_of("VAC")].all()  # vac_Mo has no knob: on
    assert out[HOST.sites_of("S"), HOST.code_of("Se")].all() and out[HOST.sites_of("Mo"), HOST.code_of("W")].all()
    off = {rule_knob(r): 0 for r in RULES}
    assert not knob_allowed(HOST, allowed, off).any()


def test_random_proposals_use_only_the_allowed_defect_types():
    c = _campaign('{allowed: [vac_S, "Mo->W"], max_defects: 4}')
    prop = RandomProposer(HOST, c).propose({}, 300, np.random.default_rng(0))
    configs = prop.batch.to_configs()
    assert prop.n_generated == len(configs) == 300 and prop.stats == {}
    assert prop.batch.validate().all()
    assert _rules_used(configs) == {"vac_S", "Mo->W"}  # both types drawn, nothing else
    for cfg in configs:
        assert len({s for s, _ in cfg.defects}) == cfg.n_defects  # one change per site


def test_random_proposals_keep_the_defect_count_bounds():
    c = _campaign("{min_defects: 3, max_defects: 5}")
    p = RandomProposer(HOST, c)
    assert (p.k_min, p.k_max) == (3, 5)
    n = p.propose({}, 400, np.random.default_rng(1)).batch.n_defects
    assert set(n.tolist()) == {3, 4, 5}  # uniform over the bounds: every count drawn
    # the concentration ceiling (0.125 x 48 = 6) caps max_defects: 8
    n = RandomProposer(HOST, _campaign("{max_defects: 8}")).propose({}, 400, np.random.default_rng(2)).batch.n_defects
    assert n.min() == 1 and n.max() == 6
    # min_defects: 0 still draws at least one defect (a pristine host is no candidate)
    n = RandomProposer(HOST, _campaign("{min_defects: 0, max_defects: 2}")).propose({}, 50, np.random.default_rng(3))
    assert n.batch.n_defects.min() == 1


def test_the_max_defects_knob_narrows_the_budget():
    p = RandomProposer(HOST, _campaign("{min_defects: 2, max_defects: 6}"))
    rng = np.random.default_rng(4)
    n = p.propose({"max_defects": 3}, 300, rng).batch.n_defects
    assert set(n.tolist()) == {2, 3}
    n = p.propose({"max_defects": 1}, 50, rng).batch.n_defects  # below the minimum: the minimum
    assert set(n.tolist()) == {2}


def test_random_proposals_are_reproducible_from_the_seed():
    p = RandomProposer(HOST, _campaign())
    a = p.propose({}, 64, np.random.default_rng(7)).batch
    b = p.propose({}, 64, np.random.default_rng(7)).batch
    c = p.propose({}, 64, np.random.default_rng(8)).batch
    assert a.to_configs() == b.to_configs() and a.to_configs() != c.to_configs()
    assert RandomProposer.prompt_properties == ()


class _Answers:
    """A generator that records its request and answers with fixed results."""

    encoding = "sparse"

    def __init__(self, results: list[GenerationResult]) -> None:
        self.properties = ["homo_lumo_gap"]  # what it was trained to condition on, and the ranges it saw
        self.property_ranges = {"homo_lumo_gap": (0.1, 1.8)}
        self.results = results
        self.requests: list = []

    def generate(self, requests):
        self.requests.extend(requests)
        return self.results


def test_llm_proposals_keep_only_what_the_campaign_allows():
    c = _campaign("{allowed: [vac_S], max_defects: 4}", strategy="llm-fixed")
    s = HOST.sites_of("S")
    mo = HOST.sites_of("Mo")
    vac = DefectConfiguration.from_mapping(HOST, {int(s[0]): "VAC", int(s[1]): "VAC"})
    tungsten = DefectConfiguration.from_mapping(HOST, {int(mo[0]): "W"})  # a type the campaign leaves out
    gen = _Answers(
        [
            GenerationResult(0, "a", vac, None, 10),
            GenerationResult(0, "b", tungsten, None, 20),
            GenerationResult(0, "c", None, "unparsable", 30),
            GenerationResult(0, "d", vac, None, 40),
        ]
    )
    proposer = LLMProposer(HOST, c, gen)
    assert proposer.prompt_properties == ["homo_lumo_gap"]
    assert proposer.prompt_ranges == {"homo_lumo_gap": (0.1, 1.8)}
    prop = proposer.propose({"prompt_homo_lumo_gap": 0.55, "temperature": 0.7}, 4, np.random.default_rng(0))
    assert prop.n_generated == 4
    assert prop.batch.to_configs() == [vac, vac]  # the W substitution and the unparsable answer are dropped
    assert prop.stats == {"valid_fraction": 0.75, "allowed_fraction": pytest.approx(2 / 3), "mean_tokens": 25.0}
    req = gen.requests[-1]
    assert dict(req.targets) == {"homo_lumo_gap": 0.55}  # prompt_<property> -> the prompt's value
    assert (req.n, req.temperature, req.top_p) == (4, 0.7, 1.0)
    assert (req.min_defects, req.max_defects, req.composition) == (1, 4, None)  # the campaign's budget
    np.testing.assert_array_equal(req.allowed, allowed_codes(HOST, c))


def test_llm_proposals_of_nothing_valid_are_an_empty_batch():
    gen = _Answers([GenerationResult(0, "x", None, "unparsable", 5)] * 3)
    prop = LLMProposer(HOST, _campaign(strategy="llm-fixed"), gen).propose(
        {"max_defects": 2, "top_p": 0.9}, 3, np.random.default_rng(0)
    )
    assert len(prop.batch) == 0 and prop.n_generated == 3
    assert prop.stats == {"valid_fraction": 0.0, "allowed_fraction": 0.0, "mean_tokens": 5.0}
    assert (gen.requests[-1].max_defects, gen.requests[-1].top_p) == (2, 0.9)
