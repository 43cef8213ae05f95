"""The candidates the oracle may verify while the loop runs, held in memory and read incrementally.

An :class:`OraclePool` keeps every stored candidate that the surrogate gives at least a minimum
probability of being inside every target window (the verifier's ``MIN_PROBABILITY``), with what the
acquisition needs of it (:mod:`hts.campaign.acquisition`): its predicted mean and standard deviation
per target, that probability, its group (its motif; for a near miss, which has none, its make-up and
vacancy clustering: :func:`hts.campaign.motifs.near_miss_groups`) and its place in
the ranking of ``hts status`` (distance, uncertainty, evaluation order). Candidates are only ever
inserted into the store, a trial's all at once and trial after trial, so each :meth:`OraclePool.update`
reads only the trials stored since the last one (:meth:`CampaignStore.candidates_since`, through the
``trial_id`` index); a pool made for a resumed campaign reads the whole store on its first update.

Memory is bounded: at most :data:`PER_GROUP` rows per group and :data:`TOTAL` in all, the best
probabilities first (ties in the store's evaluation order, so the pool, and the oracle's choice from
it, are the same for the same store). Verified candidates are dropped for good (:meth:`OraclePool.discard`);
the rows of groups already verified are the first to go when the total is exceeded, since the
acquisition credits a verified group and its other rows are worth nothing to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.campaign.config import Target

if TYPE_CHECKING:  # pragma: no cover
    from hts.campaign.store import CampaignStore
    from hts.hosts import Host

PER_GROUP = 16
"""Rows kept per group. The acquisition credits a group with its first verification, after which its
other rows add nothing, and a second row of a group in one batch adds only the chance that the first
fails, correlated with it (:data:`hts.campaign.acquisition.GROUP_CORRELATION`); a batch is at most the
oracle's free slots. Without the bound a motif placed hundreds of times (``screen`` stores up to
:data:`hts.campaign.screen.KEEP_PER_MOTIF` placements of each) would fill the pool with copies."""
TOTAL = 20_000
"""Rows kept in all: about 10 MB, and about five times the acquisition's own pool
(:data:`hts.campaign.acquisition.POOL_LIMIT`, the best probabilities among groups not yet verified), so
that the rows it looks at are kept even after many groups have been verified."""


@dataclass(slots=True)
class PoolRow:
    """One candidate of the pool."""

    hash: str
    defects: str
    eval_index: int
    distance: float
    uncertainty: float  # RMS of the targets' standard deviations in window half-widths, as hts status ranks
    mean: tuple[float, ...]  # per target, in the campaign's target order
    std: tuple[float, ...]
    probability: float  # of being inside every target window (marginal_hit_probability)
    group: str  # the motif, or for a near miss its make-up and clustering (near_miss_groups)
    motif: str | None  # None: the surrogate puts it outside a window (a near miss)

    def record(self) -> dict[str, Any]:
        """What the verifier submits: ``hash``, ``defects``, ``group``, ``motif``, ``probability``, ``mean``
        and ``std``."""
        return {
            "hash": self.hash,
            "defects": self.defects,
            "group": self.group,
            "motif": self.motif,
            "probability": self.probability,
            "mean": self.mean,
            "std": self.std,
        }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _best_first(row: PoolRow) -> tuple[float, int]:
    """The bounds' order: best probability first, ties in evaluation order."""
    return (-row.probability, row.eval_index)


def _ranked(row: PoolRow) -> tuple[bool, float, bool, float, int]:
    """The order of ``hts status`` (:meth:`CampaignResults.ranked`): distance, uncertainty, evaluation
    order, a missing (NaN) value after every number."""
    d, u = row.distance, row.uncertainty
    return (math.isnan(d), 0.0 if math.isnan(d) else d, math.isnan(u), 0.0 if math.isnan(u) else u, row.eval_index)


