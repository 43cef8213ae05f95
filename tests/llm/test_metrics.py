"""Generation metrics and the study's R2_25th / RMSE_25th."""

from __future__ import annotations

import numpy as np
import pytest

from llm.generation import GenerationResult
from llm.metrics import canonical_hash_set, conditioning_metrics, evaluate, r2_rmse, r2_rmse_25th
from tests.llm.conftest import configs


def test_r2_rmse():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert r2_rmse(y, y) == (1.0, 0.0)
    r2, rmse = r2_rmse(y, y + 1)
    assert rmse == pytest.approx(1.0) and r2 == pytest.approx(1 - 4 / 5)
    assert np.isnan(r2_rmse(np.array([]), np.array([]))[0])


def test_r2_rmse_25th_keeps_the_best_quarter():
    y = np.arange(8, dtype=float)
    p = y + np.array([0, 0.1, 5, 5, 5, 5, 5, 5])
    r2, rmse = r2_rmse_25th(y, p)
    assert rmse == pytest.approx(np.sqrt(0.01 / 2))
    assert r2 == pytest.approx(1 - 0.01 / 0.5)


def test_evaluate(host):
    cfgs = configs(host, 9, 6)
    moved = cfgs[1].transformed(5)  # symmetry-equivalent to cfgs[1]: not unique
    results = [GenerationResult(0, "", c) for c in [*cfgs[1:4], moved]] + [GenerationResult(0, "x", None, "bad")]
    targets = [{"homo_lumo_gap": 1.0 + i} for i in range(len(results))]
    train = canonical_hash_set([cfgs[1]])

    def predict(cs):
        return {"homo_lumo_gap": np.array([1.0 + i for i in range(len(cs))]), "homo": np.zeros(len(cs))}

    m = evaluate(results, targets, train_hashes=train, predict=predict)
    assert m["validity"] == pytest.approx(0.8)
    assert m["unique"] == 3 and m["uniqueness"] == pytest.approx(0.75)
    assert m["novelty"] == pytest.approx(2 / 3)
    cond = m["conditioning"]
    assert set(cond) == {"homo_lumo_gap"} and cond["homo_lumo_gap"]["rmse"] == pytest.approx(0.0)
    assert conditioning_metrics([None], [{"homo": 1.0}], predict) == {}


def test_conditioning_ignores_predictions_no_prompt_can_request(host):
    """A surrogate predicting more targets (formation_energy_per_site...) than prompts carry."""
    cfgs = configs(host, 3, 4)
    targets = [{"gap": 1.0}, {"gap": 1.2}, {"gap": 1.4}, {"gap": 1.6}]

    def predict(cs):
        n = np.array([c.n_defects for c in cs], dtype=float)
        return {"homo_lumo_gap": 1.0 + 0.2 * np.arange(len(cs)), "formation_energy_per_site": n, "normalized_homo": n}

    out = conditioning_metrics(cfgs, targets, predict)
    assert list(out) == ["homo_lumo_gap"] and out["homo_lumo_gap"]["r2"] == pytest.approx(1.0)


def test_response_curve_per_requested_value(host):
    cfgs = configs(host, 3, 4)
    targets = [{"homo_lumo_gap": 0.5}, {"homo_lumo_gap": 0.5}, {"homo_lumo_gap": 1.5}, {"homo_lumo_gap": 1.5}]

    def predict(cs):
        return {"homo_lumo_gap": np.array([0.4, 0.6, 1.0, 1.2])}

    curve = conditioning_metrics(cfgs, targets, predict)["homo_lumo_gap"]["by_request"]
    assert [c["requested"] for c in curve] == [0.5, 1.5] and [c["n"] for c in curve] == [2, 2]
    assert [c["mean"] for c in curve] == pytest.approx([0.5, 1.1])
    assert [c["std"] for c in curve] == pytest.approx([0.1, 0.1])
