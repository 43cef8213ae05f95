"""SurrogateModel: learns, predicts with uncertainty, round-trips through a directory, refuses mismatches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hts.defects import ConfigBatch
from hts.errors import ConfigError, InputDataError, ModelError
from hts.hosts import get_host
from surrogate.error_model import descriptors
from surrogate.features import SparseFeaturiser
from surrogate.model import SurrogateModel
from tests.surrogate.conftest import FIT_TARGETS, SMALL_PARAMS
from tests.surrogate.synthetic import SyntheticDataset


def test_model_beats_constant_predictor(trained, dataset: SyntheticDataset) -> None:  # type: ignore[no-untyped-def]
    ev = trained.evaluation
    test = trained.test_rows
    for t in FIT_TARGETS:
        y = dataset.table[t].to_numpy()
        constant_mae = np.abs(y[test] - y[trained.train_rows].mean()).mean()
        assert ev.metrics[t]["mae"] < 0.5 * constant_mae, t
        assert ev.metrics[t]["r2"] > 0.7, t
    assert set(trained.train_rows).isdisjoint(trained.test_rows)


def test_prediction_shapes_and_uncertainty(model: SurrogateModel, dataset: SyntheticDataset) -> None:
    batch = dataset.batch()
    total = model.predict(batch, uncertainty="total")
    data = model.predict(batch, uncertainty="data")
    assert total.mean.shape == (len(batch), len(FIT_TARGETS)) == data.mean.shape
    assert (total.std > 0).all() and np.isfinite(total.knowledge_std).all()
    # A calibrated model's std is its error model's, per configuration and equal in both modes.
    assert set(model.error_models) == set(FIT_TARGETS)
    for j, t in enumerate(FIT_TARGETS):
        np.testing.assert_allclose(total.std[:, j], model.error_models[t].std(descriptors(batch)), rtol=1e-9)
    np.testing.assert_allclose(total.std, data.std, rtol=1e-9)
    assert np.ptp(total.std, axis=0).min() > 0  # not one width for every configuration
    assert np.isnan(data.knowledge_std).all()
    lo, hi = total.interval(0.9)
    assert (lo < total.mean).all() and (hi > total.mean).all()
    frame = total.to_frame(dataset.ids)
    assert list(frame.columns) == ["homo_lumo_gap", "homo_lumo_gap_std", "formation_energy", "formation_energy_std"]
    # Rows predicted in chunks equal rows predicted at once.
    chunked = model.predict(batch, chunk_size=7)
    np.testing.assert_allclose(chunked.mean, total.mean)
    with pytest.raises(ConfigError):
        model.predict(batch, uncertainty="epistemic")


def test_save_load_roundtrip(model: SurrogateModel, model_dir: Path, dataset: SyntheticDataset) -> None:
    loaded = SurrogateModel.load(model_dir)
    batch = dataset.batch()
    a, b = model.predict(batch), loaded.predict(batch)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    info = json.loads((model_dir / "model.json").read_text())
    assert info["featuriser"] == {"name": "sparse", "settings": {"n_dist": 4, "close_cutoff": 3.5}}
    assert info["host"]["key"] == "MoS2-4x4x1" and info["targets"] == FIT_TARGETS
    assert "catboost" in info["versions"] and info["meta"]["split"]["n_test"] == len(info["meta"]["split"]["test_ids"])
    expected = [f"{t}.cbm" for t in FIT_TARGETS] + [f"{t}.error.cbm" for t in FIT_TARGETS]
    assert sorted(p.name for p in model_dir.glob("*.cbm")) == sorted(expected)
    with pytest.raises(ModelError, match="already exists"):
        model.save(model_dir)


def test_load_refuses_broken_or_mismatched(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        SurrogateModel.load(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "formation_energy.cbm").unlink()
    with pytest.raises(ModelError, match="formation_energy.cbm"):
        SurrogateModel.load(broken)
    no_error_model = tmp_path / "no_error_model"
    shutil.copytree(model_dir, no_error_model)
    (no_error_model / "homo_lumo_gap.error.cbm").unlink()
    with pytest.raises(ModelError, match="error model of homo_lumo_gap"):
        SurrogateModel.load(no_error_model)
    tampered = tmp_path / "tampered"
    shutil.copytree(model_dir, tampered)
    info = json.loads((tampered / "model.json").read_text())
    info["featuriser"]["settings"]["n_dist"] = 3  # settings that no longer match the trained features
    (tampered / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="retrain"):
        SurrogateModel.load(tampered)
    info["featuriser"] = {"name": "soap", "settings": {}}
    (tampered / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="unknown featuriser"):
        SurrogateModel.load(tampered)


def test_refuses_other_host_and_featuriser(model: SurrogateModel) -> None:
    other = ConfigBatch(get_host("MoS2"), np.array([[0]], np.int32), np.array([[0]], np.int8))
    with pytest.raises(ModelError, match="MoS2-4x4x1"):
        model.predict(other)
    with pytest.raises(ModelError, match="columns"):
        model.predict_features(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(ModelError, match="slices"):
        model.check_featuriser("slices")
    with pytest.raises(ModelError, match="differ"):
        model.check_featuriser("sparse", {"n_dist": 2})
    model.check_featuriser("sparse", {"n_dist": 4})


def test_fit_input_errors(dataset: SyntheticDataset) -> None:
    f = SparseFeaturiser()
    batch = dataset.batch()
    labels = dataset.table[FIT_TARGETS].reset_index(drop=True)
    fit = SurrogateModel.fit
    with pytest.raises(InputDataError, match="empty"):
        fit(f, ConfigBatch(batch.host, batch.sites[:0], batch.codes[:0]), labels.iloc[:0], FIT_TARGETS)
    with pytest.raises(InputDataError, match="no labels for target 'lumo'"):
        fit(f, batch, labels, ["lumo"])
    nan = labels.copy()
    nan.loc[:9, "homo_lumo_gap"] = np.nan
    with pytest.raises(InputDataError, match=r"homo_lumo_gap \(10 NaN\)"):
        fit(f, batch, nan, ["homo_lumo_gap"], drop_nan=False)
    all_nan = labels.copy()
    all_nan["homo_lumo_gap"] = np.nan
    with pytest.raises(InputDataError, match="0 labelled rows"):
        fit(f, batch, all_nan, ["homo_lumo_gap"], params=SMALL_PARAMS)
    inf = labels.copy()
    inf.loc[3, "formation_energy"] = np.inf
    with pytest.raises(InputDataError, match="infinite"):
        fit(f, batch, inf, FIT_TARGETS)
    const = pd.DataFrame({"homo_lumo_gap": np.ones(len(batch))})
    with pytest.raises(InputDataError, match="constant"):
        fit(f, batch, const, ["homo_lumo_gap"])


def test_fit_drops_nan_rows(dataset: SyntheticDataset) -> None:
    batch = dataset.batch()
    labels = dataset.table[["homo_lumo_gap"]].reset_index(drop=True)
    labels.loc[::2, "homo_lumo_gap"] = np.nan
    params = {"iterations": 20, "depth": 3}
    m = SurrogateModel.fit(SparseFeaturiser(), batch, labels, ["homo_lumo_gap"], params=params, thread_count=1)
    rec = m.meta["training"]["per_target"]["homo_lumo_gap"]
    assert rec == {"n_train": len(batch) // 2, "n_nan": len(batch) - len(batch) // 2}
    assert np.isfinite(m.predict(batch).mean).all()


def test_calibration_widens_overconfident_intervals(trained, dataset: SyntheticDataset) -> None:  # type: ignore[no-untyped-def]
    model = trained.model
    test = trained.test_rows
    batch = dataset.batch()
    pred = model.predict(ConfigBatch(batch.host, batch.sites[test], batch.codes[test]))
    for j, t in enumerate(FIT_TARGETS):
        cal = model.calibration[t]
        assert cal["n_cal"] >= 10 and cal["total"]["raw_coverage_90"] < 0.9
        scale = model.std_scale(t)
        assert scale > 1.0
        err = np.abs(dataset.table[t].to_numpy()[test] - pred.mean[:, j])
        raw_cover = float((err <= 1.645 * pred.knowledge_std[:, j] / scale).mean())  # the ensemble's own spread
        cal_cover = trained.evaluation.metrics[t]["coverage_90"]
        assert cal_cover == pytest.approx(float((err <= 1.645 * pred.std[:, j]).mean()), abs=1e-3)
        assert cal_cover > raw_cover and cal_cover >= 0.75, (t, raw_cover, cal_cover)
    uncalibrated = SurrogateModel.fit(
        SparseFeaturiser(),
        batch,
        dataset.table[FIT_TARGETS].reset_index(drop=True),
        FIT_TARGETS,
        params={"iterations": 20, "depth": 3},
        calibrate=False,
        thread_count=1,
    )
    assert uncalibrated.calibration == {} and uncalibrated.std_scale("homo_lumo_gap") == 1.0


def test_mean_only_loss_data_mode_is_a_calibrated_constant(dataset: SyntheticDataset) -> None:
    """The default loss (RMSE) has no data variance: ``data`` mode's own part is one calibrated width
    per target (the std is the error model's), and without calibration it is refused rather than made up."""
    batch = dataset.batch()
    labels = dataset.table[FIT_TARGETS]
    calibrated = SurrogateModel.fit(SparseFeaturiser(), batch, labels, FIT_TARGETS, params=SMALL_PARAMS, thread_count=1)
    assert calibrated.params["loss_function"] == "RMSE"
    data = calibrated.predict(batch, uncertainty="data")
    for j, t in enumerate(FIT_TARGETS):
        assert np.unique(data.data_std[:, j]).size == 1 and data.data_std[0, j] > 0, t
    total = calibrated.predict(batch, uncertainty="total")
    assert (total.data_std == 0).all() and (total.knowledge_std > 0).all()
    np.testing.assert_allclose(total.mean, data.mean, rtol=0.2, atol=0.2)  # ensemble mean vs full model
    raw = SurrogateModel.fit(
        SparseFeaturiser(), batch, labels, FIT_TARGETS, params=SMALL_PARAMS, thread_count=1, calibrate=False
    )
    with pytest.raises(ModelError, match="no data variance"):
        raw.predict(batch, uncertainty="data")
    assert (raw.predict(batch).std > 0).all()


def test_variance_head_loss_still_selectable(dataset: SyntheticDataset) -> None:
    batch = dataset.batch()
    params = {**SMALL_PARAMS, "loss_function": "RMSEWithUncertainty"}
    m = SurrogateModel.fit(
        SparseFeaturiser(), batch, dataset.table[FIT_TARGETS], FIT_TARGETS, params=params, thread_count=1
    )
    data = m.predict(batch, uncertainty="data")
    assert np.unique(data.data_std[:, 0]).size > 1  # a per-row data variance
    assert (m.predict(batch).data_std > 0).all()
