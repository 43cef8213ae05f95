"""Stores written before trials had a ``kind`` column and observations a table of their own.

Such a store kept a trial's kind as flags in its ``extra`` JSON (``scout``, ``exploit``, ``local``,
``probe_obs``) and the observations of a trial drawn in parts as lists there (``scout_obs``,
``probe_obs``: ``[setting, score, samples, hits]`` each). :func:`migrate` adds the column and fills both
from those fields once, when such a store is opened for writing (``run --resume``); read-only opens
(status, export, report) derive the kinds on the fly with :func:`legacy_kind`. This is the only
place that reads those fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hts.campaign.objective import score_sem


def legacy_kind(strategy: str, extra: dict[str, Any] | None) -> str:
    """The kind (:class:`hts.campaign.plan.TrialKind` value) of a trial stored with flags in ``extra``."""
    extra = extra or {}
    if strategy == "llm-bo":
        if extra.get("scout"):
            return "scout"
        if "probe_obs" in extra:
            return "probe"
        return "exploit" if extra.get("exploit") else "local" if extra.get("local") else "ax"
    return {"llm-fixed": "fixed", "screen": "screen"}.get(strategy, "random")


def legacy_observations(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The observations rows (:meth:`CampaignStore.observations_by_trial`'s table) of one stored trial
    row with ``extra`` flags (``knobs``, ``metrics``, ``extra`` as JSON text)."""
    extra = json.loads(row["extra"] or "{}")
    parts = extra.get("scout_obs") if extra.get("scout") else extra.get("probe_obs")
    if parts is None and "ax_trial" in extra:
        metrics = json.loads(row["metrics"] or "{}")
        parts = [[json.loads(row["knobs"]), metrics.get("score", 0.0), row["n_generated"], row["n_hits"]]]
        ax_indices: list[int | None] = [extra["ax_trial"]]
    else:
        ax_indices = [None] * len(parts or [])
    return [
        {
            "trial_id": row["trial_id"],
            "part": i,
            "parameters": json.dumps(params, default=float),
            "score": float(score),
            "sem": score_sem(int(hits), int(n)),
            "n_samples": int(n),
            "n_hits": int(hits),
            "ax_index": ax,
        }
        for i, ((params, score, n, hits), ax) in enumerate(zip(parts or [], ax_indices, strict=True))
    ]


def migrate(conn: Any, trials: Any, observations: Any, seal: Callable[[int], None]) -> None:
    """Add and fill the ``kind`` column of ``trials`` and fill ``observations`` from the ``extra``
    flags (SQLAlchemy connection in a transaction, the two tables); ``seal(trial_id)`` re-seals each
    trial's rows (:func:`hts.campaign.integrity.seal`) in the same transaction."""
    import sqlalchemy as sa

    conn.execute(sa.text("ALTER TABLE trials ADD COLUMN kind VARCHAR(16)"))
    rows = conn.execute(sa.text("SELECT * FROM trials ORDER BY trial_id")).mappings().all()
    for r in rows:
        kind = legacy_kind(r["strategy"], json.loads(r["extra"] or "{}"))
        conn.execute(trials.update().where(trials.c.trial_id == r["trial_id"]).values(kind=kind))
        obs = legacy_observations(dict(r))
        if obs:
            conn.execute(observations.insert(), obs)
        seal(int(r["trial_id"]))
