"""The study's metrics, by hand on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from hts.errors import InputDataError
from surrogate.metrics import best_quantile_subset, r2_score, regression_metrics


def test_basic_metrics() -> None:
    t = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.0, 2.5, 2.0, 4.0])
    m = regression_metrics(t, p)
    assert m["mae"] == pytest.approx(0.375)
    assert m["rmse"] == pytest.approx(np.sqrt((0.25 + 1.0) / 4))
    assert m["r2"] == pytest.approx(1 - 1.25 / 5.0)


def test_r2_25th_uses_best_quarter_and_its_own_mean() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0])
    err = np.array([0.1, -0.1, 0.05, -0.05, 2.0, -3.0, 1.0, 4.0])
    p = t - err
    sub = best_quantile_subset(t, p, 0.25)
    # squared errors .01 .01 .0025 .0025 4 9 1 16: the 25 % quantile is 0.0081875, so two rows.
    assert sub.tolist() == [False, False, True, True, False, False, False, False]
    m = regression_metrics(t, p)
    ts, ps = t[sub], p[sub]
    want_r2 = 1 - ((ts - ps) ** 2).sum() / ((ts - ts.mean()) ** 2).sum()
    assert m["n_25th"] == 2
    assert m["r2_25th"] == pytest.approx(want_r2)
    assert m["rmse_25th"] == pytest.approx(0.05)
    # With the full-data mean the value would be different (and wrong for the study's definition).
    assert m["r2_25th"] != pytest.approx(1 - ((ts - ps) ** 2).sum() / ((ts - t.mean()) ** 2).sum())


def test_coverage_of_intervals() -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=20000)
    p = np.zeros_like(t)
    m = regression_metrics(t, p, std=np.ones_like(t))
    assert m["coverage_90"] == pytest.approx(0.90, abs=0.01)
    assert m["coverage"]["0.5"] == pytest.approx(0.5, abs=0.015)
    over = regression_metrics(t, p, std=np.full_like(t, 0.5))
    assert over["coverage_90"] < 0.7


def test_metric_errors() -> None:
    with pytest.raises(InputDataError, match="empty"):
        regression_metrics(np.array([]), np.array([]))
    with pytest.raises(InputDataError, match="finite"):
        regression_metrics(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(InputDataError):
        regression_metrics(np.array([1.0, 2.0]), np.array([1.0]))
    assert np.isnan(r2_score(np.ones(3), np.arange(3.0)))
