"""The campaign's durable store: a real database (SQLite by default, any SQLAlchemy URL).

Every trial is committed in one transaction together with all its scored candidates and the Ax
state after it, so a campaign killed at any moment (SIGKILL included) loses at most the trial in
flight, and the archive and the optimiser never disagree. SQLite runs in WAL mode with full
synchronous commits.

Tables: ``meta`` (key/value: campaign file, versions, git hash, seeds), ``trials`` (knobs, counts,
metrics), ``candidates`` (canonical hash, defects, predictions, uncertainty, distance, hit),
``ax_state`` (JSON snapshot of the Ax client after each trial), ``oracle`` (verification results).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hts.errors import StoreError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass
class CandidateRecord:
    """One scored candidate as stored."""

    hash: str
    defects: str  # "site:species,site:species" of the canonical representative
    n_defects: int
    predictions: dict[str, tuple[float, float]]  # property -> (mean, std)
    distance: float
    hit: bool


@dataclass
class TrialRecord:
    """One trial: the knobs it ran with, what it produced and the metrics given to Ax."""

    trial_id: int
    iteration: int
    strategy: str
    knobs: dict[str, Any]
    n_generated: int
    n_valid: int
    n_new: int
    n_hits: int
    metrics: dict[str, float]
    wall_time_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


class CampaignStore:
    """SQLAlchemy-backed store of one campaign."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.url = url
        try:
            self.engine = sa.create_engine(url, future=True)
            if self.engine.dialect.name == "sqlite":

                @sa.event.listens_for(self.engine, "connect")
                def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA synchronous=FULL")
                    cur.execute("PRAGMA busy_timeout=30000")
                    cur.close()

            md = sa.MetaData()
            self.meta = sa.Table(
                "meta", md, sa.Column("key", sa.String(200), primary_key=True), sa.Column("value", sa.Text)
            )
            self.trials = sa.Table(
                "trials",
                md,
                sa.Column("trial_id", sa.Integer, primary_key=True),
                sa.Column("iteration", sa.Integer, index=True),
                sa.Column("strategy", sa.String(32)),
                sa.Column("knobs", sa.Text),
                sa.Column("n_generated", sa.Integer),
                sa.Column("n_valid", sa.Integer),
                sa.Column("n_new", sa.Integer),
                sa.Column("n_hits", sa.Integer),
                sa.Column("metrics", sa.Text),
                sa.Column("extra", sa.Text),
                sa.Column("wall_time_s", sa.Float),
                sa.Column("created", sa.Float),
            )
            self.candidates = sa.Table(
                "candidates",
                md,
                sa.Column("hash", sa.String(32), primary_key=True),
                sa.Column("eval_index", sa.Integer, index=True),
                sa.Column("trial_id", sa.Integer, index=True),
                sa.Column("iteration", sa.Integer),
                sa.Column("defects", sa.Text),
                sa.Column("n_defects", sa.Integer),
                sa.Column("predictions", sa.Text),
                sa.Column("distance", sa.Float, index=True),
                sa.Column("hit", sa.Boolean, index=True),
                sa.Column("created", sa.Float),
            )
            self.ax_state = sa.Table(
                "ax_state",
                md,
                sa.Column("trial_id", sa.Integer, primary_key=True),
                sa.Column("snapshot", sa.Text),
            )
            self.oracle = sa.Table(
                "oracle",
                md,
                sa.Column("hash", sa.String(32), primary_key=True),
                sa.Column("status", sa.String(32)),
                sa.Column("result", sa.Text),
                sa.Column("created", sa.Float),
            )
            md.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the campaign store {url}: {exc}") from None

    # -- meta -----------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        with self._begin() as conn:
            conn.execute(self.meta.delete().where(self.meta.c.key == key))
            conn.execute(self.meta.insert().values(key=key, value=text))

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(self.meta.select().where(self.meta.c.key == key)).first()
        return default if row is None else row.value

    # -- writes ---------------------------------------------------------------------------------
    def _begin(self) -> Any:
        import sqlalchemy as sa

        try:
            return self.engine.begin()
        except sa.exc.SQLAlchemyError as exc:  # pragma: no cover - connection errors
            raise StoreError(f"cannot write the campaign store {self.url}: {exc}") from None

    def record_trial(
        self, trial: TrialRecord, candidates: Sequence[CandidateRecord], ax_snapshot: str | None = None
    ) -> None:
        """Commit a trial, its new candidates and the Ax state after it, all or nothing."""
        import sqlalchemy as sa

        now = time.time()
        try:
            with self.engine.begin() as conn:
                start = conn.execute(sa.select(sa.func.count()).select_from(self.candidates)).scalar_one()
                conn.execute(
                    self.trials.insert().values(
                        trial_id=trial.trial_id,
                        iteration=trial.iteration,
                        strategy=trial.strategy,
                        knobs=json.dumps(trial.knobs, default=float),
                        n_generated=trial.n_generated,
                        n_valid=trial.n_valid,
                        n_new=trial.n_new,
                        n_hits=trial.n_hits,
                        metrics=json.dumps(trial.metrics),
                        extra=json.dumps(trial.extra, default=str),
                        wall_time_s=trial.wall_time_s,
                        created=now,
                    )
                )
                if candidates:
                    conn.execute(
                        self.candidates.insert(),
                        [
                            {
                                "hash": c.hash,
                                "eval_index": start + i,
                                "trial_id": trial.trial_id,
                                "iteration": trial.iteration,
                                "defects": c.defects,
                                "n_defects": c.n_defects,
                                "predictions": json.dumps(c.predictions),
                                "distance": c.distance,
                                "hit": bool(c.hit),
                                "created": now,
                            }
                            for i, c in enumerate(candidates)
                        ],
                    )
                if ax_snapshot is not None:
                    conn.execute(self.ax_state.insert().values(trial_id=trial.trial_id, snapshot=ax_snapshot))
        except sa.exc.IntegrityError as exc:
            raise StoreError(f"trial {trial.trial_id} or one of its candidates is already stored: {exc.orig}") from None
        except sa.exc.OperationalError as exc:
            raise StoreError(f"could not write trial {trial.trial_id} to {self.url} (disk full?): {exc.orig}") from None

    def record_oracle(self, hash_: str, status: str, result: dict[str, Any]) -> None:
        with self._begin() as conn:
            conn.execute(self.oracle.delete().where(self.oracle.c.hash == hash_))
            conn.execute(
                self.oracle.insert().values(
                    hash=hash_, status=status, result=json.dumps(result, default=float), created=time.time()
                )
            )

    # -- reads ----------------------------------------------------------------------------------
    def known_hashes(self) -> set[str]:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(self.candidates.c.hash)).scalars())

    def n_candidates(self) -> int:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self.candidates)).scalar_one())

    def n_evaluations(self) -> int:
        """Generated samples scored so far (valid ones, duplicates included), over all trials."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(self.trials.c.n_valid), 0))).scalar_one())

    def last_trial(self) -> tuple[int, int] | None:
        """(trial_id, iteration) of the newest stored trial."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(self.trials.c.trial_id, self.trials.c.iteration).order_by(self.trials.c.trial_id.desc())
            ).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def latest_ax_snapshot(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(self.ax_state.select().order_by(self.ax_state.c.trial_id.desc())).first()
        return None if row is None else row.snapshot

    def trials_frame(self) -> pd.DataFrame:
        import pandas as pd

        with self.engine.connect() as conn:
            df = pd.read_sql(self.trials.select().order_by(self.trials.c.trial_id), conn)
        for col in ("knobs", "metrics", "extra"):
            df[col] = df[col].map(json.loads)
        return df

    def candidates_frame(self, order_by_distance: bool = False, limit: int | None = None) -> pd.DataFrame:
        import pandas as pd

        q = self.candidates.select()
        q = (
            q.order_by(self.candidates.c.distance, self.candidates.c.eval_index)
            if order_by_distance
            else q.order_by(self.candidates.c.eval_index)
        )
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            df = pd.read_sql(q, conn)
        df["predictions"] = df["predictions"].map(json.loads)
        return df

    def oracle_frame(self) -> pd.DataFrame:
        import pandas as pd

        with self.engine.connect() as conn:
            df = pd.read_sql(self.oracle.select(), conn)
        df["result"] = df["result"].map(json.loads)
        return df

    def integrity_ok(self) -> bool:
        """``PRAGMA integrity_check`` on SQLite (always True for other back ends)."""
        import sqlalchemy as sa

        if self.engine.dialect.name != "sqlite":
            return True
        with self.engine.connect() as conn:
            return conn.execute(sa.text("PRAGMA integrity_check")).scalar_one() == "ok"

    def close(self) -> None:
        self.engine.dispose()


def format_defects(pairs: Iterable[tuple[int, str]]) -> str:
    """``"3:VAC,70:Se"``: the stored text form of a configuration's defects."""
    return ",".join(f"{s}:{sp}" for s, sp in pairs)


def parse_defects(text: str) -> list[tuple[int, str]]:
    """Inverse of :func:`format_defects`."""
    if not text:
        return []
    out = []
    for part in text.split(","):
        site, sp = part.split(":")
        out.append((int(site), sp))
    return out
