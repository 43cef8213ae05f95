from __future__ import annotations

from pathlib import Path

import pytest

from hts.campaign.config import load_campaign, parse_campaign
from hts.errors import ConfigError

CAMPAIGNS = sorted((Path(__file__).parents[3] / "campaigns").glob("*.yaml"))

BASE = """\
name: t
host: {material: MoS2}
targets:
  homo_lumo_gap: {value: 1.0, tolerance: 0.1}
"""


@pytest.mark.parametrize("path", CAMPAIGNS, ids=lambda p: p.name)
def test_shipped_campaigns_validate(path):
    c = load_campaign(path)
    assert c.targets


def test_at_least_three_example_campaigns():
    assert len(CAMPAIGNS) >= 3


def test_unknown_key_names_key_and_line():
    text = BASE + "budget:\n  iterations: 3\n  itterations: 4\n"
    with pytest.raises(ConfigError, match=r"unknown key 'budget.itterations' \(line 7\)"):
        parse_campaign(text)


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match=r"unknown key 'colour' \(line 5\)"):
        parse_campaign(BASE + "colour: red\n")


def test_bad_range_and_unknown_host_and_property():
    with pytest.raises(ConfigError, match=r"low < high"):
        parse_campaign(BASE.replace("{value: 1.0, tolerance: 0.1}", "{range: [2.0, 1.0]}"))
    with pytest.raises(ConfigError, match="unknown host material 'MoTe2'"):
        parse_campaign(BASE.replace("MoS2", "MoTe2"))
    with pytest.raises(ConfigError, match="unknown target property 'bandgap'"):
        parse_campaign(BASE.replace("homo_lumo_gap", "bandgap"))
    with pytest.raises(ConfigError, match="needs a tolerance"):
        parse_campaign(BASE.replace("{value: 1.0, tolerance: 0.1}", "{value: 1.0}"))
    with pytest.raises(ConfigError, match="'vac_W' is not a rule of MoS2"):
        parse_campaign(BASE + "defects: {allowed: [vac_W]}\n")


def test_target_window():
    c = parse_campaign(BASE)
    t = c.targets["homo_lumo_gap"]
    assert t.window == pytest.approx((0.9, 1.1))
    assert c.output_dir() == Path("runs/t")


def test_a_bo_section_with_another_strategy_is_warned_about_once(caplog):
    from hts.campaign.config import parse_campaign

    text = (
        "name: w\nhost: {material: MoS2}\ntargets:\n  homo_lumo_gap: {value: 1.0, tolerance: 0.05}\n"
        "strategy: screen\nbo: {exploit_trials: 2}\n"
    )
    with caplog.at_level("WARNING"):
        parse_campaign(text, source="w.yaml")
        parse_campaign(text, source="w.yaml")
    said = [r.getMessage() for r in caplog.records if "bo section" in r.getMessage()]
    assert len(said) == 1 and "w.yaml: bo (line 6)" in said[0] and "strategy: screen" in said[0]


def test_local_trials_with_switch_knobs_is_refused_naming_both():
    import pytest

    from hts.campaign.config import parse_campaign
    from hts.errors import ConfigError

    text = (
        "name: s\nhost: {material: MoS2}\ntargets:\n  homo_lumo_gap: {value: 1.0, tolerance: 0.05}\n"
        "strategy: llm-bo\nbo: {defect_knobs: switches, local_trials: 1}\n"
    )
    with pytest.raises(ConfigError, match=r"bo.local_trials .* bo.defect_knobs: switches"):
        parse_campaign(text, source="s.yaml")
    parse_campaign(text.replace(", local_trials: 1", ""), source="s.yaml")  # the default: no local trials, fine
