"""Pool acquisition: which archived candidates the oracle verifies (BoTorch over a discrete pool).

The surrogate gives each candidate a predictive mean and standard deviation per property. A
verification is worth what it adds to the shortlist: a **motif** (:mod:`hts.campaign.motifs`) that
the oracle confirms inside every target window and that no earlier verification covered. The
acquisition is therefore the Monte Carlo expectation of the number of distinct, not yet verified
groups (motifs) with at least one true hit in the batch (:class:`ExpectedNewGroups`), chosen greedily
over the pool by BoTorch's ``optimize_acqf_discrete``. A candidate of a motif already verified adds
nothing; a second candidate of a motif in the same batch adds only the chance that the first one
fails.

The pool's posterior (:class:`PoolModel`) is Gaussian per property, independent between properties.
Its errors are **correlated between candidates of the same group** (``rho``): a surrogate is wrong in
the same direction for cells that share a core, so a second placement of a motif adds even less than
its own probability suggests.

Candidates already verified are left out; ties fall back to the ranking of ``hts status``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from hts.campaign.config import Target

GROUP_CORRELATION = 0.5
"""Correlation of the surrogate's errors between two candidates of the same group (motif)."""

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
    rho: float = GROUP_CORRELATION,
    seed: int = 0,
    credited: Collection[Any] = (),
) -> list[int]:
    """Rows of the pool (mean, std: (N, P) in the order of ``targets``) to verify, best first.

    ``groups``: a hashable key per row (its motif; rows with equal keys share error, ``rho``);
    ``credited``: groups already verified, worth nothing more (see the module docstring).
    """
    n = mean.shape[0]
    if n == 0 or k <= 0:
        return []
    windows = [targets[t].window for t in targets]
    keys = np.asarray([repr(g) for g in groups], dtype=object)
    done = {repr(g) for g in credited}
    p = marginal_hit_probability(mean, std, windows) * np.array([key not in done for key in keys])
    pool = np.argsort(-p, kind="stable")[: min(n, POOL_LIMIT)]
    k = min(k, pool.size)
    if k == pool.size:
        return [int(i) for i in pool]
    import torch
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling.normal import SobolQMCNormalSampler

    uniques, codes = np.unique(keys[pool], return_inverse=True)
    model = PoolModel(mean[pool], std[pool], np.asarray(codes).ravel(), rho)
    fresh = torch.tensor([u not in done for u in uniques], dtype=torch.double)
    acq = ExpectedNewGroups(
        model,
        windows,
        torch.as_tensor(np.asarray(codes).ravel(), dtype=torch.long),
        fresh,
        SobolQMCNormalSampler(torch.Size([MC_SAMPLES]), seed=seed),
    )
    choices = torch.arange(pool.size, dtype=torch.double).unsqueeze(-1)
    with torch.no_grad():
        chosen, _ = optimize_acqf_discrete(acq, q=k, choices=choices, max_batch_size=1024, unique=True)
    return [int(pool[round(float(i))]) for i in chosen.squeeze(-1)]


def ExpectedNewGroups(  # noqa: N802
    model: Any, windows: Sequence[tuple[float, float]], codes: Any, fresh: Any, sampler: Any
) -> Any:
    """The acquisition of :func:`select_for_oracle` as a BoTorch ``MCAcquisitionFunction`` (built
    lazily: torch): the expected number of groups with ``fresh[group]`` true that hold at least one
    candidate of the batch inside every window."""
    return _expected_new_groups_class()(model, windows, codes, fresh, sampler)


def _first_output(samples: Any, X: Any = None) -> Any:
    """An MC objective's placeholder: the first property's samples."""
    return samples[..., 0]


def _expected_new_groups_class() -> type:
    import torch
    from botorch.acquisition.monte_carlo import MCAcquisitionFunction
    from botorch.acquisition.objective import GenericMCObjective
    from botorch.utils.transforms import concatenate_pending_points, t_batch_mode_transform

    class _ExpectedNewGroups(MCAcquisitionFunction):  # type: ignore[misc]
        def __init__(self, model: Any, windows: Any, codes: Any, fresh: Any, sampler: Any) -> None:
            # The objective only satisfies BoTorch's check for multi-output models; forward reads the
            # joint samples of every property itself.
            super().__init__(model=model, sampler=sampler, objective=GenericMCObjective(_first_output))
            self.lo = torch.tensor([w[0] for w in windows], dtype=torch.double)
            self.hi = torch.tensor([w[1] for w in windows], dtype=torch.double)
            self.codes = codes
            self.fresh = fresh

        @concatenate_pending_points
        @t_batch_mode_transform()  # type: ignore[arg-type]
        def forward(self, X: Any) -> Any:
            samples = self.get_posterior_samples(self.model.posterior(X))  # S x b x q x m
            hit = ((samples >= self.lo) & (samples <= self.hi)).all(dim=-1).to(samples)  # S x b x q
            code = self.codes[X.squeeze(-1).round().long()]  # b x q
            q = code.shape[-1]
            same = code.unsqueeze(-1) == code.unsqueeze(-2)  # b x q x q
            earlier = torch.ones(q, q, dtype=torch.bool).tril(-1)  # [j, i]: i comes before j
            blocked = (same & earlier).to(samples)  # b x q x q
            first = hit * (1.0 - hit.unsqueeze(-2) * blocked).prod(dim=-1)  # the first true hit of its group
            return (first * self.fresh[code]).sum(dim=-1).mean(dim=0)

    return _ExpectedNewGroups


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
