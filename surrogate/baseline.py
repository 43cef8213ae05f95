"""Linear composition baseline for extensive targets: trees then learn only the interactions.

Energies of defected supercells are, to first order, additive: every defect of type r (a host
rule such as S vacancy or Mo->W) shifts the total energy and the formation energy by its own
amount, and defects interact on top of that. Gradient-boosted trees fit such additive trends
poorly from a few hundred labels: they cannot extrapolate to defect counts outside the training
range, and each split captures a step, not a slope. So for the energy targets the surrogate first
fits a ridge regression of the *total* quantity on the defect counts per type, and CatBoost fits
the residual. ``per`` says how a target relates to its total: ``None`` (the target is the total),
``"atom"`` (``energy_per_atom``: total / number of atoms) or ``"defect"``
(``formation_energy_per_site``: total / max(1, number of defects)).

The baseline is exact for non-interacting defects and costs one small matrix product per batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hts.defects import ConfigBatch
from hts.errors import ModelError
from surrogate.features.base import row_bincount, rule_types

# Targets that get a linear baseline by default, and how each relates to its extensive total.
EXTENSIVE_TARGETS: dict[str, str | None] = {
    "energy": None,
    "formation_energy": None,
    "formation_energy_per_site": "defect",
    "energy_per_atom": "atom",
}
RIDGE = 1e-6


def rule_counts(batch: ConfigBatch) -> np.ndarray:
    """(N, R) float: the number of defects of each host rule (type) in every configuration."""
    n_rules = len(batch.host.rules)
    return row_bincount(rule_types(batch), n_rules + 1)[:, :n_rules].astype(float)


def _divisor(batch: ConfigBatch, counts: np.ndarray, per: str | None) -> np.ndarray:
    if per is None:
        return np.ones(len(batch))
    n_def = counts.sum(axis=1)
    if per == "defect":
        return np.maximum(1.0, n_def)
    if per == "atom":
        vacancy_rules = [r for r, rule in enumerate(batch.host.rules) if rule.kind == "vacancy"]
        return batch.host.n_sites - counts[:, vacancy_rules].sum(axis=1)
    raise ModelError(f"unknown baseline normalisation {per!r} (None, 'atom' or 'defect')")


@dataclass(frozen=True)
class LinearBaseline:
    """``target ~ (intercept + counts @ weights) / divisor``, fitted by ridge least squares."""

    intercept: float
    weights: tuple[float, ...]
    per: str | None = None

    @classmethod
    def fit(cls, batch: ConfigBatch, y: np.ndarray, per: str | None = None) -> LinearBaseline:
        """Fit on the configurations of ``batch`` and their labels ``y`` (all finite)."""
        counts = rule_counts(batch)
        total = np.asarray(y, dtype=float) * _divisor(batch, counts, per)
        mean_c, mean_t = counts.mean(axis=0), total.mean()
        xc = counts - mean_c
        # Ridge on centred counts (the intercept is not penalised); scaled so it only matters for
        # rule types absent from (or constant in) the training set.
        a = xc.T @ xc + RIDGE * len(total) * np.eye(counts.shape[1])
        w = np.linalg.solve(a, xc.T @ (total - mean_t))
        return cls(float(mean_t - mean_c @ w), tuple(float(v) for v in w), per)

    def predict(self, batch: ConfigBatch, counts: np.ndarray | None = None) -> np.ndarray:
        """Baseline value of the target for every configuration of ``batch`` (``counts``: its
        :func:`rule_counts`, when the caller already has them)."""
        counts = rule_counts(batch) if counts is None else counts
        if counts.shape[1] != len(self.weights):
            raise ModelError(f"baseline has {len(self.weights)} defect types, the host has {counts.shape[1]}")
        return (self.intercept + counts @ np.asarray(self.weights)) / _divisor(batch, counts, self.per)

    def to_json(self) -> dict[str, Any]:
        return {"intercept": self.intercept, "weights": list(self.weights), "per": self.per}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LinearBaseline:
        try:
            return cls(float(data["intercept"]), tuple(float(v) for v in data["weights"]), data.get("per"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed linear baseline in model.json: {exc}") from None
