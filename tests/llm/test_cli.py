"""``hts llm``: dataset -> pretrain -> finetune -> generate -> eval on a 4x4 cell, test-size model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from hts.cli import app
from tests.llm.conftest import configs


def _invoke(runner: CliRunner, *args: str) -> None:
    r = runner.invoke(app, ["llm", *args])
    assert r.exit_code == 0, r.output


def test_llm_cli_end_to_end(tmp_path, host):
    from hts.twodmd import write_2dmd

    runner = CliRunner()
    _invoke(runner, "tokenizer", str(tmp_path / "tok"))
    cfgs = configs(host, 40, 13)[1:]
    ids = [f"id{i:03d}" for i in range(len(cfgs))]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {"homo_lumo_gap": rng.uniform(0.5, 1.8, len(ids)), "homo": rng.uniform(-6, -5, len(ids))}, index=ids
    )
    write_2dmd(tmp_path / "2dmd", cfgs, ["test"] * len(cfgs), table=table, ids=ids)
    _invoke(
        runner,
        "dataset",
        "--data",
        str(tmp_path / "2dmd"),
        "--out",
        str(tmp_path / "inst"),
        "--augment",
        "2",
        "--val-fraction",
        "0.25",
    )
    assert len((tmp_path / "inst" / "train.jsonl").read_text().splitlines()) == 18
    model = tmp_path / "model"
    _invoke(
        runner,
        "pretrain",
        "--out",
        str(model),
        "--random",
        "20",
        "--host",
        "MoS2",
        "--supercell",
        "4x4",
        "--preset",
        "test",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--save-every",
        "3",
        "--max-random-defects",
        "3",
        "--threads",
        "1",
    )
    adapter = tmp_path / "adapter"
    _invoke(
        runner,
        "finetune",
        "--base",
        str(model),
        "--data",
        str(tmp_path / "inst"),
        "--out",
        str(adapter),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--save-every",
        "2",
        "--lora-r",
        "4",
        "--lora-alpha",
        "8",
    )
    from llm.dataset import read_jsonl
    from llm.generation import TransformersGenerator
    from llm.model import ModelManifest

    trained_on = sorted({p for e in read_jsonl(tmp_path / "inst" / "train.jsonl") for p in e.targets})
    assert trained_on and ModelManifest.load(adapter).properties == trained_on  # what prompts carried
    gen = TransformersGenerator.from_pretrained(str(model), str(adapter), encoding="sparse")
    assert gen.properties == trained_on
    # and the range of each property's values in the training prompts
    train_ex = read_jsonl(tmp_path / "inst" / "train.jsonl")
    assert gen.property_ranges is not None and set(gen.property_ranges) == set(trained_on)
    for p, (lo, hi) in gen.property_ranges.items():
        values = [e.targets[p] for e in train_ex if p in e.targets]
        assert (lo, hi) == (min(values), max(values))
    samples = tmp_path / "s.jsonl"
    _invoke(
        runner,
        "generate",
        "--model",
        str(model),
        "--adapter",
        str(adapter),
        "--host",
        "MoS2",
        "--supercell",
        "4x4",
        "--target",
        "formation_energy=3",
        "--sweep",
        "gap=0.6:1.2:3",
        "-n",
        "2",
        "--max-defects",
        "3",
        "--out",
        str(samples),
    )
    recs = [json.loads(x) for x in samples.read_text().splitlines()]
    assert len(recs) == 6 and all(x["valid"] for x in recs) and recs[0]["encoding"] == "sparse"
    assert [x["targets"]["homo_lumo_gap"] for x in recs] == [0.6, 0.6, 0.9, 0.9, 1.2, 1.2]
    assert all(x["targets"]["formation_energy"] == 3.0 for x in recs)
    _invoke(
        runner,
        "eval",
        "--samples",
        str(samples),
        "--train",
        str(tmp_path / "inst" / "train.jsonl"),
        "--out",
        str(tmp_path / "m.json"),
    )
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["validity"] == 1.0 and 0 <= metrics["novelty"] <= 1
    r = runner.invoke(
        app, ["llm", "generate", "--model", str(model), "--host", "MoS2", "--supercell", "4x4", "--encoding", "cif"]
    )
    assert r.exit_code != 0 and "encoding" in str(r.exception)


def test_dataset_with_surrogate_pseudo_labels(tmp_path, host):
    """Unlabelled structures and random ones get the surrogate's predictions, marked as such."""
    from hts.twodmd import write_2dmd
    from surrogate.features import make_featuriser
    from surrogate.model import SurrogateModel
    from tests.surrogate.synthetic import make_dataset

    syn = make_dataset(per_concentration=15, seed=0)
    surrogate = SurrogateModel.fit(
        make_featuriser("sparse"), syn.batch(), syn.table, ["homo_lumo_gap"], params={"iterations": 30, "depth": 3}
    ).save(tmp_path / "surrogate")
    cfgs = configs(host, 41, 10)[1:]
    ids = [f"id{i:03d}" for i in range(len(cfgs))]
    gaps = [1.0, 1.1, 1.2] + [np.nan] * (len(ids) - 3)  # 3 labelled, 6 unlabelled
    table = pd.DataFrame({"homo_lumo_gap": gaps}, index=ids)
    write_2dmd(tmp_path / "2dmd", cfgs, ["test"] * len(cfgs), table=table, ids=ids)
    runner = CliRunner()
    out = tmp_path / "inst"
    args = ["dataset", "--data", str(tmp_path / "2dmd"), "--out", str(out), "--augment", "1", "--val-fraction", "0"]
    _invoke(runner, *args, "--p-unconditional", "0", "--pseudo-labels", str(surrogate), "--pseudo-random", "5")
    examples = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    by_source = {s: [e for e in examples if e["source"] == s] for s in ("label", "surrogate")}
    assert len(by_source["label"]) == 9 and len(by_source["surrogate"]) == 6 + 5
    assert sum(bool(e["targets"]) for e in by_source["label"]) == 3
    assert all(e["targets"] for e in by_source["surrogate"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["examples_by_source"] == {"label": 9, "surrogate": 11}
    assert manifest["settings"]["pseudo_labelled_structures"] == 11
    # --properties limits what examples condition on: the dataset has gap labels only.
    _invoke(runner, *args, "--properties", "homo, formation_energy")
    examples = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert len(examples) == 9 and all(not e["targets"] for e in examples)
    r = runner.invoke(app, ["llm", *args, "--properties", "homo", "--pseudo-labels", str(surrogate)])
    assert r.exit_code != 0 and "predicts none of the properties homo" in str(r.exception)
    r = runner.invoke(app, ["llm", *args, "--properties", "colour"])
    assert r.exit_code != 0 and "unknown property 'colour'" in str(r.exception)
