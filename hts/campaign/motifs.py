"""Defect motifs: what a hit reduces to once its spectator defects are stripped.

Many hits are one defect decorated with spectators: an S vacancy with a W on a far Mo site and a Se on
a far S site is predicted (and computed) with the gap of the bare S vacancy. A DFT group wants the
vacancy once, not every placement of its spectators, so results are counted, ranked and exported per
motif.

A hit's **core** is what remains after removing its defects one at a time, keeping each removal that
leaves the surrogate's prediction inside every target window widened by :data:`SLACK` of its
half-width, and undoing the others. Removal order (fixed, so the core of a configuration is
reproducible): substitutions before vacancies (isovalent substitutions are the usual spectators),
within each kind the defect farthest from its nearest other defect first, ties by site index. Sweeps repeat
until one removes nothing (a defect that was needed while others were present may not be once they
are gone). A core keeps at least one defect. The removed defects are the hit's **spectators**.

The **motif** is the core's multiset of **clusters**: defects within :data:`ADJACENT_FACTOR` times the
host's shortest site-site distance of each other (the first neighbour shells) form one cluster, and
each cluster is hashed canonically under the host's symmetry (:mod:`hts.canonical`). Two S vacancies
4.5 A apart are one cluster (their levels interact: GFN1-xTB gap 0.50 eV against 0.94 eV for one);
two S vacancies 10 A apart are two isolated vacancies wherever they sit, so "3 V_S (apart)" is one
motif and not one per relative placement, of which an 8x8 cell has hundreds.

Why the slack: on the demo campaign (HOMO/LUMO window, 746 hits) strict windows gave 14 motifs, 13 of
them an S vacancy plus one Se whose removal moved the predicted LUMO by less than 0.05 eV across the
window's edge (the labels put such isovalent spectators at < 0.01 eV); with the slack they are the S
vacancy, one motif (BENCHMARKS.md, "Distinct motifs").

Everything is vectorised over a batch: one surrogate call per removal step (at most the largest
defect count of the batch), each on the hits that still have a defect to try at that step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hts.campaign.config import Campaign
from hts.campaign.objective import distances
from hts.campaign.store import format_defects
from hts.canonical import canonical_hashes, hash_hex
from hts.defects import PAD, ConfigBatch, DefectConfiguration
from hts.hosts import VAC, Host

SLACK = 0.25
"""A removal that keeps the prediction within this fraction of each window's half-width outside the
window still counts as inside (see the module docstring)."""

ADJACENT_FACTOR = 1.9
"""Defects within this many times the host's shortest site-site distance are adjacent: the first
neighbour shells (MoS2: Mo-S 2.42 A, S-S 3.13 / 3.19 / 4.47 A, Mo-Mo 3.19 A, not the 5.5 A shells;
h-BN: B-N 1.45 A and B-B 2.51 A)."""

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
        """Motif hash of each row: the sorted canonical hashes of its core's clusters, hashed (16 hex)."""
        if len(self.batch) == 0:
            return []
        clusters = [clusters_of(c.host, c.defects) for c in self.cores.to_configs()]
        flat = [cl for row in clusters for cl in row]
        codes = [hash_hex(h) for h in canonical_hashes(ConfigBatch.from_configs(flat))]
        out, i = [], 0
        for row in clusters:
            parts = sorted(codes[i : i + len(row)])
            i += len(row)
            out.append(parts[0] if len(parts) == 1 else _combine(parts))
        return out


def _combine(parts: list[str]) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def clusters_of(host: Host, defects: tuple[tuple[int, str], ...]) -> list[DefectConfiguration]:
    """The clusters of adjacent defects (:data:`ADJACENT_FACTOR`), each as a configuration."""
    dist = host.distance_matrix
    cutoff = adjacency_cutoff(host)
    groups: list[list[tuple[int, str]]] = []
    for site, sp in defects:
        joined = [g for g in groups if any(dist[site, t] <= cutoff for t, _ in g)]
        merged = [(site, sp)] + [d for g in joined for d in g]
        groups = [g for g in groups if g not in joined] + [merged]
    return [DefectConfiguration.from_mapping(host, g) for g in groups]


def adjacency_cutoff(host: Host) -> float:
    """Distance (A) within which two defects are adjacent."""
    dist = host.distance_matrix
    return ADJACENT_FACTOR * float(dist[dist > 0].min())


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
    todo = np.ones(len(batch), dtype=bool)  # rows whose last sweep removed something
    while todo.any():
        removed = np.zeros(len(batch), dtype=bool)
        for step in range(order.shape[1]):
            col = order[:, step]
            rows = np.flatnonzero(todo & keep[rows_all, col] & (keep.sum(axis=1) > 1))
            if rows.size == 0:
                continue
            trial = keep[rows].copy()
            trial[np.arange(rows.size), col[rows]] = False
            ok = np.asarray(inside(masked(batch.take(rows), trial)), dtype=bool)
            keep[rows[ok], col[rows[ok]]] = False
            removed[rows[ok]] = True
        todo = removed
    return Motifs(batch, keep)


