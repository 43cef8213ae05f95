"""Training and evaluation on a 2DMD-layout dataset: splits, per-target metrics, featuriser comparison."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hts.defects import ConfigBatch
from hts.errors import ConfigError, InputDataError
from surrogate import DEFAULT_TARGETS
from surrogate.features import make_featuriser
from surrogate.metrics import regression_metrics
from surrogate.model import Prediction, SurrogateModel

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from hts.hosts import Host
    from hts.twodmd import DefectDataset

log = logging.getLogger(__name__)

SPLITS = ("random", "defect-type", "none")


class Dataset(Protocol):
    """What training needs of a dataset (:class:`hts.twodmd.DefectDataset` has it)."""

    host: Host
    ids: list[str]
    descriptions: list[str]
    table: pd.DataFrame

    def __len__(self) -> int: ...

    def batch(self) -> ConfigBatch: ...

    def subset(self, rows: Sequence[int] | np.ndarray) -> Any: ...


def load_dataset(path: str | os.PathLike[str], host: str | None = None) -> DefectDataset:
    """Read a 2DMD-layout folder (the real 2DMD data or the bundled xTB data) for training."""
    from hts.twodmd import read_2dmd

    ds = read_2dmd(path, host=host)
    if len(ds) == 0:
        raise InputDataError(f"{path}: no usable structures ({len(ds.skipped)} rows skipped; see the log)")
    return ds


def split_indices(
    n: int,
    descriptions: Sequence[str] | None = None,
    method: str = "random",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row positions, sorted.

    ``random``: a seeded permutation. ``defect-type``: whole groups of equal ``descriptions`` (2DMD's
    defect type, such as ``V6``) go to the test set, drawn in a seeded order until it holds at least
    ``test_fraction`` of the rows, so no defect type is in both sets. ``none``: every row trains
    (for a final model once the split's figures are known); the test set is empty.
    """
    if method == "none":
        if n < 1:
            raise InputDataError("need at least 1 labelled structure to train on, got 0")
        return np.arange(n), np.zeros(0, dtype=np.intp)
    if n < 2:
        raise InputDataError(f"need at least 2 labelled structures to split into train and test, got {n}")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test fraction must be in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    if method == "random":
        perm = rng.permutation(n)
        n_test = min(n - 1, max(1, round(test_fraction * n)))
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])
    if method == "defect-type":
        if descriptions is None or len(descriptions) != n:
            raise InputDataError("a defect-type split needs one description per structure")
        desc = np.asarray([str(d) for d in descriptions])
        groups = np.unique(desc)
        if groups.size < 2:
            raise ConfigError(
                f"a defect-type split needs at least two defect types; the data have only {groups[0]!r} "
                "(use --split random)"
            )
        test = np.zeros(n, dtype=bool)
        for g in rng.permutation(groups):
            if test.sum() >= test_fraction * n:
                break
            cand = test | (desc == g)
            if cand.all():
                continue
            test = cand
        if not test.any():  # every single group was too large: take the smallest one
            sizes = {g: int((desc == g).sum()) for g in groups}
            test = desc == min(sizes, key=lambda g: sizes[g])
        log.info(
            "defect-type split: %d test types (%s), %.1f %% of rows",
            len(np.unique(desc[test])),
            ", ".join(sorted(np.unique(desc[test]))[:8]),
            100.0 * test.mean(),
        )
        return np.flatnonzero(~test), np.flatnonzero(test)
    raise ConfigError(f"unknown split {method!r}; choose one of {', '.join(SPLITS)}")


def resolve_targets(table: pd.DataFrame, targets: Sequence[str] | None) -> list[str]:
    """The requested targets (all must be columns), or the default ones the table has labels for."""
    if targets:
        missing = [t for t in targets if t not in table.columns]
        if missing:
            raise InputDataError(
                f"dataset has no column(s) {', '.join(missing)}; columns: {', '.join(map(str, table.columns))}"
            )
        return list(dict.fromkeys(targets))
    out = [t for t in DEFAULT_TARGETS if t in table.columns and np.isfinite(table[t].to_numpy(dtype=float)).any()]
    if not out:
        raise InputDataError(
            f"dataset has no labels for any of {', '.join(DEFAULT_TARGETS)}; label it first (or check the columns)"
        )
    skipped = [t for t in DEFAULT_TARGETS if t not in out]
    if skipped:
        log.warning("no labels for %s in this dataset; training the other targets", ", ".join(skipped))
    return out


