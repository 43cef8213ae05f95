"""Instruction dataset builder: property subsets, symmetry augmentation, split by structure, JSONL."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hts.errors import InputDataError
from llm.dataset import build_examples, identity_op, read_jsonl, split_structures, write_splits
from llm.encodings import ENCODINGS, parse_answer
from llm.properties import PROPERTIES
from tests.llm.conftest import configs


@pytest.fixture(scope="module")
def dataset(host):
    cfgs = configs(host, 7, 20)
    ids = [f"s{i:02d}" for i in range(len(cfgs))]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(len(cfgs), len(PROPERTIES))), index=ids, columns=list(PROPERTIES))
    table.loc["s03", "homo"] = np.nan
    table.loc["s04", :] = np.nan  # unlabelled: unconditional examples only
    return SimpleNamespace(host=host, ids=ids, configs=cfgs, table=table)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_examples(dataset, host, encoding):
    ex = build_examples(dataset, encoding, n_augment=3, val_fraction=0.2, seed=1)
    assert len(ex) == 3 * len(dataset.ids)
    by_id = dict(zip(dataset.ids, dataset.configs, strict=True))
    for e in ex:
        cfg = parse_answer(e.answer, host, encoding)
        original = by_id[e.structure_id]
        # augmentation: a symmetry image of the original
        assert cfg.canonical_hash() == original.canonical_hash()
        assert cfg == original.transformed(e.op)
        row = dataset.table.loc[e.structure_id]
        for k, v in e.targets.items():
            assert np.isfinite(row[k]) and v == pytest.approx(row[k])
        if e.structure_id == "s04":
            assert e.targets == {}
        else:
            assert e.targets
        assert e.prompt.endswith({"cif": "Crystal structure:\n", "sites": "Sites:\n", "sparse": "Defects:\n"}[encoding])
    assert "homo" not in {k for e in ex if e.structure_id == "s03" for k in e.targets}
    assert all(e.op == identity_op(host) for e in ex if e.id.endswith("-0"))
    # split by structure: every structure in exactly one split
    splits = {}
    for e in ex:
        assert splits.setdefault(e.structure_id, e.split) == e.split
    assert sum(s == "val" for s in splits.values()) == 4
    # reproducible
    again = build_examples(dataset, encoding, n_augment=3, val_fraction=0.2, seed=1)
    assert [e.to_json() for e in again] == [e.to_json() for e in ex]


def test_subsets_vary_and_unconditional_fraction(dataset):
    ex = build_examples(dataset, "sparse", n_augment=4, seed=0)
    sizes = {len(e.targets) for e in ex}
    assert len(sizes) > 3
    ex = build_examples(dataset, "sparse", n_augment=4, seed=0, p_unconditional=1.0)
    assert all(not e.targets for e in ex)


def test_split_is_order_independent():
    ids = [f"x{i}" for i in range(50)]
    assert split_structures(ids, 0.2, 3) == split_structures(list(reversed(ids)), 0.2, 3)
    assert len(split_structures(ids, 0.2, 3)) == 10
    assert split_structures(ids, 0.0, 3) == set()


def test_jsonl_round_trip(dataset, tmp_path):
    ex = build_examples(dataset, "sites", n_augment=2, val_fraction=0.25, seed=0)
    paths = write_splits(ex, tmp_path, {"seed": 0})
    back = read_jsonl(paths["train"]) + read_jsonl(paths["val"])
    assert sorted(e.to_json() for e in back) == sorted(e.to_json() for e in ex)
    assert (tmp_path / "manifest.json").exists()
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\nnot json\n')
    with pytest.raises(InputDataError, match="bad.jsonl:1"):
        read_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(InputDataError, match="does not exist"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_from_2dmd_folder(host, tmp_path):
    from hts.twodmd import read_2dmd, write_2dmd

    cfgs = configs(host, 11, 6)[1:]
    ids = write_2dmd(tmp_path / "ds", cfgs, ["test"] * len(cfgs))
    ds = read_2dmd(tmp_path / "ds")
    ex = build_examples(ds, "sparse", n_augment=1, val_fraction=0.0)
    assert {e.structure_id for e in ex} == set(ids)
    assert all(not e.targets for e in ex)  # unlabelled dataset


def test_property_ranges():
    from llm.dataset import InstructionExample, property_ranges

    ex = [
        InstructionExample("a", "a", "train", "sparse", "h", 0, {"homo_lumo_gap": 1.0, "homo": -5.5}),
        InstructionExample("b", "b", "train", "sparse", "h", 0, {"homo_lumo_gap": 0.2}),
        InstructionExample("c", "c", "train", "sparse", "h", 0, {}),
    ]
    assert property_ranges(ex) == {"homo": [-5.5, -5.5], "homo_lumo_gap": [0.2, 1.0]}
    assert property_ranges([]) == {}


def test_levels_above_the_vbm_can_be_asked_for_by_name_or_alias():
    from hts.hosts import get_host
    from llm.prompts import build_prompt
    from llm.properties import STUDY_PROPERTIES, canonical_property, normalize_targets

    assert canonical_property("homo_above_vbm") == "normalized_homo"
    assert canonical_property("ef_per_site") == "formation_energy_per_site"
    assert "normalized_homo" not in STUDY_PROPERTIES
    # the study's properties keep their place in prompts; the new ones come after them
    assert list(normalize_targets({"normalized_homo": 2.2, "homo_lumo_gap": 1.0})) == [
        "homo_lumo_gap",
        "normalized_homo",
    ]
    prompt = build_prompt(get_host("h-BN"), {"normalized_homo": 2.234, "formation_energy_per_site": 4.0}, "sparse")
    assert "The HOMO above the valence band maximum is 2.23." in prompt
    assert "The formation energy per defect site is 4.00." in prompt
