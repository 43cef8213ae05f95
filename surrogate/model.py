"""CatBoost surrogate: one regressor per target, predictive uncertainty, save/load as a directory.

Loss and uncertainty. The default fits every target with ``loss_function="RMSE"`` and
``posterior_sampling=True`` (stochastic gradient Langevin boosting):

- the mean is the full model's prediction;
- ``posterior_sampling`` makes the truncated sub-ensembles that
  :meth:`CatBoostRegressor.virtual_ensembles_predict` evaluates samples of the model posterior, so
  their spread is the *knowledge* uncertainty, which grows away from the training data. That is what
  the campaign needs for candidates the generator invents far from the labelled set.

``loss_function="RMSEWithUncertainty"`` also predicts a per-row *data* variance, but its mean is
much worse on these data: on 1,051 xTB labels (random split, three seeds) the band-gap MAE was
0.040-0.044 eV against 0.025-0.029 eV with RMSE, and on the low-density part 0.030-0.040 against
0.012-0.018 eV (substitution-only cells, rare in the data, are pulled towards the vacancy-dominated
majority; BENCHMARKS.md, "Surrogate accuracy"). It remains selectable through ``params``.

``uncertainty="total"`` (default) runs one ``virtual_ensembles_predict(prediction_type=
"TotalUncertainty")`` per target, which returns the ensemble mean, the knowledge variance and (with
``RMSEWithUncertainty``) the mean data variance at about the cost of one plain prediction
(measured: 1.0-1.3x); the predictive standard deviation is ``sqrt(knowledge + data)``.
``uncertainty="data"`` is the fast path, one plain prediction (full-model mean): its std is the data
variance of ``RMSEWithUncertainty``, or, for a mean-only loss, one constant per target, the
calibrated width of the residuals (a homoscedastic split-conformal interval; such a model needs
calibration for this mode). A separate model per target (rather than ``MultiRMSE``) keeps the
per-target uncertainty, lets targets have different labelled rows, and loses nothing in speed.
Intervals assume a Gaussian predictive distribution (``mean +- z * std``). Raw CatBoost variances
are over-confident on small training sets (measured: the 90 % interval covered 45-75 % of held-out
values with ``RMSEWithUncertainty``, 6-12 % with the knowledge variance alone) and the knowledge
spread hardly varies between configurations whose errors differ five-fold, so
:meth:`SurrogateModel.fit` calibrates by default from out-of-fold residuals (:data:`CALIBRATION_FOLDS`
extra fits per target): each target gets an :class:`~surrogate.error_model.ErrorModel`, a
per-configuration std learned from the residuals and calibrated to cover 90 %, which is the
prediction's ``std`` in either mode; the ensemble and variance-head parts (``knowledge_std``,
``data_std``) stay as diagnostics, each scaled by its own split-conformal factor (stored in
``model.json`` under ``calibration``). The coverage of the 90 % interval on held-out data is reported
by ``hts surrogate eval``.

A model directory holds ``model.json`` (featuriser name and settings, host, targets, feature names,
CatBoost parameters, calibration, package versions, training record), ``<target>.cbm`` per target
and, for a calibrated model, ``<target>.error.cbm`` (its error model).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.defects import ConfigBatch
from hts.errors import ConfigError, InputDataError, ModelError
from surrogate.baseline import EXTENSIVE_TARGETS, LinearBaseline, rule_counts
from surrogate.error_model import ErrorModel, descriptors
from surrogate.features import Featuriser, make_featuriser

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from catboost import CatBoostRegressor

    from hts.hosts import Host

log = logging.getLogger(__name__)

FORMAT = "hts-surrogate/1"
MODEL_JSON = "model.json"
UNCERTAINTY_MODES = ("total", "data")
DEFAULT_PARAMS: dict[str, Any] = {
    "loss_function": "RMSE",
    "posterior_sampling": True,
    "iterations": 1000,
    "learning_rate": 0.05,
    "depth": 6,
}
VIRTUAL_ENSEMBLES = 10
MIN_LABELLED = 10
MIN_CALIBRATION = 50
CALIBRATION_FOLDS = 4
ERROR_MODEL_SUFFIX = ".error.cbm"
CALIBRATION_LEVEL = 0.9
PREDICT_CHUNK = 65536


def _z(level: float) -> float:
    """Two-sided standard-normal quantile: ``mean +- z * std`` covers ``level``."""
    from statistics import NormalDist

    if not 0 < level < 1:
        raise ConfigError(f"interval level must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2)


@dataclass
class Prediction:
    """Predictions for N configurations and T targets: ``mean`` and ``std`` are (N, T) arrays.

    ``std`` is the predictive standard deviation: the target's error model's where it has one, else
    ``sqrt(data_std**2 + knowledge_std**2)``; ``data_std`` and ``knowledge_std`` are CatBoost's own
    parts (``knowledge_std`` is NaN with ``uncertainty="data"``).
    """

    targets: list[str]
    mean: np.ndarray
    std: np.ndarray
    data_std: np.ndarray
    knowledge_std: np.ndarray

    def __len__(self) -> int:
        return int(self.mean.shape[0])

    def column(self, target: str) -> int:
        try:
            return self.targets.index(target)
        except ValueError:
            raise ModelError(f"the model does not predict {target!r}; it predicts {', '.join(self.targets)}") from None

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of the central ``level`` predictive interval, each (N, T)."""
        z = _z(level)
        return self.mean - z * self.std, self.mean + z * self.std

    def to_frame(self, index: Sequence[Any] | None = None) -> pd.DataFrame:
        """Columns ``<target>`` and ``<target>_std`` (total), in target order."""
        import pandas as pd

        cols: dict[str, np.ndarray] = {}
        for j, t in enumerate(self.targets):
            cols[t] = self.mean[:, j]
            cols[f"{t}_std"] = self.std[:, j]
        return pd.DataFrame(cols, index=None if index is None else list(index))

    def take(self, rows: np.ndarray | Sequence[int]) -> Prediction:
        r = np.asarray(rows)
        return Prediction(self.targets, self.mean[r], self.std[r], self.data_std[r], self.knowledge_std[r])

    @classmethod
    def concat(cls, parts: Sequence[Prediction]) -> Prediction:
        if not parts:
            raise InputDataError("no predictions to concatenate")
        return cls(
            list(parts[0].targets),
            np.concatenate([p.mean for p in parts]),
            np.concatenate([p.std for p in parts]),
            np.concatenate([p.data_std for p in parts]),
            np.concatenate([p.knowledge_std for p in parts]),
        )