@dataclass
class Evaluation:
    """Per-target metrics of a model on some rows, and the predictions behind them."""

    metrics: dict[str, dict[str, Any]]
    ids: list[str]
    y_true: np.ndarray  # (N, T), NaN where unlabelled
    prediction: Prediction
    scope: str = "all rows"

    def table(self) -> pd.DataFrame:
        """One row per target: n, mae, rmse, r2, r2_25th, rmse_25th, coverage_90, mean_std."""
        import pandas as pd

        cols = ["n", "mae", "rmse", "r2", "r2_25th", "rmse_25th", "coverage_90", "mean_std"]
        return pd.DataFrame([{"target": t, **{c: m.get(c) for c in cols}} for t, m in self.metrics.items()]).set_index(
            "target"
        )


@dataclass
class TrainResult:
    """A fitted model, its split and its held-out evaluation."""

    model: SurrogateModel
    train_rows: np.ndarray
    test_rows: np.ndarray
    evaluation: Evaluation
    fit_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def evaluate(
    model: SurrogateModel,
    dataset: Dataset,
    rows: Sequence[int] | np.ndarray | None = None,
    *,
    uncertainty: str = "total",
    thread_count: int = 1,
    scope: str | None = None,
) -> Evaluation:
    """Predict ``rows`` (default all) of ``dataset`` and compute per-target metrics on labelled rows."""
    model.check_host(dataset.host)
    rows = np.arange(len(dataset)) if rows is None else np.asarray(rows, dtype=np.intp)
    if rows.size == 0:
        raise InputDataError("no structures to evaluate (empty dataset or empty held-out set)")
    missing = [t for t in model.targets if t not in dataset.table.columns]
    if missing:
        raise InputDataError(f"dataset has no labels for {', '.join(missing)}, which the model predicts")
    batch = dataset.batch()
    sub = batch.take(rows)
    pred = model.predict(sub, uncertainty=uncertainty, thread_count=thread_count)
    y = dataset.table[model.targets].to_numpy(dtype=float)[rows]
    metrics: dict[str, dict[str, Any]] = {}
    for j, t in enumerate(model.targets):
        ok = np.isfinite(y[:, j])
        if not ok.any():
            log.warning("target %s: no labelled rows to evaluate", t)
            continue
        metrics[t] = regression_metrics(y[ok, j], pred.mean[ok, j], pred.std[ok, j])
    return Evaluation(metrics, [dataset.ids[i] for i in rows], y, pred, scope or f"{rows.size} rows")


def held_out_rows(model: SurrogateModel, dataset: Dataset) -> np.ndarray | None:
    """Rows of ``dataset`` in the model's held-out set, or ``None`` if the model has no record of one."""
    test_ids = model.meta.get("split", {}).get("test_ids")
    if not test_ids:
        return None
    wanted = set(test_ids)
    rows = np.array([i for i, sid in enumerate(dataset.ids) if sid in wanted], dtype=np.intp)
    return rows if rows.size else None


