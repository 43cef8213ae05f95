"""What the oracle's verifications say about the candidates it has not verified yet (a benchmark variant).

The surrogate's errors come in families: on the mid-gap target every placement of an S vacancy with
one W and two Se that a screen found was predicted at a gap of 0.975-0.985 eV and computed by xTB at
0.94 eV, just outside the window. After two such verifications the third is no surprise, except to
the surrogate. :class:`VerifiedResiduals` treats the surrogate's error as a Gaussian process over the
candidates,

    e(x) ~ GP(0, s(x) s(x') rho(x, x')),  rho = R0 exp(-|D(x) - D(x')|_1 / ELL) + (1 - R0) [x = x'],

with ``s`` the surrogate's std and ``D`` the error model's descriptors (defects per type, defect count,
adjacent vacancy pairs, largest vacancy cluster: :func:`surrogate.error_model.descriptors`), and
conditions it on the residuals (oracle - surrogate mean) of the verified candidates: each unverified
candidate's mean shifts and its std shrinks before the acquisition weighs it. On the oracle
benchmark's verified picks, each predicted from those verified before it in its run
(``benchmarks/research/bench_verified_learning.py``), the log loss of the hit probability fell from
1.54 to 1.02 and the Brier score from 0.27 to 0.20. Whether the oracle then confirms more motifs is
what ``benchmarks/bench_motifs.py --strategies screen+learn`` measures; until it does, campaigns do
not use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hts.hosts import Host

R0 = 0.5
"""Correlation of the surrogate's errors between two candidates with the same descriptors."""
ELL = 2.0
"""L1 distance in descriptors (defect counts, pairs, cluster size) over which the correlation decays by e."""
CHUNK = 2048  # candidates per block of the cross-correlation matrix


class VerifiedResiduals:
    """The verified candidates' descriptors, stds and residuals, and the posterior they imply."""

    def __init__(self, host: Host, r0: float = R0, ell: float = ELL) -> None:
        self.host = host
        self.r0, self.ell = r0, ell
        self.descriptors: list[np.ndarray] = []
        self.std: list[np.ndarray] = []
        self.residual: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.residual)

    def add(self, defects: str, mean: Sequence[float], std: Sequence[float], measured: Sequence[float]) -> None:
        """Record one verified candidate (stored defects text; the surrogate's mean and std and the oracle's
        values per target, in the campaign's order). A candidate without every value is left out."""
        values = np.asarray(measured, dtype=float)
        if not np.isfinite(values).all():
            return
        self.descriptors.append(self._descriptors([defects])[0])
        self.std.append(np.maximum(np.asarray(std, dtype=float), 1e-9))
        self.residual.append(values - np.asarray(mean, dtype=float))

    def posterior(self, defects: Sequence[str], mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (N, T) of the candidates ``defects`` given the verified residuals (see the module
        docstring); unchanged when nothing is verified."""
        if not self.residual or len(defects) == 0:
            return mean, std
        dv = np.array(self.descriptors)
        sv = np.array(self.std)
        rv = np.array(self.residual)
        rho_vv = correlation(dv, dv, self.r0, self.ell) + (1.0 - self.r0) * np.eye(len(dv))
        out_mean, out_std = mean.astype(float).copy(), np.maximum(std.astype(float), 1e-9)
        for start in range(0, len(defects), CHUNK):
            rows = slice(start, start + CHUNK)
            rho = correlation(self._descriptors(list(defects[rows])), dv, self.r0, self.ell)  # (n, V)
            for j in range(mean.shape[1]):
                cov_vv = rho_vv * np.outer(sv[:, j], sv[:, j]) + 1e-12 * np.eye(len(dv))
                cross = rho * out_std[rows, j][:, None] * sv[None, :, j]  # (n, V)
                weights = np.linalg.solve(cov_vv, cross.T)  # (V, n)
                out_mean[rows, j] = mean[rows, j] + weights.T @ rv[:, j]
                var = out_std[rows, j] ** 2 - np.einsum("nv,vn->n", cross, weights)
                out_std[rows, j] = np.sqrt(np.maximum(var, 1e-18))
        return out_mean, out_std

    def _descriptors(self, defects: list[str]) -> np.ndarray:
        from hts.campaign.store import parse_defects
        from hts.defects import ConfigBatch, DefectConfiguration
        from surrogate.error_model import descriptors

        configs = [DefectConfiguration.from_mapping(self.host, parse_defects(d)) for d in defects]
        return descriptors(ConfigBatch.from_configs(configs))


def correlation(a: np.ndarray, b: np.ndarray, r0: float = R0, ell: float = ELL) -> np.ndarray:
    """``r0 exp(-|a_i - b_j|_1 / ell)`` between the rows of descriptors ``a`` (N, D) and ``b`` (M, D)."""
    return r0 * np.exp(-np.abs(a[:, None, :] - b[None, :, :]).sum(axis=2) / ell)