def package_versions() -> dict[str, str]:
    """Versions that matter for reading a model back (recorded in ``model.json``)."""
    from hts.provenance import package_versions as installed

    return {"python": sys.version.split()[0], **installed(("hts2d", "catboost", "numpy", "pandas"))}


def _raw_predict(
    model: CatBoostRegressor, data: Any, uncertainty: str, thread_count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, data variance, knowledge variance (NaN for ``data``)) of one regressor, uncalibrated.

    A mean-only loss (``RMSE``) has no data variance: 0 in ``total`` mode, and 1 in ``data`` mode,
    where the calibration's factor then is the residuals' width itself.
    """
    if uncertainty == "total":
        out = np.asarray(
            model.virtual_ensembles_predict(
                data,
                prediction_type="TotalUncertainty",
                virtual_ensembles_count=VIRTUAL_ENSEMBLES,
                thread_count=thread_count,
            )
        )
        if out.shape[1] == 2:  # mean-only loss: (mean, knowledge variance)
            return out[:, 0], np.zeros(out.shape[0]), out[:, 1]
        return out[:, 0], out[:, 2], out[:, 1]
    out = np.asarray(model.predict(data, thread_count=thread_count))
    if out.ndim == 1:
        return out, np.ones(out.shape[0]), np.full(out.shape[0], np.nan)
    return out[:, 0], out[:, 1], np.full(out.shape[0], np.nan)


def has_variance_head(params: Mapping[str, Any]) -> bool:
    """Whether the CatBoost loss predicts a data variance as well as the mean."""
    return str(params.get("loss_function", "")).startswith("RMSEWithUncertainty")


def _labels_matrix(labels: Mapping[str, Any] | pd.DataFrame, targets: Sequence[str], n: int) -> np.ndarray:
    out = np.empty((n, len(targets)))
    for j, t in enumerate(targets):
        if t not in labels:
            have = ", ".join(map(str, getattr(labels, "columns", labels))) or "none"
            raise InputDataError(f"no labels for target {t!r} (columns: {have})")
        try:
            col = np.asarray(labels[t], dtype=float)
        except (TypeError, ValueError):
            raise InputDataError(f"labels of target {t!r} are not numbers") from None
        if col.shape != (n,):
            raise InputDataError(f"target {t!r} has {col.size} labels for {n} configurations")
        out[:, j] = col
    return out


def _calibrate(
    fit_one: Any, rows: np.ndarray, yt: np.ndarray, X: Any, batch: ConfigBatch, text: Any, params: Any, seed: int
) -> tuple[dict[str, Any], ErrorModel]:
    """Out-of-fold residuals of one target (of the full model's prediction, by :data:`CALIBRATION_FOLDS`
    fits of ``fit_one`` on the other folds' rows; the ensemble mean differs from it by far less than the
    errors) and what they calibrate: the split-conformal factor of each uncertainty mode's raw
    std (``calibration[target][mode]["std_scale"]``) and the target's :class:`ErrorModel`."""
    from catboost import Pool

    n = rows.size
    fold = np.empty(n, dtype=int)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % CALIBRATION_FOLDS
    mu = np.empty(n)
    raw = {mode: np.empty(n) for mode in UNCERTAINTY_MODES}
    for f in range(CALIBRATION_FOLDS):
        held = np.flatnonzero(fold == f)
        aux, aux_base = fit_one(rows[fold != f], yt[fold != f], f", calibration fold {f + 1}")
        Xc = X.iloc[rows[held]].reset_index(drop=True) if hasattr(X, "iloc") else X[rows[held]]
        data_c: Any = Pool(Xc, text_features=text) if text else Xc
        offset = aux_base.predict(batch.take(rows[held])) if aux_base is not None else 0.0
        for mode in UNCERTAINTY_MODES:
            m, dv, kv = _raw_predict(aux, data_c, mode, 1)
            if mode == "data":  # the full model's prediction: the residuals are of it in both modes
                mu[held] = m + offset
            raw[mode][held] = np.sqrt(np.maximum(dv, 0) + np.nan_to_num(np.maximum(kv, 0)))
    residual = np.abs(yt - mu)
    cal: dict[str, Any] = {"n_cal": n, "folds": CALIBRATION_FOLDS}
    level = min(1.0, np.ceil((n + 1) * CALIBRATION_LEVEL) / n)
    for mode in UNCERTAINTY_MODES:
        ratio = residual / np.maximum(raw[mode], 1e-12)
        q = float(np.quantile(ratio, level, method="higher"))
        # A relative factor on a predicted std stays within [0.05, 100]; for a mean-only loss in
        # "data" mode the "std" is 1 and the factor is the residuals' width itself.
        lo_hi = (1e-9, 1e9) if (mode == "data" and not has_variance_head(params)) else (0.05, 100.0)
        cal[mode] = {
            "std_scale": float(np.clip(q / _z(CALIBRATION_LEVEL), *lo_hi)),
            "raw_coverage_90": float((ratio <= _z(0.9)).mean()),
        }
    error_model = ErrorModel.fit(descriptors(batch.take(rows)), residual, seed=seed)
    cal["error_model"] = error_model.to_json()
    return cal, error_model


