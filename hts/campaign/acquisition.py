"""Pool acquisition: which archived candidates the oracle verifies (BoTorch over a discrete pool).

The surrogate gives each candidate a predictive mean and standard deviation per property. What a
verification is worth is whether the candidate is *truly* inside every target window, so the
acquisition is the Monte Carlo probability that at least one candidate of the batch is a true hit
(BoTorch ``qSimpleRegret`` with the hit indicator as its objective), chosen greedily over the pool
(``optimize_acqf_discrete``).

The pool's posterior (:class:`PoolModel`) is Gaussian per property, independent between properties.
Its errors are **correlated between candidates of the same composition** (the same number of
defects of each type): a surrogate is wrong in the same direction for cells of one make-up
(BENCHMARKS.md, "Oracle verification during a campaign"). With the correlation ``rho`` the second
candidate of a composition adds less to the batch's chance of a hit than the first, so a batch
spreads over compositions unless one composition is far ahead. With ``rho = 0`` the greedy batch is
the candidates of highest marginal hit probability.

Candidates already verified are left out; ties fall back to the ranking of ``hts status``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hts.campaign.config import Target

COMPOSITION_CORRELATION = 0.5
"""Correlation of the surrogate's errors between two candidates of the same composition."""

MC_SAMPLES = 512
POOL_LIMIT = 4096  # the pool: the candidates of highest marginal hit probability, at most this many


def marginal_hit_probability(mean: np.ndarray, std: np.ndarray, windows: Sequence[tuple[float, float]]) -> np.ndarray:
    """(N,) P(every property inside its window) under independent Gaussians (mean, std: (N, P))."""
    from scipy.stats import norm

    s = np.maximum(std, 1e-9)
    lo = np.array([w[0] for w in windows])
    hi = np.array([w[1] for w in windows])
    p = norm.cdf((hi - mean) / s) - norm.cdf((lo - mean) / s)
    return np.prod(np.clip(p, 0.0, 1.0), axis=1)


def select_for_oracle(
    mean: np.ndarray,
    std: np.ndarray,
    groups: Sequence[Any],
    targets: Mapping[str, Target],
    k: int,
    rho: float = COMPOSITION_CORRELATION,
    seed: int = 0,
) -> list[int]:
    """Rows of the pool (mean, std: (N, P) in the order of ``targets``) to verify, best first.

    ``groups``: a hashable composition key per row (rows with equal keys share error, ``rho``).
    """
    n = mean.shape[0]
    if n == 0 or k <= 0:
        return []
    windows = [targets[t].window for t in targets]
    p = marginal_hit_probability(mean, std, windows)
    pool = np.argsort(-p, kind="stable")[: min(n, POOL_LIMIT)]
    k = min(k, pool.size)
    if k == pool.size:
        return [int(i) for i in pool]
    import torch
    from botorch.acquisition.monte_carlo import qSimpleRegret
    from botorch.acquisition.objective import GenericMCObjective
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling.normal import SobolQMCNormalSampler

    _, codes = np.unique(np.asarray([repr(g) for g in groups], dtype=object)[pool], return_inverse=True)
    model = PoolModel(mean[pool], std[pool], np.asarray(codes).ravel(), rho)
    lo = torch.tensor([w[0] for w in windows], dtype=torch.double)
    hi = torch.tensor([w[1] for w in windows], dtype=torch.double)

    def hit(samples: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        return ((samples >= lo) & (samples <= hi)).all(dim=-1).to(samples)

    acq = qSimpleRegret(
        model,
        sampler=SobolQMCNormalSampler(torch.Size([MC_SAMPLES]), seed=seed),
        objective=GenericMCObjective(hit),
    )
    choices = torch.arange(pool.size, dtype=torch.double).unsqueeze(-1)
    with torch.no_grad():
        chosen, _ = optimize_acqf_discrete(acq, q=k, choices=choices, max_batch_size=1024, unique=True)
    return [int(pool[round(float(i))]) for i in chosen.squeeze(-1)]


def _pool_model_class() -> type:
    from botorch.models.model import Model

    class _PoolModel(Model):  # type: ignore[misc]
        """BoTorch model over a fixed pool: ``X`` holds row indices (``... x q x 1``)."""

        def __init__(self, mean: np.ndarray, std: np.ndarray, codes: np.ndarray, rho: float) -> None:
            import torch

            super().__init__()
            self._mean = torch.as_tensor(mean, dtype=torch.double)
            self._std = torch.as_tensor(np.maximum(std, 1e-9), dtype=torch.double)
            self._codes = torch.as_tensor(codes, dtype=torch.long)
            self._rho = float(rho)

        @property
        def num_outputs(self) -> int:
            return int(self._mean.shape[1])

        def posterior(
            self, X: Any, output_indices: Any = None, observation_noise: Any = False, posterior_transform: Any = None
        ) -> Any:
            import torch
            from botorch.posteriors.gpytorch import GPyTorchPosterior
            from gpytorch.distributions import MultitaskMultivariateNormal, MultivariateNormal

            idx = X.squeeze(-1).round().long()  # ... x q
            same = (self._codes[idx].unsqueeze(-1) == self._codes[idx].unsqueeze(-2)).to(torch.double)
            q = idx.shape[-1]
            corr = self._rho * same + (1.0 - self._rho) * torch.eye(q, dtype=torch.double)
            mvns = []
            for j in range(self.num_outputs):
                s = self._std[idx, j]
                cov = corr * s.unsqueeze(-1) * s.unsqueeze(-2)
                mvns.append(MultivariateNormal(self._mean[idx, j], cov))
            if len(mvns) == 1:
                return GPyTorchPosterior(mvns[0])
            return GPyTorchPosterior(MultitaskMultivariateNormal.from_independent_mvns(mvns))

    return _PoolModel


def PoolModel(mean: np.ndarray, std: np.ndarray, codes: np.ndarray, rho: float) -> Any:  # noqa: N802
    """The pool's posterior as a BoTorch model (see the module docstring); built lazily (torch)."""
    return _pool_model_class()(mean, std, codes, rho)
