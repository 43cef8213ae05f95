"""Regression metrics of the study, and calibration of predictive intervals.

``r2_25th`` / ``rmse_25th`` follow the original study: take the candidates whose squared error is at
most the 25 % quantile of the squared errors (the best-predicted quarter), and compute R2 (with the
mean of that subset) and RMSE on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hts.errors import InputDataError

CALIBRATION_LEVELS: tuple[float, ...] = (0.5, 0.68, 0.9, 0.95)


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise InputDataError(f"{t.size} true values but {p.size} predictions")
    if t.size == 0:
        raise InputDataError("no values to score (empty evaluation set)")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise InputDataError("true values and predictions must be finite; drop unlabelled rows first")
    return t, p


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination; NaN when the true values are constant."""
    t, p = _check(y_true, y_pred)
    ss_tot = float(((t - t.mean()) ** 2).sum())
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(((t - p) ** 2).sum()) / ss_tot


def best_quantile_subset(y_true: np.ndarray, y_pred: np.ndarray, q: float = 0.25) -> np.ndarray:
    """Boolean mask of the rows whose squared error is at most its ``q`` quantile."""
    t, p = _check(y_true, y_pred)
    se = (t - p) ** 2
    return se <= np.quantile(se, q)


def regression_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    std: np.ndarray | None = None,
    levels: Sequence[float] = CALIBRATION_LEVELS,
) -> dict[str, Any]:
    """MAE, RMSE, R2, the study's R2_25th / RMSE_25th and, with ``std``, interval coverage.

    ``coverage`` maps each level to the fraction of true values inside ``mean +- z * std``
    (a calibrated model gives about the level itself); ``coverage_90`` repeats the 90 % one.
    """
    from statistics import NormalDist

    t, p = _check(y_true, y_pred)
    err = t - p
    out: dict[str, Any] = {
        "n": int(t.size),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": r2_score(t, p),
    }
    sub = best_quantile_subset(t, p, 0.25)
    out["n_25th"] = int(sub.sum())
    out["r2_25th"] = r2_score(t[sub], p[sub])
    out["rmse_25th"] = float(np.sqrt((err[sub] ** 2).mean()))
    if std is not None:
        s = np.asarray(std, dtype=float).ravel()
        if s.shape != t.shape:
            raise InputDataError(f"{s.size} standard deviations for {t.size} predictions")
        cover = {}
        for level in levels:
            z = NormalDist().inv_cdf(0.5 + level / 2)
            cover[f"{level:g}"] = float((np.abs(err) <= z * s).mean())
        out["coverage"] = cover
        z90 = NormalDist().inv_cdf(0.95)
        out["coverage_90"] = float((np.abs(err) <= z90 * s).mean())
        out["mean_std"] = float(s.mean())
        # Spearman-like check that larger predicted std goes with larger error.
        if t.size > 2 and np.ptp(s) > 0 and np.ptp(np.abs(err)) > 0:
            rs = np.argsort(np.argsort(s))
            re = np.argsort(np.argsort(np.abs(err)))
            out["std_error_rank_corr"] = float(np.corrcoef(rs, re)[0, 1])
        else:
            out["std_error_rank_corr"] = float("nan")
    return out