def train(
    dataset: Dataset,
    features: str = "sparse",
    targets: Sequence[str] | None = None,
    *,
    split: str = "random",
    test_fraction: float = 0.2,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    featuriser_settings: Mapping[str, Any] | None = None,
    thread_count: int = 2,
    calibrate: bool = True,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainResult:
    """Split, fit a surrogate on the training rows and evaluate it on the held-out rows.

    ``rows`` gives an explicit (train, test) split (used by :func:`compare` to share one split).
    """
    if len(dataset) == 0:
        raise InputDataError("cannot train on an empty dataset (0 structures)")
    tlist = resolve_targets(dataset.table, targets)
    featuriser = make_featuriser(features, dict(featuriser_settings or {}))
    train_rows, test_rows = (
        rows if rows is not None else split_indices(len(dataset), dataset.descriptions, split, test_fraction, seed)
    )
    batch = dataset.batch()
    train_batch = batch.take(train_rows)
    labels = dataset.table[tlist].iloc[train_rows].reset_index(drop=True)
    meta = {
        "split": {
            "method": split if rows is None else "given",
            "test_fraction": test_fraction,
            "seed": seed,
            "n_train": int(train_rows.size),
            "n_test": int(test_rows.size),
            "test_ids": [dataset.ids[i] for i in test_rows],
        },
        "dataset": str(getattr(dataset, "path", None)),
    }
    t0 = time.perf_counter()
    model = SurrogateModel.fit(
        featuriser,
        train_batch,
        labels,
        tlist,
        params=params,
        seed=seed,
        thread_count=thread_count,
        calibrate=calibrate,
        meta=meta,
    )
    fit_seconds = time.perf_counter() - t0
    if test_rows.size:
        ev = evaluate(model, dataset, test_rows, scope=f"held-out {split} split ({test_rows.size} rows)")
        model.meta["test_metrics"] = ev.metrics
    else:  # --split none: only in-sample figures exist; say so wherever they are shown
        scope = f"training rows, in-sample ({train_rows.size}; no held-out split)"
        ev = evaluate(model, dataset, train_rows, scope=scope)
        model.meta["test_metrics"] = None
        model.meta["train_metrics"] = ev.metrics
    model.meta["fit_seconds"] = fit_seconds
    return TrainResult(model, train_rows, test_rows, ev, fit_seconds)


LOW_DENSITY_MAX_DEFECTS = 3
"""2DMD's low-density structures hold 1-3 defects in the 8x8 supercell (its high-density ones 5 or more)."""


def low_density_rows(dataset: Dataset, rows: np.ndarray, max_defects: int = LOW_DENSITY_MAX_DEFECTS) -> np.ndarray:
    """The rows among ``rows`` whose structures hold at most ``max_defects`` defects."""
    rows = np.asarray(rows, dtype=np.intp)
    counts = dataset.batch().mask.sum(axis=1)
    return rows[counts[rows] <= max_defects]


def compare(
    dataset: Dataset,
    features: Sequence[str] = ("sparse", "slices"),
    targets: Sequence[str] | None = None,
    *,
    split: str = "random",
    test_fraction: float = 0.2,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    thread_count: int = 2,
    calibrate: bool = True,
) -> tuple[pd.DataFrame, dict[str, TrainResult]]:
    """Train every featuriser on the same split; a long table (feature, target, metrics...) and results."""
    import pandas as pd

    train_rows, test_rows = split_indices(len(dataset), dataset.descriptions, split, test_fraction, seed)
    results: dict[str, TrainResult] = {}
    frames = []
    for name in features:
        res = train(
            dataset,
            name,
            targets,
            split=split,
            test_fraction=test_fraction,
            seed=seed,
            params=params,
            thread_count=thread_count,
            calibrate=calibrate,
            rows=(train_rows, test_rows),
        )
        res.model.meta["split"]["method"] = split
        results[name] = res
        tab = res.evaluation.table().reset_index()
        tab.insert(0, "features", name)
        tab.insert(1, "part", "all")
        tab["fit_s"] = res.fit_seconds
        frames.append(tab)
        low = low_density_rows(dataset, test_rows)
        if low.size:  # the part 2DMD's headline figures are quoted on
            sub = evaluate(res.model, dataset, low, thread_count=thread_count).table().reset_index()
            sub.insert(0, "features", name)
            sub.insert(1, "part", f"low-density (<= {LOW_DENSITY_MAX_DEFECTS} defects)")
            sub["fit_s"] = res.fit_seconds
            frames.append(sub)
    return pd.concat(frames, ignore_index=True), results