class OraclePool:
    """The candidates worth verifying (see the module docstring). ``targets``: the campaign's, in its
    order; ``minimum``: the probability a row needs to be kept."""

    def __init__(
        self,
        targets: Mapping[str, Target],
        minimum: float,
        host: Host,
        per_group: int = PER_GROUP,
        total: int = TOTAL,
    ) -> None:
        self.host = host
        self.targets = targets
        self.names = list(targets)
        self.windows = [targets[n].window for n in self.names]
        self.half = np.array([targets[n].half_width for n in self.names], dtype=float)
        self.minimum = minimum
        self.per_group = per_group
        self.total = total
        self.last_trial: int | None = None  # the newest trial read; None: nothing read yet
        self.rows: dict[str, PoolRow] = {}
        self.members: dict[str, list[str]] = {}  # group -> hashes of its rows
        self.dropped: set[str] = set()  # verified: never kept again
        self.spent: set[str] = set()  # groups with a verified candidate: evicted first
        self._order: list[PoolRow] | None = None  # the rows in ranked order, until they change

    def __len__(self) -> int:
        return len(self.rows)

    def update(self, store: CampaignStore) -> int:
        """Read the candidates of the trials stored since the last update and keep those worth verifying,
        within the bounds; returns how many candidates were read."""
        from hts.campaign.acquisition import marginal_hit_probability

        new = store.candidates_since(self.last_trial)
        if new.empty:
            return 0
        self.last_trial = int(new["trial_id"].max())
        preds = new["predictions"].tolist()
        mean = np.array([[d[n][0] for n in self.names] for d in preds], dtype=float)
        std = np.array([[d[n][1] for n in self.names] for d in preds], dtype=float)
        probability = marginal_hit_probability(mean, std, self.windows)
        uncertainty = np.sqrt(np.mean((std / self.half) ** 2, axis=1))
        hashes = new["hash"].astype(str).tolist()
        motifs = new["motif"].tolist()
        defects = new["defects"].tolist()
        eval_index = new["eval_index"].tolist()
        distance = new["distance"].to_numpy(dtype=float)
        touched: set[str] = set()
        keep = [i for i in np.flatnonzero(probability >= self.minimum) if hashes[i] not in self.dropped]
        motif_of = {i: None if _missing(motifs[i]) else str(motifs[i]) for i in keep}
        loose = [i for i in keep if motif_of[i] is None]
        family = dict(zip(loose, near_miss_groups_of(self.host, [str(defects[i]) for i in loose]), strict=True))
        for i in keep:
            h = hashes[i]
            motif = motif_of[i]
            group = family[i] if motif is None else motif
            self.rows[h] = PoolRow(
                h,
                str(defects[i]),
                int(eval_index[i]),
                float(distance[i]),
                float(uncertainty[i]),
                tuple(float(x) for x in mean[i]),
                tuple(float(x) for x in std[i]),
                float(probability[i]),
                group,
                motif,
            )
            self.members.setdefault(group, []).append(h)
            touched.add(group)
        for group in touched:
            self._bound_group(group)
        self._bound_total()
        self._order = None
        return len(new)

    def rescore(self, predict: Callable[[list[str]], tuple[np.ndarray, np.ndarray]]) -> int:
        """Replace every row's prediction by ``predict(defects)`` (mean and std, (N, T) in the campaign's
        target order), as after a refit of the surrogate: the rows' probabilities, distances and
        uncertainties follow, and rows that fall below the minimum go. Returns how many rows remain."""
        from hts.campaign.acquisition import marginal_hit_probability
        from hts.campaign.objective import distances

        rows = list(self.rows.values())
        if not rows:
            return 0
        mean, std = predict([r.defects for r in rows])
        probability = marginal_hit_probability(mean, std, self.windows)
        distance, _ = distances(mean, self.names, self.targets)
        uncertainty = np.sqrt(np.mean((std / self.half) ** 2, axis=1))
        for i, row in enumerate(rows):
            row.mean, row.std = tuple(float(x) for x in mean[i]), tuple(float(x) for x in std[i])
            row.probability, row.distance = float(probability[i]), float(distance[i])
            row.uncertainty = float(uncertainty[i])
        self._remove([r for r in rows if r.probability < self.minimum])
        self._order = None
        return len(self.rows)

    def discard(self, hash_: str, group: str) -> None:
        """``hash_`` (of ``group``) was verified: its row goes and never comes back, and ``group``'s
        rows are the first to go when the total is exceeded."""
        self.dropped.add(hash_)
        self.spent.add(group)
        if hash_ in self.rows:
            self._remove([self.rows[hash_]])

    def choices(self, exclude: Collection[str] = (), minimum: float = 0.0) -> list[PoolRow]:
        """The rows not in ``exclude`` with at least ``minimum`` probability, in the order of ``hts status``
        (the order the acquisition breaks its ties in)."""
        if self._order is None:
            self._order = sorted(self.rows.values(), key=_ranked)
        return [r for r in self._order if r.probability >= minimum and r.hash not in exclude]

    # -- bounds -------------------------------------------------------------------------------------
    def _bound_group(self, group: str) -> None:
        hashes = self.members[group]
        if len(hashes) > self.per_group:
            self._remove(sorted((self.rows[h] for h in hashes), key=_best_first)[self.per_group :])

    def _bound_total(self) -> None:
        if len(self.rows) > self.total:
            order = sorted(self.rows.values(), key=lambda r: (r.group in self.spent, *_best_first(r)))
            self._remove(order[self.total :])

    def _remove(self, rows: Iterable[PoolRow]) -> None:
        for row in rows:
            del self.rows[row.hash]
            hashes = self.members[row.group]
            hashes.remove(row.hash)
            if not hashes:
                del self.members[row.group]
        self._order = None


def batch_of(host: Host, defects: list[str]) -> Any:
    """The :class:`hts.defects.ConfigBatch` of candidates given by their stored defects text."""
    from hts.campaign.store import parse_defects
    from hts.defects import ConfigBatch, DefectConfiguration

    return ConfigBatch.from_configs([DefectConfiguration.from_mapping(host, parse_defects(d)) for d in defects])


def near_miss_groups_of(host: Host, defects: list[str]) -> list[str]:
    """:func:`hts.campaign.motifs.near_miss_groups` of candidates given by their stored defects text."""
    from hts.campaign.motifs import near_miss_groups

    if not defects:
        return []
    return near_miss_groups(batch_of(host, defects))
