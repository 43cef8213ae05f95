"""One generator for several hosts: ``hts llm pretrain`` and ``finetune`` over more than one host's data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hts.cli import app
from hts.hosts import get_host
from tests.llm.conftest import configs

GAPS = {"MoS2": (0.2, 1.8), "BN": (3.0, 4.5)}  # each host's band gaps in its labels (eV)
SMALL = ["--preset", "test", "--batch-size", "4", "--threads", "1"]


def _invoke(*args: str) -> None:
    r = CliRunner().invoke(app, ["llm", *args])
    assert r.exit_code == 0, r.output


def _instructions(tmp_path, host, seed: int):
    """A labelled 2DMD folder of ``host`` and its instruction set; returns the set's folder."""
    from hts.twodmd import write_2dmd

    cfgs = configs(host, seed, 12)[1:]
    ids = [f"{host.name}{i:03d}" for i in range(len(cfgs))]
    gaps = np.random.default_rng(seed).uniform(*GAPS[host.name], len(ids))
    write_2dmd(
        tmp_path / host.name, cfgs, ["test"] * len(cfgs), table=pd.DataFrame({"homo_lumo_gap": gaps}, ids), ids=ids
    )
    _invoke("dataset", "--data", str(tmp_path / host.name), "--out", str(tmp_path / f"inst-{host.name}"))
    return tmp_path / f"inst-{host.name}", tmp_path / host.name


def test_base_and_adapter_know_every_host_named(tmp_path):
    from llm.generation import TransformersGenerator, generate_for_targets
    from llm.model import ModelManifest

    mos2, bn, p = get_host("MoS2", (4, 4, 1)), get_host("h-BN", (4, 4, 1)), get_host("P", (3, 3, 1))
    inst_mos2, data_mos2 = _instructions(tmp_path, mos2, 1)
    inst_bn, _ = _instructions(tmp_path, bn, 2)
    base = tmp_path / "base"
    _invoke(
        "pretrain", "--out", str(base), "--data", str(data_mos2), "--host", "MoS2", "--host", "h-BN",
        "--supercell", "4x4", "--random", "6", "--max-random-defects", "3", "--steps", "2", "--save-every", "2", *SMALL,
    )  # fmt: skip
    assert ModelManifest.load(base).hosts == [mos2.key, bn.key]
    adapter = tmp_path / "adapter"
    _invoke(
        "finetune", "--base", str(base), "--data", str(inst_mos2), "--data", str(inst_bn), "--out", str(adapter),
        "--steps", "2", "--save-every", "2", "--lora-r", "4", "--lora-alpha", "8", *SMALL[2:],
    )  # fmt: skip
    assert ModelManifest.load(adapter).hosts == sorted([mos2.key, bn.key])
    for h in (mos2, bn):
        gen = TransformersGenerator.from_pretrained(str(base), str(adapter), encoding="sparse", host=h)
        assert gen.properties == ["homo_lumo_gap"] and gen.property_ranges is not None
        lo, hi = gen.property_ranges["homo_lumo_gap"]  # this host's prompts' range, not the union
        assert GAPS[h.name][0] <= lo < hi <= GAPS[h.name][1]
        samples = generate_for_targets(gen, h, {"homo_lumo_gap": 1.0}, 2, seed=0, max_defects=3)
        assert len(samples) == 2 and all(s.valid and s.config.host is h for s in samples)
    with pytest.raises(Exception, match="trained on host"):
        TransformersGenerator.from_pretrained(str(base), str(adapter), encoding="sparse", host=p)


def test_random_corpus_covers_each_named_host():
    from hts.cli.llm import _pretraining_corpus

    rng = np.random.default_rng(0)
    cfgs, hosts = _pretraining_corpus([], ["MoS2", "P"], "3x3", 5, 2, rng)
    assert [h.name for h in hosts] == ["MoS2", "P"]
    assert sorted({c.host.name for c in cfgs}) == ["MoS2", "P"] and len(cfgs) == 10
    _, default = _pretraining_corpus([], [], None, 0, 2, rng)
    assert [h.key for h in default] == ["MoS2-8x8x1"]


def test_random_structures_of_a_host_with_data_come_in_the_data_cell(tmp_path):
    from hts.cli.llm import _pretraining_corpus
    from hts.twodmd import write_2dmd

    mos2 = get_host("MoS2", (4, 4, 1))
    cfgs = configs(mos2, 3, 5)[1:]
    write_2dmd(tmp_path / "d", cfgs, ["test"] * len(cfgs), ids=[f"x{i}" for i in range(len(cfgs))])
    cfgs, hosts = _pretraining_corpus([tmp_path / "d"], ["MoS2"], None, 3, 2, np.random.default_rng(0))
    assert [h.key for h in hosts] == ["MoS2-4x4x1"] and {c.host.key for c in cfgs} == {"MoS2-4x4x1"}


def test_an_adapter_without_per_host_ranges_reports_its_overall_ones():
    from llm.generation import prompt_properties
    from llm.model import ModelManifest

    manifest = ModelManifest("adapter", "fp", properties=["homo_lumo_gap"], property_ranges={"homo_lumo_gap": [0, 2]})
    assert prompt_properties(manifest, get_host("MoS2")) == (["homo_lumo_gap"], {"homo_lumo_gap": (0.0, 2.0)})
    assert prompt_properties(ModelManifest("adapter", "fp"), None) == (None, None)