class SurrogateModel:
    """Per-target CatBoost regressors behind one featuriser, for one host."""

    def __init__(
        self,
        featuriser: Featuriser,
        host: Host,
        targets: Sequence[str],
        models: Mapping[str, CatBoostRegressor],
        params: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        calibration: Mapping[str, Any] | None = None,
        baselines: Mapping[str, LinearBaseline] | None = None,
        error_models: Mapping[str, ErrorModel] | None = None,
    ) -> None:
        self.featuriser = featuriser
        self.host = host
        self.targets = list(targets)
        self.models = dict(models)
        self.params = dict(params or {})
        self.meta: dict[str, Any] = dict(meta or {})
        self.calibration: dict[str, Any] = dict(calibration or {})
        self.baselines: dict[str, LinearBaseline] = dict(baselines or {})
        self.error_models: dict[str, ErrorModel] = dict(error_models or {})
        self.feature_names = featuriser.feature_names(host)
        missing = [t for t in self.targets if t not in self.models]
        if missing:
            raise ModelError(f"no regressor for target(s) {', '.join(missing)}")

    def __repr__(self) -> str:
        return f"SurrogateModel({self.featuriser.name}, {self.host.key}, targets={self.targets})"

    # -- checks ---------------------------------------------------------------------------------
    def check_host(self, host: Host) -> None:
        """Raise :class:`ModelError` unless ``host`` is the host the model was trained on."""
        if host.key != self.host.key:
            raise ModelError(
                f"the model was trained on {self.host.key} configurations but the data are {host.key}; "
                f"train a surrogate for {host.key} (hts surrogate train --data ...)"
            )

    def check_featuriser(self, name: str, settings: Mapping[str, Any] | None = None) -> None:
        """Raise :class:`ModelError` unless the model uses featuriser ``name`` with ``settings``."""
        if name != self.featuriser.name:
            raise ModelError(
                f"the model uses the {self.featuriser.name!r} featuriser, not {name!r}; "
                "featurise with the model's own featuriser (model.featuriser) or train a new model"
            )
        if settings is not None:
            want = make_featuriser(name, dict(settings)).settings
            if want != self.featuriser.settings:
                raise ModelError(
                    f"featuriser settings {want} differ from the model's {self.featuriser.settings}; "
                    "use the model's featuriser or retrain"
                )

    # -- training -------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        featuriser: Featuriser,
        batch: ConfigBatch,
        labels: Mapping[str, Any] | pd.DataFrame,
        targets: Sequence[str],
        *,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        thread_count: int = 2,
        drop_nan: bool = True,
        min_labelled: int = MIN_LABELLED,
        calibrate: bool = True,
        meta: Mapping[str, Any] | None = None,
        linear_baseline: Mapping[str, str | None] | None = None,
    ) -> SurrogateModel:
        """Fit one regressor per target on the rows where that target is labelled.

        ``labels`` maps a target to N values (a DataFrame's columns or a dict of arrays, in batch
        order). NaN labels are dropped per target when ``drop_nan`` (logged), otherwise an error.
        Raises :class:`InputDataError` for an empty batch, infinite labels, a target with fewer than
        ``min_labelled`` labelled rows, or a constant target.

        With ``calibrate`` (and at least 50 labelled rows) :data:`CALIBRATION_FOLDS` more regressors
        per target give every labelled row an out-of-fold prediction; their residuals calibrate the
        std (:func:`_calibrate`): an :class:`~surrogate.error_model.ErrorModel` per target, whose
        per-configuration std predictions use, and the split-conformal factors of the ensemble and
        constant stds. Training takes about ``1 + CALIBRATION_FOLDS`` times as long; the final
        regressor still sees every labelled row.

        ``linear_baseline`` maps targets to a :class:`~surrogate.baseline.LinearBaseline`
        normalisation (default :data:`~surrogate.baseline.EXTENSIVE_TARGETS`, the energies; ``{}``
        for none): those targets are fitted as a linear function of the defect counts per type plus
        CatBoost on the residual.
        """
        from catboost import CatBoostRegressor, Pool

        if len(batch) == 0:
            raise InputDataError("cannot train a surrogate on an empty dataset (0 configurations)")
        if not targets:
            raise ConfigError("no targets to train; name at least one (for example homo_lumo_gap)")
        y = _labels_matrix(labels, targets, len(batch))
        if np.isinf(y).any():
            bad = [t for j, t in enumerate(targets) if np.isinf(y[:, j]).any()]
            raise InputDataError(f"infinite labels in target(s) {', '.join(bad)}; fix or remove those rows")
        nan_counts = {t: int(np.isnan(y[:, j]).sum()) for j, t in enumerate(targets)}
        if not drop_nan and any(nan_counts.values()):
            which = ", ".join(f"{t} ({c} NaN)" for t, c in nan_counts.items() if c)
            raise InputDataError(f"NaN labels in {which}; label those rows or allow dropping them (drop_nan=True)")
        text = featuriser.text_features or None
        merged = {**DEFAULT_PARAMS, **(params or {})}
        for key in ("thread_count", "random_seed", "verbose", "allow_writing_files"):
            merged.pop(key, None)
        X = featuriser.transform(batch)
        baseline_of = {
            t: per
            for t, per in (EXTENSIVE_TARGETS if linear_baseline is None else linear_baseline).items()
            if t in targets
        }
        baselines: dict[str, LinearBaseline] = {}
        models: dict[str, CatBoostRegressor] = {}
        record: dict[str, Any] = {"n_rows": len(batch), "per_target": {}}
        calibration: dict[str, Any] = {}
        error_models: dict[str, ErrorModel] = {}
        for j, t in enumerate(targets):
            ok = np.isfinite(y[:, j])
            n_ok = int(ok.sum())
            if n_ok < min_labelled:
                raise InputDataError(
                    f"target {t!r} has {n_ok} labelled rows ({nan_counts[t]} NaN of {len(batch)}); "
                    f"at least {min_labelled} are needed: label more structures or drop the target"
                )
            yt = y[ok, j]
            if float(np.ptp(yt)) == 0.0:
                raise InputDataError(f"target {t!r} is constant ({yt[0]!r}) on all {n_ok} labelled rows")
            if nan_counts[t]:
                log.warning("target %s: %d of %d rows have no label and are left out", t, nan_counts[t], len(batch))
            rows = np.flatnonzero(ok)
            linear = t in baseline_of

            def fit_one(
                r: np.ndarray, yy: np.ndarray, what: str, t: str = t, linear: bool = linear
            ) -> tuple[CatBoostRegressor, LinearBaseline | None]:
                Xt = X.iloc[r].reset_index(drop=True) if hasattr(X, "iloc") else X[r]
                base = None
                if linear:
                    sub = batch.take(r)
                    base = LinearBaseline.fit(sub, yy, baseline_of[t])
                    yy = yy - base.predict(sub)
                # allow_writing_files=False: CatBoost would otherwise write its training logs to
                # ./catboost_info (its train_dir) in whatever folder the process runs from.
                m = CatBoostRegressor(
                    **merged, random_seed=seed, thread_count=thread_count, verbose=0, allow_writing_files=False
                )
                log.info("fitting %s on %d rows (%s features%s)", t, r.size, featuriser.name, what)
                try:
                    m.fit(Pool(Xt, yy, text_features=text))
                except Exception as exc:  # CatBoostError and friends: report as a model error
                    raise ModelError(f"CatBoost failed to fit target {t!r}: {exc}") from exc
                return m, base

            models[t], base_t = fit_one(rows, yt, "")
            if base_t is not None:
                baselines[t] = base_t
            record["per_target"][t] = {"n_train": n_ok, "n_nan": nan_counts[t]}
            if calibrate and n_ok >= MIN_CALIBRATION:
                calibration[t], error_models[t] = _calibrate(
                    fit_one, rows, yt, X, batch, text, merged, seed + 7919 * (j + 1)
                )
            elif calibrate:
                log.warning("target %s: %d labelled rows are too few to calibrate the uncertainty", t, n_ok)
        full_meta = {"training": record, **(meta or {})}
        return cls(featuriser, batch.host, targets, models, merged, full_meta, calibration, baselines, error_models)

    # -- prediction -----------------------------------------------------------------------------
    def predict_features(
        self,
        X: np.ndarray | pd.DataFrame,
        *,
        uncertainty: str = "total",
        thread_count: int = 1,
        batch: ConfigBatch | None = None,
    ) -> Prediction:
        """Predict from a feature table made by this model's featuriser.

        ``batch`` (the configurations of ``X``) is needed when the model has linear baselines.
        """
        if uncertainty not in UNCERTAINTY_MODES:
            raise ConfigError(f"uncertainty must be one of {', '.join(UNCERTAINTY_MODES)}, got {uncertainty!r}")
        n_cols = X.shape[1] if X.ndim == 2 else -1
        if n_cols != len(self.feature_names):
            raise ModelError(
                f"feature table has {n_cols} columns but the model expects {len(self.feature_names)} "
                f"({self.featuriser.name} features of {self.host.key}); featurise with model.featuriser"
            )
        n = X.shape[0]
        shape = (n, len(self.targets))
        mean, data_var, know_var = np.empty(shape), np.empty(shape), np.full(shape, np.nan)
        if n == 0:
            return Prediction(self.targets, mean, mean.copy(), mean.copy(), mean.copy())
        data: Any = X
        if self.featuriser.text_features:
            from catboost import Pool

            data = Pool(X, text_features=self.featuriser.text_features)
        needs_batch = [*self.baselines, *self.error_models]
        if needs_batch and (batch is None or len(batch) != n):
            raise ModelError(
                f"targets {', '.join(dict.fromkeys(needs_batch))} have a linear baseline or an error model: pass the "
                "batch of configurations (model.predict(batch), or predict_features(X, batch=batch))"
            )
        counts = rule_counts(batch) if self.baselines and batch is not None else None  # once for all targets
        desc = descriptors(batch) if self.error_models and batch is not None else None
        scale = np.ones(len(self.targets))
        if uncertainty == "data" and not has_variance_head(self.params):
            missing = [t for t in self.targets if "std_scale" not in self.calibration.get(t, {}).get("data", {})]
            if missing:
                raise ModelError(
                    f"this model's loss ({self.params.get('loss_function')}) predicts no data variance and "
                    f"target(s) {', '.join(missing)} were not calibrated, so uncertainty='data' has no width; "
                    "use uncertainty='total' or retrain with calibration"
                )
        for j, t in enumerate(self.targets):
            mean[:, j], data_var[:, j], know_var[:, j] = _raw_predict(self.models[t], data, uncertainty, thread_count)
            if t in self.baselines:
                mean[:, j] += self.baselines[t].predict(batch, counts)  # type: ignore[arg-type]
            scale[j] = self.std_scale(t, uncertainty)
        data_std = np.sqrt(np.maximum(data_var, 0.0)) * scale
        know_std = np.sqrt(np.maximum(know_var, 0.0)) * scale
        total = np.sqrt(data_std**2 + np.nan_to_num(know_std) ** 2)
        for j, t in enumerate(self.targets):  # a target's error model is its std, in either mode
            if t in self.error_models:
                total[:, j] = self.error_models[t].std(desc, thread_count)  # type: ignore[arg-type]
        return Prediction(self.targets, mean, total, data_std, know_std)

    def std_scale(self, target: str, uncertainty: str = "total") -> float:
        """Calibration factor applied to the predicted std of ``target`` (1.0 when uncalibrated)."""
        return float(self.calibration.get(target, {}).get(uncertainty, {}).get("std_scale", 1.0))

    def predict(
        self,
        batch: ConfigBatch,
        *,
        uncertainty: str = "total",
        thread_count: int = 1,
        chunk_size: int = PREDICT_CHUNK,
    ) -> Prediction:
        """Featurise and predict a batch of configurations (in chunks of ``chunk_size`` rows)."""
        self.check_host(batch.host)
        n = len(batch)
        if n <= chunk_size:
            return self.predict_features(
                self.featuriser.transform(batch), uncertainty=uncertainty, thread_count=thread_count, batch=batch
            )
        parts = []
        for lo in range(0, n, chunk_size):
            sub = ConfigBatch(batch.host, batch.sites[lo : lo + chunk_size], batch.codes[lo : lo + chunk_size])
            X = self.featuriser.transform(sub)
            parts.append(self.predict_features(X, uncertainty=uncertainty, thread_count=thread_count, batch=sub))
        return Prediction.concat(parts)

    # -- persistence ----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The ``model.json`` content."""
        return {
            "format": FORMAT,
            "featuriser": {"name": self.featuriser.name, "settings": self.featuriser.settings},
            "host": {"key": self.host.key, "name": self.host.name, "supercell": list(self.host.supercell)},
            "targets": self.targets,
            "feature_names": self.feature_names,
            "catboost_params": self.params,
            "uncertainty": {
                "loss": self.params.get("loss_function"),
                "posterior_sampling": self.params.get("posterior_sampling"),
                "virtual_ensembles_count": VIRTUAL_ENSEMBLES,
            },
            "calibration": self.calibration,
            "linear_baselines": {t: b.to_json() for t, b in self.baselines.items()},
            "versions": package_versions(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "meta": self.meta,
        }

    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write the model directory (atomically: a temporary sibling renamed into place)."""
        root = Path(path)
        if root.exists() and not overwrite:
            raise ModelError(f"{root} already exists; choose another --out or pass overwrite (--force)")
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        try:
            for t in self.targets:
                self.models[t].save_model(str(tmp / f"{t}.cbm"))
            for t, em in self.error_models.items():
                em.regressor.save_model(str(tmp / f"{t}{ERROR_MODEL_SUFFIX}"))
            (tmp / MODEL_JSON).write_text(json.dumps(jsonable(self.describe()), indent=2, allow_nan=False) + "\n")
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("saved surrogate model to %s", root)
        return root

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SurrogateModel:
        """Read a model directory; :class:`ModelError` says what is missing or inconsistent."""
        from catboost import CatBoostRegressor

        from hts.hosts import get_host

        root = Path(path)
        info_path = root / MODEL_JSON
        info = read_model_json(root)
        try:
            feat = make_featuriser(info["featuriser"]["name"], info["featuriser"]["settings"])
            host = get_host(info["host"]["name"], info["host"]["supercell"])
            targets = list(info["targets"])
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{info_path} lacks {exc}") from None
        except ConfigError as exc:
            raise ModelError(f"{info_path}: {exc}") from None
        if host.key != info["host"].get("key", host.key):
            raise ModelError(f"{info_path}: host {info['host']} does not resolve to {info['host'].get('key')}")
        names = feat.feature_names(host)
        if names != info.get("feature_names"):
            raise ModelError(
                f"the {feat.name} featuriser of this code makes {len(names)} features for {host.key} but the model "
                f"in {root} was trained on {len(info.get('feature_names') or [])} different ones; retrain the model"
            )
        models = {}
        for t in targets:
            f = root / f"{t}.cbm"
            if not f.is_file():
                raise ModelError(f"{root} is incomplete: {f.name} (the regressor of {t}) is missing")
            m = CatBoostRegressor()
            try:
                m.load_model(str(f))
            except Exception as exc:
                raise ModelError(f"cannot load {f}: {exc}") from None
            if m.feature_names_ and len(m.feature_names_) != len(names):
                raise ModelError(f"{f} expects {len(m.feature_names_)} features, model.json lists {len(names)}")
            models[t] = m
        theirs = info.get("versions", {}).get("catboost")
        ours = package_versions().get("catboost")
        if theirs and ours and theirs != ours:
            log.warning("model %s was saved with catboost %s; this is catboost %s", root, theirs, ours)
        raw_baselines = info.get("linear_baselines") or {}
        if not isinstance(raw_baselines, dict) or any(t not in targets for t in raw_baselines):
            raise ModelError(f"{info_path}: linear_baselines must map some of the targets {targets} to baselines")
        baselines = {t: LinearBaseline.from_json(b) for t, b in raw_baselines.items()}
        for t, b in baselines.items():
            if len(b.weights) != len(host.rules):
                raise ModelError(
                    f"{info_path}: the baseline of {t} has {len(b.weights)} defect types, "
                    f"{host.key} has {len(host.rules)}"
                )
        error_models = _load_error_models(root, targets, info.get("calibration") or {})
        model = cls(
            feat,
            host,
            targets,
            models,
            info.get("catboost_params"),
            info.get("meta"),
            info.get("calibration"),
            baselines,
            error_models,
        )
        model.meta.setdefault("path", str(root))
        return model


def read_model_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model.json`` of the model directory ``path`` (its boosters stay on disk)."""
    root = Path(path)
    info_path = root / MODEL_JSON
    if not root.is_dir():
        raise ModelError(f"model directory {root} does not exist; train one with hts surrogate train")
    if not info_path.is_file():
        raise ModelError(f"{root} is not a surrogate model directory: {MODEL_JSON} is missing")
    try:
        info = json.loads(info_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {info_path}: {exc}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        found = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise ModelError(f"{info_path} has format {found!r}, expected {FORMAT!r}")
    return info


def check_same_kind(path: str | os.PathLike[str], model: SurrogateModel) -> None:
    """Raise :class:`ModelError` unless the model directory ``path`` predicts ``model``'s targets for its
    host from the same features, reading only its ``model.json``: a process that hands scoring to workers
    switches to a refitted model without loading it itself."""
    from hts.hosts import get_host

    info = read_model_json(path)
    try:
        host_key = get_host(info["host"]["name"], info["host"]["supercell"]).key
    except (KeyError, TypeError, ConfigError) as exc:
        raise ModelError(f"{Path(path) / MODEL_JSON}: no valid host ({exc})") from None
    theirs = (info.get("targets"), host_key, info.get("feature_names"))
    ours = (model.targets, model.host.key, model.feature_names)
    if theirs != ours:
        raise ModelError(
            f"{path} is not a model of the same kind as {model.meta.get('path', model)}: "
            f"targets {theirs[0]} for {theirs[1]} (expected {ours[0]} for {ours[1]}, with the same features)"
        )


def _load_error_models(root: Path, targets: Sequence[str], calibration: Mapping[str, Any]) -> dict[str, ErrorModel]:
    """The error models that ``model.json``'s calibration names (models saved before them have none:
    their std stays the calibrated ensemble or constant std)."""
    out = {}
    for t in targets:
        info = calibration.get(t, {}).get("error_model") if isinstance(calibration.get(t), Mapping) else None
        if info is None:
            continue
        f = root / f"{t}{ERROR_MODEL_SUFFIX}"
        if not f.is_file():
            raise ModelError(f"{root} is incomplete: {f.name} (the error model of {t}) is missing")
        try:
            out[t] = ErrorModel.load(f, info)
        except Exception as exc:
            raise ModelError(f"cannot load {f}: {exc}") from None
    return out


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays and paths converted, and NaN/inf written as ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


__all__ = ["DEFAULT_PARAMS", "UNCERTAINTY_MODES", "Prediction", "SurrogateModel", "jsonable", "package_versions"]
