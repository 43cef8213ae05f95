"""Defect-only features from the configuration and the pristine supercell's distances.

For a host with ``R`` defect types (rules) and ``P = R (R + 1) / 2`` unordered pairs of types, a
configuration gives (in this order):

- ``n_defects``, ``concentration`` (fraction of sites changed);
- ``count[r]``: defects of each type;
- ``n_vacancies``, ``n_substitutions``: the counts summed over the vacancy and the substitution
  types (whether a cell has any vacancy decides most of its band gap; with these a tree needs one
  split for it instead of one per vacancy type, which halved the low-density gap error);
- ``d{k}[p]``, ``k < n_dist``: the ``n_dist`` smallest minimum-image distances between two defects of
  the type pair ``p``, ascending (``far`` where there are fewer pairs);
- ``close[p]``: pairs of type pair ``p`` closer than ``close_cutoff`` Angstrom;
- ``nn_min[r]``, ``nn_mean[r]``: over defects of type ``r``, the min and mean distance to the nearest
  other defect (``far`` when undefined);
- ``nn_min``, ``nn_mean``, ``nn_max``: the same over all defects.

``far`` is twice the largest distance in the pristine supercell, so "no such pair" sorts above every
real distance (CatBoost only uses the order of a feature's values).

Everything is numpy over the padded arrays of :class:`~hts.defects.ConfigBatch`, in chunks of rows;
no Python objects per configuration. The distances come from ``host.distance_matrix``: features are
invariant under the symmetry operations of the pristine supercell.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.defects import ConfigBatch
from hts.errors import ConfigError
from hts.hosts import VAC
from surrogate.features.base import row_bincount, rule_types

if TYPE_CHECKING:  # pragma: no cover
    from hts.hosts import Host

log = logging.getLogger(__name__)

_CHUNK_PAIRS = 1 << 21  # bound on rows * K * K per chunk (8 MiB of float32 distances)


class SparseFeaturiser:
    """Vectorised defect-only features (see the module docstring for the list)."""

    name = "sparse"

    def __init__(self, n_dist: int = 4, close_cutoff: float = 3.5) -> None:
        if not 1 <= int(n_dist) <= 64:
            raise ConfigError(f"sparse featuriser: n_dist must be in 1..64, got {n_dist!r}")
        if not float(close_cutoff) > 0:
            raise ConfigError(f"sparse featuriser: close_cutoff must be a positive distance in A, got {close_cutoff!r}")
        self.n_dist = int(n_dist)
        self.close_cutoff = float(close_cutoff)

    def __repr__(self) -> str:
        return f"SparseFeaturiser(n_dist={self.n_dist}, close_cutoff={self.close_cutoff})"

    @property
    def settings(self) -> dict[str, Any]:
        return {"n_dist": self.n_dist, "close_cutoff": self.close_cutoff}

    @property
    def text_features(self) -> list[str]:
        return []

    # -- layout -----------------------------------------------------------------------------------
    @staticmethod
    def _pairs(n_rules: int) -> list[tuple[int, int]]:
        return [(a, b) for a in range(n_rules) for b in range(a, n_rules)]

    def feature_names(self, host: Host) -> list[str]:
        rules = [r.name for r in host.rules]
        pairs = [f"{rules[a]}|{rules[b]}" for a, b in self._pairs(len(rules))]
        names = ["n_defects", "concentration"]
        names += [f"count[{r}]" for r in rules]
        names += ["n_vacancies", "n_substitutions"]
        names += [f"d{k}[{p}]" for p in pairs for k in range(self.n_dist)]
        names += [f"close[{p}]" for p in pairs]
        names += [f"nn_min[{r}]" for r in rules] + [f"nn_mean[{r}]" for r in rules]
        names += ["nn_min", "nn_mean", "nn_max"]
        return names

    @staticmethod
    def far(host: Host) -> float:
        """The 'no such distance' value: twice the largest pristine distance, rounded up."""
        cached = host._cache.get("sparse_far")
        if cached is None:
            cached = float(np.ceil(2.0 * float(host.distance_matrix.max())))
            host._cache["sparse_far"] = cached
        return cached  # type: ignore[return-value]

    # -- features ---------------------------------------------------------------------------------
    def transform(self, batch: ConfigBatch) -> np.ndarray:
        """(N, F) float32 features, F = ``len(feature_names(batch.host))``."""
        host = batch.host
        n = len(batch)
        out = np.empty((n, len(self.feature_names(host))), dtype=np.float32)
        if n == 0:
            return out
        types = rule_types(batch)  # validates; (N, K), R where padded
        sites = np.asarray(batch.sites)
        n_rules = len(host.rules)
        if sites.shape[1] == 0:
            sites = np.full((n, 1), -1, dtype=np.int32)
            types = np.full((n, 1), n_rules, dtype=np.int64)
        mask = types < n_rules
        if not (mask[:, :-1] >= mask[:, 1:]).all():  # move padding to the end of every row
            order = np.argsort(~mask, axis=1, kind="stable")
            sites = np.take_along_axis(sites, order, axis=1)
            types = np.take_along_axis(types, order, axis=1)
            mask = types < n_rules
        # Rows with the same number of defects are featurised together, without padding columns.
        n_def = mask.sum(axis=1)
        for k in np.unique(n_def):
            rows = np.flatnonzero(n_def == k)
            kk = max(1, int(k))
            step = max(1, _CHUNK_PAIRS // (kk * kk))
            for lo in range(0, rows.size, step):
                sel = rows[lo : lo + step]
                out[sel] = self._chunk(host, sites[sel, :kk], types[sel, :kk])
        return out

    def _chunk(self, host: Host, sites: np.ndarray, types: np.ndarray) -> np.ndarray:
        n_rows, k = sites.shape
        n_rules = len(host.rules)
        pairs = self._pairs(n_rules)
        n_pairs = len(pairs)
        far = self.far(host)
        mask = types < n_rules

        # Counts per defect type (column R collects padding).
        counts = row_bincount(types, n_rules + 1)[:, :n_rules]
        n_def = counts.sum(axis=1)

        # Pairwise distances between the defects of each row.
        s = np.where(mask, sites, 0)
        dist = host.distance_matrix[s[:, :, None], s[:, None, :]]  # (n, K, K) float32
        valid_pair = mask[:, :, None] & mask[:, None, :]
        valid_pair[:, np.arange(k), np.arange(k)] = False

        # Nearest other defect of every defect.
        dm = np.where(valid_pair, dist, np.inf)
        nn = dm.min(axis=2) if k > 1 else np.full((n_rows, k), np.inf, dtype=np.float32)  # (n, K)
        nn = np.where(np.isfinite(nn), nn, far).astype(np.float64)

        # Pair type of every unordered pair i < j; P marks pairs with padding.
        pair_table = np.full((n_rules + 1, n_rules + 1), n_pairs, dtype=np.int64)
        for p, (a, b) in enumerate(pairs):
            pair_table[a, b] = pair_table[b, a] = p
        iu, ju = np.triu_indices(k, 1)
        n_flat = iu.size
        pid = pair_table[types[:, iu], types[:, ju]]  # (n, M)
        d = dist[:, iu, ju].astype(np.float64)  # (n, M)

        is_vac = np.array([r.new_species == VAC for r in host.rules], dtype=bool)
        n_vac = counts[:, is_vac].sum(axis=1)
        feats: list[np.ndarray] = [
            n_def[:, None],
            (n_def / host.n_sites)[:, None],
            counts,
            n_vac[:, None],
            (n_def - n_vac)[:, None],
        ]

        # The n_dist smallest distances per pair type: sort by (pair type, distance) in one go.
        if n_flat:
            pair_counts = row_bincount(pid, n_pairs + 1)
            big = 2.0 * far + 1.0
            order = np.sort(pid * big + d, axis=1)
            sorted_d = order - np.floor(order / big) * big
            start = np.cumsum(pair_counts, axis=1) - pair_counts  # (n, P+1)
            kk = np.arange(self.n_dist)
            idx = start[:, :n_pairs, None] + kk[None, None, :]  # (n, P, n_dist)
            ok = kk[None, None, :] < pair_counts[:, :n_pairs, None]
            gathered = np.take_along_axis(sorted_d, np.minimum(idx, n_flat - 1).reshape(n_rows, -1), axis=1)
            dk = np.where(ok, gathered.reshape(n_rows, n_pairs, self.n_dist), far)
            close = row_bincount(np.where(d < self.close_cutoff, pid, n_pairs), n_pairs + 1)[:, :n_pairs]
        else:
            dk = np.full((n_rows, n_pairs, self.n_dist), far)
            close = np.zeros((n_rows, n_pairs), dtype=np.int64)
        feats += [dk.reshape(n_rows, -1), close]

        # Nearest-defect statistics per type and overall.
        nn_min_t = np.empty((n_rows, n_rules))
        nn_mean_t = np.empty((n_rows, n_rules))
        for r in range(n_rules):
            is_r = types == r
            nn_min_t[:, r] = np.where(is_r, nn, np.inf).min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                nn_mean_t[:, r] = np.where(is_r, nn, 0.0).sum(axis=1) / counts[:, r]
        nn_min_t[~np.isfinite(nn_min_t)] = far
        nn_mean_t[~np.isfinite(nn_mean_t)] = far
        with np.errstate(invalid="ignore", divide="ignore"):
            nn_all_min = np.where(mask, nn, np.inf).min(axis=1)
            nn_all_mean = np.where(mask, nn, 0.0).sum(axis=1) / n_def
            nn_all_max = np.where(mask, nn, -np.inf).max(axis=1)
        stats = np.stack([nn_all_min, nn_all_mean, nn_all_max], axis=1)
        stats[~np.isfinite(stats)] = far
        feats += [nn_min_t, nn_mean_t, stats]
        return np.concatenate([np.asarray(f, dtype=np.float64).reshape(n_rows, -1) for f in feats], axis=1)
