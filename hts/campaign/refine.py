"""Surrogate-screened local search around proposed configurations (a benchmark variant).

Every configuration a proposer returns seeds ``per_seed`` random one-move neighbours: a defect moved
to another allowed site, changed into another allowed species, removed, or one added (within the
campaign's rules and defect-count bounds). The neighbours are scored by the surrogate at its full
speed; the hits among them and the :data:`KEEP_NEAREST` nearest misses join the proposal, which the
loop then canonicalises, de-duplicates and stores like any other. The question it answers: do the
neighbourhoods of an LLM's samples hold more new motifs per CPU-second than those of random ones
(``benchmarks/bench_motifs.py``, strategies ``llm-bo+refine`` and ``random+refine``)?
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hts.campaign.config import Campaign
from hts.campaign.objective import distances
from hts.campaign.proposers import Proposal, Proposer, allowed_codes, max_defects
from hts.defects import PAD, ConfigBatch
from hts.hosts import Host

KEEP_NEAREST = 64
"""Misses kept per trial from the neighbours, nearest to the targets first."""


def neighbours(
    batch: ConfigBatch, per_seed: int, allowed: np.ndarray, k_min: int, k_max: int, rng: np.random.Generator
) -> ConfigBatch:
    """``per_seed`` random one-move neighbours of every row of ``batch`` (rows sorted, padded)."""
    host = batch.host
    seeds = np.repeat(np.arange(len(batch)), per_seed)
    width = batch.sites.shape[1] + 1
    sites = np.full((seeds.size, width), PAD, dtype=np.int32)
    codes = np.zeros((seeds.size, width), dtype=np.int8)
    sites[:, :-1] = batch.sites[seeds]
    codes[:, :-1] = batch.codes[seeds]
    n = (sites != PAD).sum(axis=1)
    move = rng.integers(0, 4, size=seeds.size)  # 0 move, 1 change species, 2 remove, 3 add
    move = np.where((move == 2) & (n <= k_min), 0, move)
    move = np.where((move == 3) & (n >= k_max), 0, move)
    candidate_sites = np.flatnonzero(allowed.any(axis=1))
    for i in range(seeds.size):
        row_sites, row_codes, k = sites[i], codes[i], int(n[i])
        j = int(rng.integers(k)) if k else 0
        if move[i] == 2 and k:
            row_sites[j], row_codes[j] = row_sites[k - 1], row_codes[k - 1]
            row_sites[k - 1] = PAD
            continue
        taken = set(row_sites[:k].tolist())
        if move[i] == 1 and k:
            options = np.flatnonzero(allowed[row_sites[j]])
            options = options[options != row_codes[j]]
            if options.size:
                row_codes[j] = rng.choice(options)
            continue
        free = [
            s for s in rng.choice(candidate_sites, size=min(8, candidate_sites.size), replace=False) if s not in taken
        ]
        if not free:
            continue
        site = int(free[0])
        if move[i] == 0 and k:  # the defect's species must be allowed on its new site
            if allowed[site, row_codes[j]]:
                row_sites[j] = site
            continue
        if move[i] == 3 or not k:
            row_sites[k], row_codes[k] = site, rng.choice(np.flatnonzero(allowed[site]))
    out = ConfigBatch(host, sites, codes).sorted_rows()
    return out.take(out.validate())


class RefiningProposer:
    """Wraps a proposer: its samples plus the surrogate-screened neighbours (module docstring)."""

    def __init__(self, inner: Proposer, host: Host, campaign: Campaign, scorer: Any, per_seed: int = 256) -> None:
        self.inner = inner
        self.host = host
        self.campaign = campaign
        self.scorer = scorer
        self.per_seed = per_seed
        self.allowed = allowed_codes(host, campaign)
        self.k_min = max(1, campaign.defects.min_defects)
        self.k_max = max(self.k_min, max_defects(host, campaign))
        self.prompt_properties = getattr(inner, "prompt_properties", None)
        self.prompt_ranges = getattr(inner, "prompt_ranges", None)

    def propose(self, knobs: Mapping[str, Any], n: int, rng: np.random.Generator) -> Proposal:
        proposal = self.inner.propose(knobs, n, rng)
        if len(proposal.batch) == 0:
            return proposal
        near = neighbours(proposal.batch, self.per_seed, self.allowed, self.k_min, self.k_max, rng)
        if len(near) == 0:
            return proposal
        pred = self.scorer.score(near)
        d, _ = distances(pred.mean, list(pred.targets), self.campaign.targets)
        misses = np.flatnonzero(d > 0)
        keep = np.concatenate([np.flatnonzero(d == 0), misses[np.argsort(d[misses], kind="stable")[:KEEP_NEAREST]]])
        batch = ConfigBatch.concat(self.host, [proposal.batch, near.take(np.sort(keep))])
        stats = {**proposal.stats, "refine_scored": float(len(near)), "refine_hits": float((d == 0).sum())}
        return Proposal(batch, proposal.n_generated, stats)
