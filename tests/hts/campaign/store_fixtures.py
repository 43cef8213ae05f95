"""A small but complete campaign store written directly (no campaign run), and ways to damage it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from hts.campaign import integrity
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, sqlite_url

CAMPAIGN_YAML = """\
name: stored
host: {material: MoS2, supercell: [4, 4, 1]}
targets:
  homo_lumo_gap: {value: 0.6, tolerance: 0.15}
strategy: random
budget: {iterations: 2, trials_per_iteration: 2, samples_per_trial: 32}
dask: {enabled: false}
"""


def write_store(path: Path, trials: int = 4, per_trial: int = 40, ax: bool = True) -> Path:
    """A store at ``path`` with ``trials`` trials of ``per_trial`` candidates each (and Ax snapshots),
    closed (its WAL checkpointed into the file)."""
    store = CampaignStore(sqlite_url(path))
    try:
        store.set_meta("campaign_yaml", CAMPAIGN_YAML)
        for t in range(trials):
            cands = [
                CandidateRecord(
                    hash=f"{t:04x}{i:012x}",
                    defects=f"{i % 48}:VAC,{(i * 7 + t) % 48 + 1}:Se",
                    n_defects=2,
                    predictions={"homo_lumo_gap": (0.5 + 0.01 * i, 0.05)},
                    distance=0.01 * i,
                    hit=i % 5 == 0,
                )
                for i in range(per_trial)
            ]
            trial = TrialRecord(
                trial_id=t,
                iteration=t // 2,
                strategy="random",
                knobs={"temperature": 1.0, "filler": "x" * 200},
                n_generated=per_trial,
                n_valid=per_trial,
                n_new=per_trial,
                n_hits=sum(c.hit for c in cands),
                metrics={"score": 0.1 * t},
                wall_time_s=0.5,
                extra={"note": "y" * 300},
            )
            snapshot = json.dumps({"trial": t, "state": "z" * 500}) if ax else None
            store.record_trial(trial, cands, snapshot)
    finally:
        store.close()
    return path


def digest(path: Path) -> str:
    """The bytes of a store file (and of its WAL, if any), hashed: equal means nothing was written."""
    h = hashlib.sha256(path.read_bytes())
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        h.update(wal.read_bytes())
    return h.hexdigest()


def run_sql(path: Path, *statements: str) -> None:
    """Run ``statements`` on the SQLite file at ``path`` and commit: an edit behind the store's back (the
    rows only; the row digests are left as they are)."""
    con = sqlite3.connect(path)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()


def damage(path: Path, offset: int, payload: bytes) -> None:
    """Overwrite ``payload`` at ``offset`` (bytes past the end extend the file)."""
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(payload)


def reseal(path: Path) -> None:
    """Recompute every row digest of the store at ``path``: after a raw edit that stands for a store
    whose values are intact but unusable (an Ax snapshot another Ax version wrote), not for damage."""
    import sqlalchemy as sa

    store = CampaignStore(sqlite_url(path))
    try:
        with store.engine.begin() as conn:
            for spec in integrity.SEALED:
                if spec.table not in store.tables:
                    continue
                keys = set(conn.execute(sa.text(f"SELECT DISTINCT {spec.group} FROM {spec.table}")).scalars())
                old = conn.execute(sa.text(f"SELECT grp FROM {integrity.DIGESTS} WHERE tbl = :t"), {"t": spec.table})
                keys |= {int(g) if g.isdigit() else g for g in old.scalars()}
                for key in keys:
                    integrity.seal(conn, store.tables, spec.unit, key)
    finally:
        store.close()


PAGE = 4096
