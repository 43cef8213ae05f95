"""What the oracle has shown about the surrogate's bias, shared by candidates of one vacancy structure.

A surrogate is wrong in the same direction for cells that share their vacancies: on the deep-level
target a screen's five picks were single Mo vacancies decorated with Se or W, predicted with a
normalised LUMO of 0.57-0.65 eV, and xTB put every one at 0.43 eV, as it puts the bare Mo vacancy
(isovalent substitutions move the levels by < 0.01 eV in the labels). Without this, each verification
teaches the next choice nothing, and the oracle is sent to the same error again and again until a
refit.

Candidates are grouped by their **vacancy class**: the number of vacancies of each type, the adjacent
vacancy pairs and the largest vacancy cluster (:func:`surrogate.error_model.descriptors`), whatever
their substitutions. Each verified candidate's residual (oracle value minus the surrogate's mean, per
target) is evidence about its class's bias. With a fraction :data:`SHARED` of a candidate's error
shared by its class (the Gaussian model behind the acquisition's correlation within a motif,
:data:`hts.campaign.acquisition.GROUP_CORRELATION`), the posterior mean of the class's bias after ``n``
residuals of mean ``r`` is ``n * SHARED / (n * SHARED + 1 - SHARED) * r`` (half of one residual, two
thirds of two, ...): the shift :meth:`OracleResiduals.shift` adds to the surrogate's mean of every
unverified candidate of that class before the acquisition weighs it. The std is left as it is (a
conservative choice: the class's uncertainty shrinks too, which would make the shifted candidates
look surer than they are if the class is not as homogeneous as assumed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hts.campaign.acquisition import GROUP_CORRELATION
from hts.defects import ConfigBatch, DefectConfiguration
from hts.hosts import Host

SHARED = GROUP_CORRELATION
"""Fraction of a candidate's error variance that its vacancy class shares (see the module docstring)."""

VacancyClass = tuple[int, ...]


def vacancy_classes(host: Host, defects: Sequence[Sequence[tuple[int, str]]]) -> list[VacancyClass]:
    """The vacancy class of each configuration (given as ``(site, species)`` pairs)."""
    from surrogate.error_model import descriptors

    if not defects:
        return []
    batch = ConfigBatch.from_configs([DefectConfiguration.from_mapping(host, d) for d in defects])
    d = descriptors(batch)
    vacancy_rules = [i for i, rule in enumerate(host.rules) if rule.kind == "vacancy"]
    cols = [*vacancy_rules, d.shape[1] - 2, d.shape[1] - 1]  # vacancies per type, adjacent pairs, largest cluster
    return [tuple(int(v) for v in row) for row in d[:, cols]]


@dataclass
class OracleResiduals:
    """Residuals of the verified candidates, summed per vacancy class and target."""

    targets: list[str]
    sums: dict[VacancyClass, np.ndarray] = field(default_factory=dict)
    counts: dict[VacancyClass, np.ndarray] = field(default_factory=dict)

    def add(self, key: VacancyClass, predicted: Sequence[float], result: Mapping[str, Any]) -> None:
        """Record one verification: the surrogate's mean per target and the oracle's result (targets the
        result lacks or holds no finite number for are skipped)."""
        observed = np.array([_number(result.get(t)) for t in self.targets])
        residual = observed - np.asarray(predicted, dtype=float)
        ok = np.isfinite(residual)
        self.sums.setdefault(key, np.zeros(len(self.targets)))[ok] += residual[ok]
        self.counts.setdefault(key, np.zeros(len(self.targets)))[ok] += 1

    def shift(self, keys: Sequence[VacancyClass]) -> np.ndarray:
        """(N, T) posterior mean of each class's bias (zero for classes never verified)."""
        out = np.zeros((len(keys), len(self.targets)))
        for i, key in enumerate(keys):
            n = self.counts.get(key)
            if n is None:
                continue
            mean = np.divide(self.sums[key], n, out=np.zeros_like(n), where=n > 0)
            out[i] = n * SHARED / (n * SHARED + 1.0 - SHARED) * mean
        return out


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
