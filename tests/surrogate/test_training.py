"""Splits, evaluation, held-out bookkeeping and the featuriser comparison."""

from __future__ import annotations

import numpy as np
import pytest

from hts.errors import ConfigError, InputDataError
from surrogate.training import compare, evaluate, held_out_rows, resolve_targets, split_indices
from tests.surrogate.synthetic import SyntheticDataset


def test_random_split_is_seeded_and_disjoint() -> None:
    tr, te = split_indices(100, method="random", test_fraction=0.2, seed=3)
    assert len(te) == 20 and len(tr) == 80 and set(tr).isdisjoint(te)
    _tr2, te2 = split_indices(100, method="random", test_fraction=0.2, seed=3)
    assert np.array_equal(te, te2)
    assert not np.array_equal(te, split_indices(100, method="random", test_fraction=0.2, seed=4)[1])


def test_defect_type_split_keeps_types_apart() -> None:
    desc = ["X1"] * 30 + ["V1"] * 25 + ["S1"] * 25 + ["X2"] * 20
    tr, te = split_indices(len(desc), desc, "defect-type", test_fraction=0.2, seed=0)
    d = np.array(desc)
    assert set(d[tr]).isdisjoint(set(d[te]))
    assert len(te) >= 20 and len(tr) > 0 and len(tr) + len(te) == len(desc)
    with pytest.raises(ConfigError, match="at least two defect types"):
        split_indices(10, ["X1"] * 10, "defect-type")
    with pytest.raises(ConfigError, match="unknown split"):
        split_indices(10, None, "kfold")
    with pytest.raises(InputDataError):
        split_indices(1, None, "random")


def test_resolve_targets(dataset: SyntheticDataset) -> None:
    assert resolve_targets(dataset.table, ["homo", "homo"]) == ["homo"]
    with pytest.raises(InputDataError, match="no column"):
        resolve_targets(dataset.table, ["band_gap"])
    table = dataset.table.copy()
    table["fermi_level"] = np.nan
    assert "fermi_level" not in resolve_targets(table, None)


def test_evaluate_held_out_rows(trained, dataset: SyntheticDataset) -> None:  # type: ignore[no-untyped-def]
    rows = held_out_rows(trained.model, dataset)
    assert rows is not None and np.array_equal(rows, trained.test_rows)
    ev = evaluate(trained.model, dataset, rows)
    assert ev.metrics["homo_lumo_gap"]["n"] == len(rows)
    for t, m in ev.metrics.items():
        ref = trained.evaluation.metrics[t]
        assert [m[k] for k in ("n", "mae", "rmse", "r2", "r2_25th", "coverage_90")] == pytest.approx(
            [ref[k] for k in ("n", "mae", "rmse", "r2", "r2_25th", "coverage_90")]
        ), t
        assert 0 <= m["coverage_90"] <= 1 and m["rmse_25th"] <= m["rmse"]
    table = ev.table()
    assert list(table.index) == ["homo_lumo_gap", "formation_energy"] and "r2_25th" in table.columns
    with pytest.raises(InputDataError, match="no structures"):
        evaluate(trained.model, dataset, [])


def test_compare_uses_one_split(dataset: SyntheticDataset) -> None:
    small = dataset.subset(np.arange(0, len(dataset), 2))  # 80 rows keeps the SLICES fit quick
    params = {"iterations": 30, "depth": 4, "learning_rate": 0.2}
    table, results = compare(small, ("sparse", "slices"), ["homo_lumo_gap"], seed=1, params=params, thread_count=1)
    assert set(table["features"]) == {"sparse", "slices"}
    assert set(table["part"]) == {"all"}  # 5-12 defects each: no low-density part to report
    assert np.array_equal(results["sparse"].test_rows, results["slices"].test_rows)
    assert results["slices"].model.featuriser.text_features == ["slices"]
    for name in ("sparse", "slices"):
        m = results[name].evaluation.metrics["homo_lumo_gap"]
        assert np.isfinite([m["mae"], m["rmse"], m["r2"]]).all()


def test_split_none_trains_on_every_row(dataset: SyntheticDataset) -> None:
    from surrogate.training import train

    tr, te = split_indices(7, method="none")
    assert tr.tolist() == list(range(7)) and te.size == 0
    small = dataset.subset(np.arange(40))
    res = train(small, "sparse", ["homo_lumo_gap"], split="none", params={"iterations": 20}, thread_count=1)
    assert res.train_rows.size == 40 and res.test_rows.size == 0
    assert res.model.meta["test_metrics"] is None and res.model.meta["split"]["test_ids"] == []
    assert "in-sample" in res.evaluation.scope and res.model.meta["train_metrics"]["homo_lumo_gap"]["n"] == 40
    assert held_out_rows(res.model, small) is None  # `hts surrogate eval` then evaluates every row


def test_low_density_rows_count_defects(host4) -> None:  # type: ignore[no-untyped-def]
    host = host4
    from types import SimpleNamespace

    from hts.defects import ConfigBatch, DefectConfiguration
    from surrogate.training import low_density_rows

    cfgs = [DefectConfiguration.from_mapping(host, dict.fromkeys(range(k), "VAC")) for k in (1, 5, 3, 2, 4)]
    ds = SimpleNamespace(batch=lambda: ConfigBatch.from_configs(cfgs))
    assert low_density_rows(ds, np.arange(5)).tolist() == [0, 2, 3]  # type: ignore[arg-type]
    assert low_density_rows(ds, np.array([1, 3, 4])).tolist() == [3]  # type: ignore[arg-type]
    assert low_density_rows(ds, np.arange(5), max_defects=4).tolist() == [0, 2, 3, 4]  # type: ignore[arg-type]
