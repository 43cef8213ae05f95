"""A per-configuration predictive std: how far off the surrogate is, learned from its own residuals.

CatBoost's virtual-ensemble (knowledge) std barely changes from one MoS2 configuration to another
(median 0.05 eV in every density bin), while the errors do: out-of-fold band-gap MAE 0.012 eV without
vacancies, 0.04 eV with five or more, 0.07 eV for dense vacancy clusters (BENCHMARKS.md, "Surrogate
accuracy"). A constant-width std makes the campaign's hit probabilities overconfident exactly where
the picks of a screen land (rare, dense clusters at the edge of the labelled data), and the oracle
rejects them.

:class:`ErrorModel` is a normalised split-conformal std (Papadopoulos et al. 2008; Lei et al. 2018):

- ``g(x)``: a small CatBoost regressor of the absolute **out-of-fold** residual of the surrogate on a
  few :func:`descriptors` of the configuration (defects per type, defect count, adjacent vacancy pairs,
  largest vacancy cluster). Descriptors rather than the full feature table: a few hundred residuals
  cannot fit thousands of features, and these are what the error depends on.
- ``s``: the factor that makes ``mean +- 1.645 s g(x)`` cover 90 % of ``|r| / g(x)`` on inner folds
  (``g`` out of fold as well), so the interval is calibrated overall and its width follows ``g``.

The std is ``s * max(g(x), floor)``: ``floor`` (the 5th percentile of the residuals) keeps a
prediction that ``g`` calls near-exact from claiming certainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.defects import ConfigBatch

if TYPE_CHECKING:  # pragma: no cover
    from catboost import CatBoostRegressor

    from hts.hosts import Host

LEVEL = 0.9
FOLDS = 4
"""Inner folds of ``g``'s own calibration."""
FLOOR_QUANTILE = 0.05
PARAMS: dict[str, Any] = {"iterations": 300, "depth": 4, "learning_rate": 0.05}
"""``g`` is small: it sees a few descriptors and, on a bundled dataset, 450-1,500 residuals."""


def descriptor_names(host: Host) -> list[str]:
    return [f"n_{r.name}" for r in host.rules] + ["n_defects", "vacancy_pairs", "largest_vacancy_cluster"]


def descriptors(batch: ConfigBatch) -> np.ndarray:
    """(N, D) float: defects per type, defect count, adjacent vacancy pairs and the largest connected
    set of adjacent vacancies (the motif adjacency, :data:`hts.campaign.motifs.ADJACENT_FACTOR`)."""
    from hts.campaign.motifs import adjacency_cutoff
    from hts.hosts import VAC
    from surrogate.baseline import rule_counts

    host = batch.host
    counts = rule_counts(batch)
    is_vac = batch.mask & (batch.codes == host.code_of(VAC))
    # Only the vacancy columns matter: move them to the front of each row and keep as many columns as
    # the row with the most vacancies has (a high-density batch has a third as many as defects).
    order = np.argsort(~is_vac, axis=1, kind="stable")
    width = int(is_vac.sum(axis=1).max()) if len(batch) else 0
    member = np.take_along_axis(is_vac, order, axis=1)[:, :width]
    sites = np.where(member, np.take_along_axis(batch.sites, order, axis=1)[:, :width], 0)
    adjacent = (host.distance_matrix <= adjacency_cutoff(host))[sites[:, :, None], sites[:, None, :]]
    adjacent &= member[:, :, None] & member[:, None, :]
    adjacent[:, np.arange(width), np.arange(width)] = False
    pairs = adjacent.sum(axis=(1, 2)) // 2
    return np.column_stack([counts, counts.sum(axis=1), pairs, largest_cluster(adjacent, member)]).astype(float)


def largest_cluster(adjacent: np.ndarray, member: np.ndarray) -> np.ndarray:
    """(N,) size of the largest connected set of ``member`` columns under ``adjacent`` (N, K, K):
    every member takes the smallest label among its neighbours, then its label's label, until
    nothing changes; vectorised over the rows that have an adjacent pair, each dropped once settled."""
    k = member.shape[1]
    out = np.minimum(member.sum(axis=1), 1).astype(float)  # a lone member is a cluster of one
    rows = np.flatnonzero(adjacent.any(axis=(1, 2)))
    if rows.size == 0:
        return out
    big = np.int16(k)
    link = adjacent[rows] | np.eye(k, dtype=bool)[None]
    label = np.where(member[rows], np.arange(k, dtype=np.int16)[None, :], big)
    live = np.arange(rows.size)
    while live.size:
        old = label[live]
        new = np.where(link[live], old[:, None, :], big).min(axis=2)
        padded = np.concatenate([new, np.full((live.size, 1), big, dtype=np.int16)], axis=1)
        new = np.minimum(new, np.take_along_axis(padded, new.astype(np.intp), axis=1))  # jump to the label's label
        new = np.where(member[rows[live]], new, big)
        label[live] = new
        live = live[(new != old).any(axis=1)]
    sizes = (label[:, :, None] == np.arange(k, dtype=np.int16)[None, None, :]).sum(axis=1)  # (R, K): per label
    out[rows] = sizes.max(axis=1)
    return out


@dataclass
class ErrorModel:
    """``std(x) = scale * max(g(x), floor)`` (see the module docstring)."""

    regressor: CatBoostRegressor
    scale: float
    floor: float

    @classmethod
    def fit(cls, x: np.ndarray, abs_residual: np.ndarray, seed: int = 0, thread_count: int = 1) -> ErrorModel:
        """Fit ``g`` on descriptors ``x`` (N, D) and out-of-fold ``|residual|`` (N,), and calibrate it."""
        n = len(abs_residual)
        floor = float(max(np.quantile(abs_residual, FLOOR_QUANTILE), 1e-9))
        fold = np.empty(n, dtype=int)
        fold[np.random.default_rng(seed + 1).permutation(n)] = np.arange(n) % FOLDS
        g = np.empty(n)
        for f in range(FOLDS):
            g[fold == f] = _fit_g(x[fold != f], abs_residual[fold != f], seed, thread_count).predict(x[fold == f])
        ratio = abs_residual / np.maximum(g, floor)
        q = float(np.quantile(ratio, min(1.0, np.ceil((n + 1) * LEVEL) / n), method="higher"))
        return cls(_fit_g(x, abs_residual, seed, thread_count), q / NormalDist().inv_cdf(0.5 + LEVEL / 2), floor)

    def std(self, x: np.ndarray, thread_count: int = 1) -> np.ndarray:
        """(N,) calibrated predictive std for descriptors ``x`` (N, D)."""
        if len(x) == 0:
            return np.zeros(0)
        return self.scale * np.maximum(np.asarray(self.regressor.predict(x, thread_count=thread_count)), self.floor)

    def to_json(self) -> dict[str, float]:
        return {"scale": self.scale, "floor": self.floor}

    @classmethod
    def load(cls, path: Path, info: dict[str, Any]) -> ErrorModel:
        from catboost import CatBoostRegressor

        reg = CatBoostRegressor()
        reg.load_model(str(path))
        return cls(reg, float(info["scale"]), float(info["floor"]))


def _fit_g(x: np.ndarray, y: np.ndarray, seed: int, thread_count: int) -> CatBoostRegressor:
    from catboost import CatBoostRegressor

    g = CatBoostRegressor(**PARAMS, random_seed=seed, thread_count=thread_count, verbose=0, allow_writing_files=False)
    g.fit(x, y)
    return g
