"""Balancing an instruction set over a property's range, and random configurations over rule subsets."""

from __future__ import annotations

import numpy as np
import pytest

from hts.errors import ConfigError
from llm.balance import balance_examples
from llm.dataset import InstructionExample
from llm.sampling import random_configurations, random_rule_subset_configurations


def _examples(gaps, split="train"):
    return [
        InstructionExample(f"{split}{i}", f"{split}-s{i}", split, "sparse", "MoS2-4x4x1", 0, {"homo_lumo_gap": g})
        for i, g in enumerate(gaps)
    ]


def test_balance_flattens_the_histogram_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    gaps = np.concatenate([rng.uniform(0.0, 0.2, 900), rng.uniform(1.6, 1.8, 100)])  # 9:1
    val = _examples([0.1, 1.7], split="val")
    uncond = [InstructionExample("u0", "u", "train", "sparse", "MoS2-4x4x1", 0, {})]
    out, summary = balance_examples(_examples(gaps) + val + uncond, "band_gap", bins=2, seed=0)
    assert summary["property"] == "homo_lumo_gap"
    assert summary["before"] == [900, 100] and summary["after"] == [500, 500]
    train = [e for e in out if e.split == "train" and e.targets]
    high = [e for e in train if e.targets["homo_lumo_gap"] > 1.0]
    assert len(train) == 1000 and len(high) == 500
    assert len({e.structure_id for e in high}) <= 100  # the rare bin is repeated, not invented
    assert len({e.id for e in out}) == len(out)  # repeats get their own ids
    assert val[0] in out and val[1] in out and uncond[0] in out


def test_balance_refuses_what_it_cannot_do():
    with pytest.raises(ConfigError, match="no training example conditions on 'homo'"):
        balance_examples(_examples([0.1, 0.2]), "homo")
    with pytest.raises(ConfigError, match="bins"):
        balance_examples(_examples([0.1, 0.2]), "homo_lumo_gap", bins=1)


def test_rule_subsets_cover_single_type_patterns(host):
    rng = np.random.default_rng(0)
    vac = host.code_of("VAC")

    def vacancy_free(cfgs):
        return np.mean([all(host.code_of(sp) != vac for _, sp in c.defects) for c in cfgs])

    subsets = random_rule_subset_configurations(host, 400, 8, rng, min_defects=4)
    uniform = random_configurations(host, 400, 8, rng, min_defects=4)
    # 3 of the 15 non-empty subsets of MoS2's 4 rules have no vacancy rule: about 1/5 of the draws
    assert 0.12 < vacancy_free(subsets) < 0.3
    assert vacancy_free(uniform) < 0.1  # 4-8 uniform defects: a vacancy almost always
    assert all(4 <= c.n_defects <= 8 for c in subsets)
    for c in subsets:  # every defect follows one of the host's rules
        assert all(host.allowed[s, host.code_of(sp)] for s, sp in c.defects)
