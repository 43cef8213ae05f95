"""``hts surrogate train | eval | compare`` on a tiny dataset written in the 2DMD layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hts.cli import app
from hts.errors import InputDataError, ModelError
from tests.surrogate.synthetic import SyntheticDataset, make_dataset, write_dataset

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds: SyntheticDataset = make_dataset(per_concentration=25, seed=2)
    return write_dataset(tmp_path_factory.mktemp("data") / "mos2_4x4", ds)


def test_train_eval_compare(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    args = ["surrogate", "train", "--data", str(data_dir), "--out", str(out), "--targets", "homo_lumo_gap,lumo"]
    res = runner.invoke(app, [*args, "--iterations", "60", "--split", "defect-type", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert (out / "model.json").is_file() and "homo_lumo_gap" in res.output
    info = json.loads((out / "model.json").read_text())
    assert info["meta"]["split"]["method"] == "defect-type" and "provenance" in info["meta"]

    res = runner.invoke(app, ["surrogate", "eval", str(out), "--data", str(data_dir), "--json"])
    assert res.exit_code == 0, res.output
    record = json.loads(res.output)
    assert "held-out" in record["scope"]
    m = record["metrics"]["homo_lumo_gap"]
    assert m["n"] == info["meta"]["split"]["n_test"] and {"r2_25th", "rmse_25th", "coverage_90"} <= set(m)

    plots = tmp_path / "plots"
    res = runner.invoke(app, ["surrogate", "eval", str(out), "--data", str(data_dir), "--all", "--plots", str(plots)])
    assert res.exit_code == 0, res.output
    assert (plots / "parity.png").stat().st_size > 1000 and (plots / "calibration.png").is_file()

    cmp_json = tmp_path / "compare.json"
    cmd = ["surrogate", "compare", "--data", str(data_dir), "--targets", "homo_lumo_gap", "--iterations", "20"]
    cmd.append("--no-calibrate")
    res = runner.invoke(app, [*cmd, "--threads", "1", "--out", str(cmp_json)])
    assert res.exit_code == 0, res.output
    rows = json.loads(cmp_json.read_text())["rows"]
    assert {r["features"] for r in rows} == {"sparse", "slices"}
    assert all(np.isfinite(r["mae"]) for r in rows)


def test_cli_errors(data_dir: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["surrogate", "eval", str(tmp_path / "missing"), "--data", str(data_dir)])
    assert isinstance(res.exception, ModelError)
    res = runner.invoke(app, ["surrogate", "train", "--data", str(data_dir), "--out", str(tmp_path / "m"),
                              "--targets", "band_gap"])  # fmt: skip
    assert isinstance(res.exception, InputDataError) and "band_gap" in str(res.exception)
    res = runner.invoke(app, ["surrogate", "train", "--data", str(tmp_path), "--out", str(tmp_path / "m")])
    assert isinstance(res.exception, InputDataError)


def test_unlabelled_dataset_is_a_clear_error(tmp_path: Path) -> None:
    ds = make_dataset(per_concentration=5, seed=3)
    ds.table.loc[:, :] = np.nan
    path = write_dataset(tmp_path / "unlabelled", ds)
    res = runner.invoke(app, ["surrogate", "train", "--data", str(path), "--out", str(tmp_path / "m")])
    assert isinstance(res.exception, InputDataError) and "no labels" in str(res.exception)
    res = runner.invoke(app, ["surrogate", "train", "--data", str(path), "--out", str(tmp_path / "m"),
                              "--targets", "homo"])  # fmt: skip
    assert isinstance(res.exception, InputDataError) and "0 labelled rows" in str(res.exception)
