"""Surrogate pseudo-labels for the instruction set: which structures, which values, how marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hts.errors import ConfigError
from llm.dataset import build_examples
from llm.pseudo_labels import pseudo_label, unlabelled
from tests.llm.conftest import configs


def _fake_predict(cfgs):
    """A deterministic stand-in for a surrogate: gap falls with the number of defects."""
    n = np.array([c.n_defects for c in cfgs], dtype=float)
    return {"homo_lumo_gap": 1.8 - 0.1 * n, "formation_energy": 2.0 * n}


def test_unlabelled_keeps_rows_without_any_label(host):
    cfgs = configs(host, 5, 4)
    ids = ["a", "b", "c", "d"]
    table = pd.DataFrame({"homo_lumo_gap": [1.0, np.nan, np.nan, 0.5], "homo": [np.nan, np.nan, -5.0, -6.0]}, index=ids)
    got_ids, got_cfgs = unlabelled(ids, cfgs, table, ["homo_lumo_gap", "homo"])
    assert got_ids == ["b"] and got_cfgs == [cfgs[1]]
    # A table with none of the columns: every structure is unlabelled.
    assert unlabelled(ids, cfgs, table, ["fermi_level"])[0] == ids


def test_pseudo_labelled_examples_carry_the_predictions(host):
    cfgs = configs(host, 7, 6)
    ids = [f"s{i}" for i in range(len(cfgs))]
    pseudo = pseudo_label(host, ids, cfgs, _fake_predict, ["homo_lumo_gap", "formation_energy", "homo"])
    assert list(pseudo.table.columns) == ["homo_lumo_gap", "formation_energy"]  # homo is not predicted
    expected = _fake_predict(cfgs)
    np.testing.assert_allclose(pseudo.table["homo_lumo_gap"].to_numpy(), expected["homo_lumo_gap"])
    examples = build_examples(pseudo, "sparse", n_augment=2, val_fraction=0.0, seed=1, source="surrogate")
    assert len(examples) == 12 and {e.source for e in examples} == {"surrogate"}
    for e in examples:
        row = ids.index(e.structure_id)
        assert e.targets, "every pseudo-labelled example is conditional"
        for prop, value in e.targets.items():
            assert value == pytest.approx(expected[prop][row])


def test_a_surrogate_without_the_properties_is_refused(host):
    cfgs = configs(host, 8, 2)
    with pytest.raises(ConfigError, match="predicts none of the properties"):
        pseudo_label(host, ["a", "b"], cfgs, _fake_predict, ["homo", "lumo"])
    with pytest.raises(ConfigError, match="2 ids for 1"):
        pseudo_label(host, ["a", "b"], cfgs[:1], _fake_predict, ["homo_lumo_gap"])
