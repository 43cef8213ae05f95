"""Which targets become prompt knobs: only what a prompt can carry and the generator was trained on."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.config import parse_campaign
from hts.campaign.knobs import fixed_knobs, implied_gap, knob_constraints, knob_space, prompt_targets
from hts.campaign.proposers import LLMProposer, allowed_codes
from hts.hosts import get_host
from llm.generation import GenerationResult

CAMPAIGN = """\
name: knobs
host: {material: MoS2, supercell: [4, 4, 1]}
defects: {min_defects: 1, max_defects: 6}
targets:
  homo_lumo_gap: {value: 1.0, tolerance: 0.1}
  formation_energy: {range: [0.0, 5.0]}
  normalized_homo: {range: [0.1, 0.4]}
strategy: llm-bo
surrogate: {model: default}
"""


def test_prompt_targets_skip_what_no_prompt_can_say():
    c = parse_campaign(CAMPAIGN)
    # a generator that records nothing is taken to know the study's six, not normalized_homo
    assert prompt_targets(c) == ["homo_lumo_gap", "formation_energy"]
    assert prompt_targets(c, ["homo_lumo_gap"]) == ["homo_lumo_gap"]  # a gap-only adapter
    assert prompt_targets(c, ()) == []  # the random proposer: no prompt
    # an adapter trained on the level above the VBM carries it (the h-BN and P campaigns' target)
    assert prompt_targets(c, ["normalized_homo", "homo_lumo_gap"]) == ["homo_lumo_gap", "normalized_homo"]
    names = [k.name for k in knob_space(c, get_host("MoS2", (4, 4, 1)), prompt_properties=["normalized_homo"])]
    assert "prompt_normalized_homo" in names and "prompt_homo_lumo_gap" not in names


SWITCHES = CAMPAIGN + "bo: {defect_knobs: switches}\n"


def test_knobs_follow_the_generator():
    c, host = parse_campaign(SWITCHES), get_host("MoS2", (4, 4, 1))
    names = [k.name for k in knob_space(c, host, prompt_properties=["homo_lumo_gap", "homo"])]
    rules = ["rule_Mo_to_W", "rule_S_to_Se", "rule_vac_Mo", "rule_vac_S"]
    assert names == ["prompt_homo_lumo_gap", "temperature", "max_defects", *rules]
    fixed = fixed_knobs(c, host, ["homo_lumo_gap"])
    assert fixed == {"prompt_homo_lumo_gap": 1.0, "temperature": 1.0, "max_defects": 6}
    assert "prompt_normalized_homo" not in fixed_knobs(c, host)


def test_one_allowed_rule_gets_no_switch():
    c = parse_campaign(SWITCHES.replace("defects: {", "defects: {allowed: [vac_S], "))
    names = [k.name for k in knob_space(c, get_host("MoS2", (4, 4, 1)), prompt_properties=[])]
    assert not any(n.startswith("rule_") for n in names)
    # composition: the one type's count is still a knob (it is the defect budget)
    c = parse_campaign(CAMPAIGN.replace("defects: {", "defects: {allowed: [vac_S], "))
    knobs = knob_space(c, get_host("MoS2", (4, 4, 1)), prompt_properties=[])
    assert [(k.name, k.low, k.high) for k in knobs][1:] == [("n_vac_S", 1, 6)]
    assert knob_constraints(c, get_host("MoS2", (4, 4, 1))) == []


class _Recorder:
    """A generator that records the rules it was asked to respect and returns nothing."""

    encoding = "sparse"

    def __init__(self) -> None:
        self.allowed: list[np.ndarray] = []
        self.requests: list = []

    def generate(self, requests):
        self.allowed.append(requests[0].allowed)
        self.requests.append(requests[0])
        return [GenerationResult(0, "", None, "empty", 0)]


def test_rule_knobs_narrow_what_the_decoder_may_use():
    c, host = parse_campaign(CAMPAIGN), get_host("MoS2", (4, 4, 1))
    gen = _Recorder()
    proposer = LLMProposer(host, c, gen)
    rng = np.random.default_rng(0)
    knobs = {"temperature": 1.0, "max_defects": 3, "rule_vac_S": 1, "rule_vac_Mo": 0, "rule_Mo_to_W": 0}
    proposer.propose({**knobs, "rule_S_to_Se": 0}, 8, rng)
    only_vac_s = np.zeros_like(host.allowed)
    only_vac_s[host.sites_of("S"), host.code_of("VAC")] = True
    np.testing.assert_array_equal(gen.allowed[-1], only_vac_s)
    # without rule knobs (llm-fixed): the campaign's rules as they are
    proposer.propose({"temperature": 1.0}, 8, rng)
    np.testing.assert_array_equal(gen.allowed[-1], allowed_codes(host, c))
    # every rule off: nothing is generated and no sample is spent
    calls = len(gen.allowed)
    prop = proposer.propose({**knobs, "rule_vac_S": 0, "rule_S_to_Se": 0}, 8, rng)
    assert len(gen.allowed) == calls and prop.n_generated == 0 and len(prop.batch) == 0


def test_generator_ranges_clip_and_add_prompt_knobs():
    """A gap-conditioned generator steers a HOMO/LUMO campaign through the gap it is asked for."""
    host = get_host("MoS2", (4, 4, 1))
    window = parse_campaign(
        CAMPAIGN.replace("  homo_lumo_gap: {value: 1.0, tolerance: 0.1}\n", "").replace(
            "  formation_energy: {range: [0.0, 5.0]}\n", ""
        )
    )
    assert list(window.targets) == ["normalized_homo"]
    ranges = {"homo_lumo_gap": (0.1, 1.8), "homo": (-6.0, -5.0)}
    knobs = {k.name: k for k in knob_space(window, host, ranges, prompt_properties=["homo_lumo_gap"])}
    assert (knobs["prompt_homo_lumo_gap"].low, knobs["prompt_homo_lumo_gap"].high) == (0.1, 1.8)
    assert "prompt_homo" not in knobs  # not trained on
    assert "prompt_homo_lumo_gap" not in fixed_knobs(window, host, ["homo_lumo_gap"])  # no gap implied by one level
    # without recorded ranges: no such knob (nothing says what may be asked)
    assert "prompt_homo_lumo_gap" not in {k.name for k in knob_space(window, host, None, ["homo_lumo_gap"])}
    # a target's own prompt range is clipped to what the generator saw
    c = parse_campaign(CAMPAIGN)
    gap = next(
        k
        for k in knob_space(c, host, {"homo_lumo_gap": (0.95, 1.8)}, ["homo_lumo_gap"])
        if k.name == "prompt_homo_lumo_gap"
    )
    assert gap.low == 0.95 and gap.high == 1.6


def test_composition_knobs_replace_budget_and_switches():
    c = parse_campaign(CAMPAIGN)  # composition is the default
    assert c.bo.defect_knobs == "composition"
    host = get_host("MoS2", (4, 4, 1))
    knobs = {k.name: k for k in knob_space(c, host, prompt_properties=["homo_lumo_gap"])}
    counts = ["n_Mo_to_W", "n_S_to_Se", "n_vac_Mo", "n_vac_S"]
    assert list(knobs) == ["prompt_homo_lumo_gap", "temperature", *counts]
    assert all((knobs[n].low, knobs[n].high, knobs[n].kind) == (0, 6, "int") for n in counts)
    total = " + ".join(counts)
    assert knob_constraints(c, host) == [f"{total} <= 6", f"{total} >= 1"]
    assert knob_constraints(parse_campaign(SWITCHES), host) == []  # switches: no constraint
    # the proposer hands the exact composition to the generator; types with no count are off
    gen = _Recorder()
    proposer = LLMProposer(host, c, gen)
    rng = np.random.default_rng(0)
    proposer.propose({"temperature": 1.0, "n_Mo_to_W": 0, "n_S_to_Se": 2, "n_vac_Mo": 0, "n_vac_S": 1}, 8, rng)
    req = gen.requests[-1]
    assert req.composition == {"Mo->W": 0, "S->Se": 2, "vac_Mo": 0, "vac_S": 1}
    assert (req.max_defects, req.min_defects) == (3, 3)
    s_sites = host.sites_of("S")
    expected = np.zeros_like(host.allowed)
    expected[s_sites, host.code_of("VAC")] = expected[s_sites, host.code_of("Se")] = True
    np.testing.assert_array_equal(req.allowed, expected)
    # a setting outside the bounds (not from Ax) draws nothing and spends nothing
    calls = len(gen.requests)
    prop = proposer.propose({"temperature": 1.0, "n_vac_S": 0}, 8, rng)
    assert len(gen.requests) == calls and prop.n_generated == 0
    bad = CAMPAIGN + "bo: {defect_knobs: counts}\n"
    import pytest

    from hts.errors import ConfigError

    with pytest.raises(ConfigError, match="bo.defect_knobs"):
        parse_campaign(bad)


def test_llm_fixed_asks_for_the_gap_a_homo_lumo_window_implies():
    """The one-shot baseline points a gap-conditioned model at a HOMO/LUMO window through the gap
    LUMO - HOMO of the window's centres, on either scale; not when the gap is itself a target."""
    host = get_host("MoS2", (4, 4, 1))
    levels = "  normalized_homo: {range: [-0.05, 0.10]}\n  normalized_lumo: {range: [0.5, 0.8]}\n"
    c = parse_campaign(CAMPAIGN.split("targets:")[0] + "targets:\n" + levels + "strategy: llm-fixed\n")
    assert implied_gap(c) == pytest.approx(0.65 - 0.025)
    assert fixed_knobs(c, host, ["homo_lumo_gap"])["prompt_homo_lumo_gap"] == pytest.approx(0.625)
    assert "prompt_homo_lumo_gap" not in fixed_knobs(c, host, ["formation_energy"])  # not a gap model
    raw = parse_campaign(CAMPAIGN.split("targets:")[0] + "targets:\n" + levels.replace("normalized_", ""))
    assert implied_gap(raw) == pytest.approx(0.625)
    assert implied_gap(parse_campaign(CAMPAIGN)) is None  # the gap is a target: its own centre is used
