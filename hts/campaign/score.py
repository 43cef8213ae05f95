"""Scoring a trial's candidates: canonicalise, drop what is known, predict, measure the distance to
the targets, find each hit's motif; what every strategy stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hts.campaign.config import Campaign
from hts.campaign.motifs import hit_motifs
from hts.campaign.objective import distances
from hts.campaign.store import CandidateRecord, format_defects
from hts.canonical import canonical_hashes, canonicalize, hash_hex
from hts.defects import ConfigBatch
from hts.errors import ConfigError, HTSError


class Scorer(Protocol):
    """Anything that predicts a batch: ``score(batch)`` returns an object with ``targets``, ``mean``
    (N, T) and ``std`` (N, T) (e.g. :class:`surrogate.model.Prediction`)."""

    def score(self, batch: ConfigBatch) -> Any: ...


@dataclass
class ScoredBatch:
    """What :func:`score_new` found in a trial's batch."""

    records: list[CandidateRecord]  # the new candidates, scored
    n_hits: int
    distances: np.ndarray  # (len(records),) distances of the new candidates
    first_hit: int | None  # 1-based position of the first hit among the batch's samples
    rows: list[int]  # the rows of the batch the records come from


def score_new(batch: ConfigBatch, archive: set[str], scorer: Scorer, campaign: Campaign) -> ScoredBatch:
    """Canonicalise, drop duplicates (in the batch and in the archive), score what is new."""
    if len(batch) == 0:
        return ScoredBatch([], 0, np.zeros(0), None, [])
    canon = canonicalize(batch)
    hexes = [hash_hex(h) for h in canonical_hashes(canon)]
    seen: set[str] = set()
    rows = []
    for i, h in enumerate(hexes):
        if h in archive or h in seen:
            continue
        seen.add(h)
        rows.append(i)
    if not rows:
        return ScoredBatch([], 0, np.zeros(0), None, [])
    new = canon.take(rows)
    try:
        pred = scorer.score(new)
    except HTSError:
        raise
    except Exception as exc:  # a scoring back end failing is reported, not swallowed
        raise ConfigError(f"scoring failed: {type(exc).__name__}: {exc}") from exc
    d, _ = distances(pred.mean, list(pred.targets), campaign.targets)
    configs = new.to_configs()
    motifs = hit_motifs(new, d == 0.0, scorer, campaign)
    records = []
    for j, (i, c) in enumerate(zip(rows, configs, strict=True)):
        preds = {t: (float(pred.mean[j, k]), float(pred.std[j, k])) for k, t in enumerate(pred.targets)}
        records.append(
            CandidateRecord(
                hash=hexes[i],
                defects=format_defects(c.defects),
                n_defects=c.n_defects,
                predictions=preds,
                distance=float(d[j]),
                hit=bool(d[j] == 0.0),
                **motifs.get(j, {}),
            )
        )
    hit_rows = [i for i, dj in zip(rows, d, strict=True) if dj == 0.0]
    return ScoredBatch(records, len(hit_rows), d, hit_rows[0] + 1 if hit_rows else None, rows)
