"""Defect motifs: what a hit reduces to once its spectator defects are stripped.

Many hits are one defect decorated with spectators: an S vacancy with a W on a far Mo site and a Se on
a far S site is predicted (and computed) with the gap of the bare S vacancy. A DFT group wants the
vacancy once, not every placement of its spectators, so results are counted, ranked and exported per
motif.

A hit's **core** is what remains after removing its defects one at a time, keeping each removal that
leaves the surrogate's prediction inside every target window widened by :data:`SLACK` of its
half-width, and undoing the others. Removal order
(fixed, so the core of a configuration is reproducible): substitutions before vacancies (isovalent
substitutions are the usual spectators), within each kind the defect farthest from its nearest other
defect first, ties by site index. A core keeps at least one defect. The **motif** is the canonical
hash of the core under the host's symmetry (:mod:`hts.canonical`), so a core placed anywhere in the
cell, rotated or mirrored, is one motif. The removed defects are the hit's **spectators**.

Why the slack: on the demo campaign (HOMO/LUMO window, 746 hits) strict windows gave 14 motifs, 13 of
them an S vacancy plus one Se whose removal moved the predicted LUMO by less than 0.05 eV across the
window's edge (the labels put such isovalent spectators at < 0.01 eV); with the slack they are the S
vacancy, one motif (BENCHMARKS.md, "Distinct motifs").

Everything is vectorised over a batch: one surrogate call per removal step (at most the largest
defect count of the batch), each on the hits that still have a defect to try at that step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hts.campaign.config import Campaign
from hts.campaign.objective import distances
from hts.campaign.store import format_defects
from hts.canonical import canonical_hashes, hash_hex
from hts.defects import PAD, ConfigBatch
from hts.hosts import VAC, Host

SLACK = 0.25
"""A removal that keeps the prediction within this fraction of each window's half-width outside the
window still counts as inside (see the module docstring)."""

ADJACENT_FACTOR = 1.8
"""Defects closer than this many times the host's shortest site-site distance are adjacent (first
neighbour shells: Mo-S, S-S and Mo-Mo in MoS2; B-N and B-B in h-BN)."""

Inside = Callable[[ConfigBatch], np.ndarray]
"""Whether the surrogate puts each configuration of a batch inside every target window: (N,) bool."""


@dataclass(frozen=True)
class Motifs:
    """Cores of a batch of hits: ``keep`` (N, K) marks the core's defects among each row's columns."""

    batch: ConfigBatch
    keep: np.ndarray

    @property
    def cores(self) -> ConfigBatch:
        return masked(self.batch, self.keep)

    @property
    def spectators(self) -> ConfigBatch:
        return masked(self.batch, self.batch.mask & ~self.keep)

    def hashes(self) -> list[str]:
        """Motif hash (the core's canonical hash, 16 hex digits) of each row."""
        if len(self.batch) == 0:
            return []
        return [hash_hex(h) for h in canonical_hashes(self.cores)]


def masked(batch: ConfigBatch, keep: np.ndarray) -> ConfigBatch:
    """``batch`` with only the defects where ``keep`` is true (rows re-sorted, padding last)."""
    sites = np.where(keep, batch.sites, PAD).astype(np.int32)
    return ConfigBatch(batch.host, sites, batch.codes.copy()).sorted_rows()


def removal_order(batch: ConfigBatch) -> np.ndarray:
    """(N, K) column indices of each row in the order its defects are tried for removal (padding last)."""
    host = batch.host
    mask = batch.mask
    safe = np.where(mask, batch.sites, 0)
    dist = host.distance_matrix[safe[:, :, None], safe[:, None, :]].astype(float)  # (N, K, K)
    both = mask[:, :, None] & mask[:, None, :]
    k = mask.shape[1]
    dist = np.where(both & ~np.eye(k, dtype=bool)[None], dist, np.inf)
    isolation = dist.min(axis=2)  # distance to the nearest other defect (inf when alone)
    isolation_cents = np.round(np.minimum(isolation, 9_999.0) * 100).astype(np.int64)  # 0.01 A, capped
    vacancy = (batch.codes == host.code_of(VAC)).astype(np.int64)
    # One integer key per defect, smallest first: padding last, substitutions before vacancies, the
    # most isolated first, then by site index.
    key = (~mask).astype(np.int64) * 10**13 + vacancy * 10**12 + (10**6 - isolation_cents) * 10**3 + safe
    return np.argsort(key, axis=1, kind="stable")


def find_motifs(batch: ConfigBatch, inside: Inside) -> Motifs:
    """The cores of ``batch``'s rows (hits: ``inside(batch)`` is true for every row); see the module
    docstring for the definition and the removal order."""
    keep = batch.mask.copy()
    if len(batch) == 0:
        return Motifs(batch, keep)
    order = removal_order(batch)
    rows_all = np.arange(len(batch))
    for step in range(order.shape[1]):
        col = order[:, step]
        can = keep[rows_all, col] & (keep.sum(axis=1) > 1)
        rows = np.flatnonzero(can)
        if rows.size == 0:
            continue
        trial = keep[rows].copy()
        trial[np.arange(rows.size), col[rows]] = False
        ok = np.asarray(inside(masked(batch.take(rows), trial)), dtype=bool)
        keep[rows[ok], col[rows[ok]]] = False
    return Motifs(batch, keep)


def _notation(host: Host, site: int, species: str) -> str:
    """Kroeger-Vink-like name of one defect: ``V_S`` (vacancy), ``W_Mo`` (W on a Mo site)."""
    element = host.site_species[site]
    return f"V_{element}" if species == VAC else f"{species}_{element}"


def describe_core(host: Host, defects: list[tuple[int, str]]) -> str:
    """A core in words: ``V_S``, ``V_Mo + 2 V_S (adjacent)``, ``2 V_S (apart)``.

    Defect types are counted in the order vacancies, then substitutions (alphabetical within each);
    with more than one defect, ``adjacent`` when they form one cluster of neighbours
    (:data:`ADJACENT_FACTOR`), ``apart`` otherwise."""
    if not defects:
        return "pristine"
    counts: dict[str, int] = {}
    for site, sp in defects:
        name = _notation(host, site, sp)
        counts[name] = counts.get(name, 0) + 1
    names = sorted(counts, key=lambda n: (not n.startswith("V_"), n))
    text = " + ".join(f"{counts[n]} {n}" if counts[n] > 1 else n for n in names)
    if len(defects) == 1:
        return text
    return f"{text} ({'adjacent' if connected(host, [s for s, _ in defects]) else 'apart'})"


def connected(host: Host, sites: list[int]) -> bool:
    """Whether ``sites`` form one cluster under the adjacency cutoff (:data:`ADJACENT_FACTOR`)."""
    dist = host.distance_matrix
    cutoff = ADJACENT_FACTOR * float(dist[dist > 0].min())
    seen, todo = {sites[0]}, [sites[0]]
    while todo:
        s = todo.pop()
        for t in sites:
            if t not in seen and dist[s, t] <= cutoff:
                seen.add(t)
                todo.append(t)
    return len(seen) == len(sites)


class _Scorer(Protocol):
    def score(self, batch: ConfigBatch) -> Any: ...


def surrogate_inside(scorer: _Scorer, campaign: Campaign, slack: float = SLACK) -> Inside:
    """Whether the surrogate's predicted means put each configuration inside every target window,
    each widened by ``slack`` of its half-width."""

    def inside(batch: ConfigBatch) -> np.ndarray:
        pred = scorer.score(batch)
        _, excess = distances(pred.mean, list(pred.targets), campaign.targets)
        return np.asarray((excess <= slack).all(axis=1))

    return inside


def hit_motifs(batch: ConfigBatch, hit: np.ndarray, scorer: _Scorer, campaign: Campaign) -> dict[int, dict[str, str]]:
    """``{row: {motif, core, spectators}}`` for the hit rows of ``batch``, as stored with each hit."""
    rows = np.flatnonzero(hit)
    if rows.size == 0:
        return {}
    found = find_motifs(batch.take(rows), surrogate_inside(scorer, campaign))
    cores, spectators = found.cores.to_configs(), found.spectators.to_configs()
    return {
        int(r): {"motif": m, "core": format_defects(c.defects), "spectators": format_defects(s.defects)}
        for r, m, c, s in zip(rows, found.hashes(), cores, spectators, strict=True)
    }
