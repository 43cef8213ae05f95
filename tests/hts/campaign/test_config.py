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
