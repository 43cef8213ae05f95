from __future__ import annotations

from collections import Counter

import pytest

from hts.errors import ConfigError
from hts.generate import generate_high_density, generate_low_density, high_density_counts
from hts.hosts import get_host
from hts.twodmd import read_2dmd, write_2dmd

TWODMD_COUNTS = {
    "X1": 1, "X2": 19, "X3": 1, "X4": 19, "X5": 29,
    "V1": 1, "V2": 15, "V3": 743, "V4": 15, "V5": 743, "V6": 1415,
    "S1": 1, "S2": 15, "S3": 743, "S4": 15, "S5": 743, "S6": 1415,
}  # fmt: skip


@pytest.mark.parametrize("host", ["MoS2", "WSe2"])
def test_low_density_reproduces_2dmd_counts(host):
    configs, labels = generate_low_density(get_host(host))
    assert Counter(labels) == TWODMD_COUNTS
    assert len({c.canonical_hash() for c in configs}) == 5933


def test_low_density_type_content(mos2):
    configs, labels = generate_low_density(mos2, per_type=3, seed=1)
    by = {}
    for c, lab in zip(configs, labels, strict=True):
        by.setdefault(lab, []).append(c.rule_counts())
    assert by["X5"][0] == {"vac_S": 1, "S->Se": 1}
    assert by["V6"][0] == {"vac_Mo": 1, "vac_S": 1, "S->Se": 1}
    assert by["S3"][0] == {"Mo->W": 1, "vac_S": 2}


def test_low_density_is_seeded(mos2):
    a = generate_low_density(mos2, per_type=4, seed=7)
    b = generate_low_density(mos2, per_type=4, seed=7)
    c = generate_low_density(mos2, per_type=4, seed=8)
    assert a == b and a != c


def test_high_density_bounds_and_reproducibility(mos2):
    configs, labels = generate_high_density(mos2, per_concentration=8, seed=3)
    assert len(configs) == 40
    for c, lab in zip(configs, labels, strict=True):
        conc = float(lab.removeprefix("high_").removesuffix("pct")) / 100
        total, cap = high_density_counts(mos2, conc)
        assert c.n_defects == total
        assert max(c.rule_counts().values()) <= cap == 12
    assert generate_high_density(mos2, 8, seed=3) == (configs, labels)


def test_high_density_other_hosts():
    for name in ("BN", "GaSe", "InSe", "P"):
        configs, _ = generate_high_density(get_host(name), per_concentration=2, seed=0)
        assert len(configs) == 10


def test_low_density_only_for_tmds():
    with pytest.raises(ConfigError, match="use --density high"):
        generate_low_density(get_host("BN"))


def test_generated_dataset_reads_back(tmp_path, mos2):
    configs, labels = generate_low_density(mos2, per_type=2, seed=0)
    write_2dmd(tmp_path / "d", configs, labels)
    ds = read_2dmd(tmp_path / "d")
    assert ds.configs == configs and ds.descriptions == labels