def describe_core(host: Host, defects: list[tuple[int, str]]) -> str:
    """A core in words: ``V_S``, ``V_Mo + 2 V_S (adjacent)`` (one cluster), ``3 V_S (apart)``
    (isolated defects), ``V_S + [V_Mo + V_S]`` (isolated defects, then clusters in brackets).

    Defect types are counted in the order vacancies, then substitutions (alphabetical within each)."""
    if not defects:
        return "pristine"
    clusters = clusters_of(host, tuple(defects))
    if len(clusters) == 1:
        text = _counted(host, list(clusters[0].defects))
        return text if len(defects) == 1 else f"{text} (adjacent)"
    if all(c.n_defects == 1 for c in clusters):
        return f"{_counted(host, list(defects))} (apart)"
    isolated = [d for c in clusters if c.n_defects == 1 for d in c.defects]
    groups = sorted(f"[{_counted(host, list(c.defects))}]" for c in clusters if c.n_defects > 1)
    head = [_counted(host, isolated)] if isolated else []
    return " + ".join([*head, *groups])


def _counted(host: Host, defects: list[tuple[int, str]]) -> str:
    counts: dict[str, int] = {}
    for site, sp in defects:
        name = _notation(host, site, sp)
        counts[name] = counts.get(name, 0) + 1
    names = sorted(counts, key=lambda n: (not n.startswith("V_"), n))
    return " + ".join(f"{counts[n]} {n}" if counts[n] > 1 else n for n in names)


def _notation(host: Host, site: int, species: str) -> str:
    """Kroeger-Vink-like name of one defect: ``V_S`` (vacancy), ``W_Mo`` (W on a Mo site)."""
    element = host.site_species[site]
    return f"V_{element}" if species == VAC else f"{species}_{element}"


class _Scorer(Protocol):
    def score(self, batch: ConfigBatch) -> Any: ...


def surrogate_inside(
    scorer: _Scorer, campaign: Campaign, slack: float = SLACK, shift: Mapping[str, float] | None = None
) -> Inside:
    """Whether the surrogate's predicted means, plus ``shift`` per target (none: 0), put each
    configuration inside every target window, each widened by ``slack`` of its half-width."""

    def inside(batch: ConfigBatch) -> np.ndarray:
        pred = scorer.score(batch)
        names = list(pred.targets)
        mean = pred.mean + np.array([(shift or {}).get(t, 0.0) for t in names])
        _, excess = distances(mean, names, campaign.targets)
        return np.asarray((excess <= slack).all(axis=1))

    return inside


def verified_motif(
    config: DefectConfiguration, measured: Mapping[str, float], scorer: _Scorer, campaign: Campaign
) -> dict[str, str]:
    """``{motif, core, spectators}`` of a candidate that the oracle puts inside every target window
    though the surrogate did not (a near miss confirmed): the same stripping as a hit's, with the
    surrogate's predictions shifted by the candidate's own residual (``measured`` - predicted) per
    target, i.e. removing a spectator is assumed to leave the surrogate's error as it is."""
    batch = ConfigBatch.from_configs([config])
    pred = scorer.score(batch)
    shift = {t: float(measured[t]) - float(pred.mean[0, k]) for k, t in enumerate(pred.targets) if t in measured}
    found = find_motifs(batch, surrogate_inside(scorer, campaign, shift=shift))
    (core,), (spectators,) = found.cores.to_configs(), found.spectators.to_configs()
    return {
        "motif": found.hashes()[0],
        "core": format_defects(core.defects),
        "spectators": format_defects(spectators.defects),
    }


def near_miss_groups(batch: ConfigBatch) -> list[str]:
    """A group key per row for candidates without a motif (the surrogate puts them outside a window, so
    they have no core): their defects per type, adjacent vacancy pairs and largest vacancy cluster
    (:func:`surrogate.error_model.descriptors`). Placements of one make-up and clustering share the
    surrogate's error, so the oracle's acquisition counts them as one group, like a hit's motif."""
    from surrogate.error_model import descriptors

    if len(batch) == 0:
        return []
    return ["near-miss " + "-".join(str(int(v)) for v in row) for row in descriptors(batch)]


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
