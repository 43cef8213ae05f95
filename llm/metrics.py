"""Generation metrics: validity, uniqueness, novelty and conditioning accuracy.

- validity: fraction of samples that parse into an allowed configuration;
- uniqueness: distinct canonical configurations (symmetry-equivalent = same) among valid samples;
- novelty: fraction of the distinct valid configurations not in the training set (canonical hashes);
- conditioning: for each requested property, surrogate-predicted vs requested value over valid
  samples, as R2 and RMSE, and the study's R2_25th / RMSE_25th (the 25 % of samples with the lowest
  squared error; R2 against the mean requested value of that subset).

The surrogate is a callable ``predict(configs) -> {property: array}`` (see :mod:`surrogate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hts.defects import ConfigBatch, DefectConfiguration
from llm.properties import PROPERTIES, canonical_property

PredictFn = Callable[[Sequence[DefectConfiguration]], Mapping[str, np.ndarray]]


def r2_rmse(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """Coefficient of determination and root-mean-square error (NaN for fewer than 2 points)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if y.size == 0:
        return float("nan"), float("nan")
    sse = float(np.sum((y - p) ** 2))
    rmse = float(np.sqrt(sse / y.size))
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - sse / sst if y.size >= 2 and sst > 0 else float("nan")
    return r2, rmse


def r2_rmse_25th(y_true: np.ndarray, y_pred: np.ndarray, quantile: float = 0.25) -> tuple[float, float]:
    """The study's R2_25th and RMSE_25th: R2 and RMSE over samples whose squared error is at most the
    ``quantile`` of the squared errors."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if y.size == 0:
        return float("nan"), float("nan")
    se = (y - p) ** 2
    keep = se <= np.quantile(se, quantile)
    return r2_rmse(y[keep], p[keep])


def canonical_hash_set(configs: Iterable[DefectConfiguration]) -> set[int]:
    """Canonical hashes of configurations (one host per call)."""
    from hts.canonical import canonical_hashes

    cfgs = list(configs)
    if not cfgs:
        return set()
    return {int(h) for h in canonical_hashes(ConfigBatch.from_configs(cfgs))}


def generation_metrics(
    configs: Sequence[DefectConfiguration | None],
    train_hashes: set[int] | None = None,
) -> dict[str, float]:
    """Validity, uniqueness and novelty of samples (``None`` = a sample that did not parse)."""
    from hts.canonical import canonical_hashes

    n = len(configs)
    valid = [c for c in configs if c is not None]
    out: dict[str, float] = {
        "samples": float(n),
        "valid": float(len(valid)),
        "validity": len(valid) / n if n else float("nan"),
    }
    if not valid:
        return {**out, "unique": 0.0, "uniqueness": float("nan"), "novelty": float("nan")}
    hashes = [int(h) for h in canonical_hashes(ConfigBatch.from_configs(valid))]
    distinct = set(hashes)
    out["unique"] = float(len(distinct))
    out["uniqueness"] = len(distinct) / len(valid)
    if train_hashes is not None:
        out["novelty"] = len(distinct - train_hashes) / len(distinct)
    out["mean_defects"] = float(np.mean([c.n_defects for c in valid]))
    return out


def conditioning_metrics(
    configs: Sequence[DefectConfiguration | None],
    targets: Sequence[Mapping[str, float]],
    predict: PredictFn,
) -> dict[str, dict[str, Any]]:
    """Per requested property: R2, RMSE, R2_25th, RMSE_25th of predicted vs requested, valid samples only,
    and ``by_request``: the mean and spread of the predictions for each distinct requested value."""
    if len(configs) != len(targets):
        raise ValueError("configs and targets differ in length")
    rows = [i for i, c in enumerate(configs) if c is not None]
    if not rows:
        return {}
    preds = predict([configs[i] for i in rows])  # type: ignore[misc]
    # The surrogate may predict more than a prompt can request (formation_energy_per_site, ...).
    known = {alias for spec in PROPERTIES.values() for alias in (spec.name, *spec.aliases)}
    preds = {canonical_property(k): np.asarray(v, dtype=float) for k, v in preds.items() if k in known}
    out: dict[str, dict[str, Any]] = {}
    props = sorted({canonical_property(k) for i in rows for k in targets[i]})
    for prop in props:
        if prop not in preds:
            continue
        pairs = [
            (float(targets[i][k]), preds[prop][j])
            for j, i in enumerate(rows)
            for k in targets[i]
            if canonical_property(k) == prop
        ]
        y = np.array([a for a, _ in pairs])
        p = np.array([b for _, b in pairs])
        ok = np.isfinite(p)
        y, p = y[ok], p[ok]
        r2, rmse = r2_rmse(y, p)
        r2q, rmseq = r2_rmse_25th(y, p)
        out[prop] = {"n": float(y.size), "r2": r2, "rmse": rmse, "r2_25th": r2q, "rmse_25th": rmseq}
        # the response curve: what the samples of each requested value came out as
        out[prop]["by_request"] = [
            {
                "requested": float(v),
                "n": int((y == v).sum()),
                "mean": float(p[y == v].mean()),
                "std": float(p[y == v].std()),
            }
            for v in np.unique(y)
        ]
    return out


def evaluate(
    results: Sequence[Any],
    targets: Sequence[Mapping[str, float]],
    *,
    train_hashes: set[int] | None = None,
    predict: PredictFn | None = None,
) -> dict[str, Any]:
    """All metrics for generation results (objects with ``.config``) and their requested targets."""
    configs = [r.config for r in results]
    out: dict[str, Any] = generation_metrics(configs, train_hashes)
    if predict is not None:
        out["conditioning"] = conditioning_metrics(configs, targets, predict)
    return out
