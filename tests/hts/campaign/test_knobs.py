"""Which targets become prompt knobs: only what a prompt can carry and the generator was trained on."""

from __future__ import annotations

from hts.campaign.config import parse_campaign
from hts.campaign.loop import fixed_knobs, knob_space, prompt_targets
from hts.hosts import get_host

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
    assert prompt_targets(c) == ["homo_lumo_gap", "formation_energy"]  # not normalized_homo
    assert prompt_targets(c, ["homo_lumo_gap"]) == ["homo_lumo_gap"]  # a gap-only adapter
    assert prompt_targets(c, ()) == []  # the random proposer: no prompt


def test_knobs_follow_the_generator():
    c, host = parse_campaign(CAMPAIGN), get_host("MoS2", (4, 4, 1))
    names = [k.name for k in knob_space(c, host, prompt_properties=["homo_lumo_gap", "homo"])]
    assert names == ["prompt_homo_lumo_gap", "temperature", "max_defects"]
    fixed = fixed_knobs(c, host, ["homo_lumo_gap"])
    assert fixed == {"prompt_homo_lumo_gap": 1.0, "temperature": 1.0, "max_defects": 6}
    assert "prompt_normalized_homo" not in fixed_knobs(c, host)
