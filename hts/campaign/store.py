"""The campaign's durable store: a real database (SQLite by default, any SQLAlchemy URL).

Every trial is committed in one transaction together with all its scored candidates and the Ax
state after it, so a campaign killed at any moment (SIGKILL included) loses at most the trial in
flight, and the archive and the optimiser never disagree. SQLite runs in WAL mode with full
synchronous commits.

Tables: ``meta`` (key/value: campaign file, versions, git hash, seeds), ``trials`` (kind, knobs,
counts, metrics), ``observations`` (what each ``llm-bo`` trial, or each part of one, told Ax and the
incumbent: setting, score, standard error, samples, hits, Ax trial), ``candidates`` (canonical hash,
defects, predictions, uncertainty, distance, hit), ``ax_state`` (JSON snapshot of the Ax client after
each trial), ``oracle`` (verification results),
``motifs`` (for every hit: its motif hash, its core and its spectators, :mod:`hts.campaign.motifs`),
``row_digests`` (a checksum of each trial's rows, each oracle result and each setting, written in the
same transaction: :mod:`hts.campaign.integrity`).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hts.campaign import integrity
from hts.campaign.plan import Observation
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
    motif: str | None = None  # hits: canonical hash of the core (hts.campaign.motifs)
    core: str | None = None  # hits: the core's defects, "site:species,..."
    spectators: str | None = None  # hits: the defects stripped from it


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
    kind: str = "fixed"  # hts.campaign.plan.TrialKind: why the trial ran


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; ``None`` for other back ends and in-memory databases."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:  # an unparsable URL is reported when the engine is made
        return None
    db = u.database
    if u.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


SALVAGE_FLAG = "--salvage"  # `hts export` reads a damaged store with it (no check, read-only)


def damaged_store_error(path: str | Path, problem: str) -> StoreError:
    """The error for a store that fails its check: the file, the problem and what to do."""
    folder = Path(path).parent
    return StoreError(
        f"the campaign store {path} is damaged ({problem}); nothing more was read from it and nothing was "
        f"written to it. Restore {Path(path).name} from a backup of {folder}, or export what is still readable "
        f"with `hts export {folder} {SALVAGE_FLAG} --out DIR`"
    )


def check_sqlite_file(path: str | Path) -> integrity.Report:
    """``PRAGMA integrity_check`` of an SQLite file (its pages, and its indexes against its tables: a
    damaged index entry changes what a query through it reads), then its row digests (values changed
    inside records: :func:`hts.campaign.integrity.verify`), through a read-only connection (the file is
    never written, a WAL left by a killed run is read, not checkpointed; without a WAL the file is opened
    immutable, so that not even an empty WAL is created next to it). A :class:`StoreError` naming the
    file, and the table and trial that changed, if it fails. Returns what the digests covered (a store
    written before them has none: nothing checked)."""
    from urllib.parse import quote

    path = Path(path)
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    report = integrity.Report()
    try:
        con = sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True, timeout=30)
        con.text_factory = lambda b: b.decode("utf-8", "replace")  # a damaged schema need not be UTF-8
        try:
            rows = [str(r[0]) for r in con.execute("PRAGMA integrity_check(10)")]
            if rows == ["ok"]:
                report = integrity.verify_sqlite(con)
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(f"the campaign store {path} is locked by another process: {exc}") from None
        raise damaged_store_error(path, str(exc)) from None
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise damaged_store_error(path, str(exc)) from None
    except UnicodeDecodeError:  # SQLite's own message quotes a damaged schema that is not UTF-8
        raise damaged_store_error(path, "malformed database schema (not UTF-8)") from None
    except MemoryError:  # SQLITE_NOMEM: a damaged size field asks for more than any sound file would
        size = path.stat().st_size
        raise damaged_store_error(
            path, f"SQLite ran out of memory checking it, which a sound file of {size:,} bytes does not cause"
        ) from None
    if rows != ["ok"]:
        found = [" ".join(r.replace("*** in database main ***", "").split()) for r in rows[:3]]
        raise damaged_store_error(path, "; ".join(f for f in found if f) or "integrity_check found problems")
    if report.problems:
        raise damaged_store_error(path, "; ".join(report.problems))
    return report


def iso_times(values: Any) -> list[str | None]:
    """Unix times (the stored ``created``) as ISO 8601 UTC text, ``2026-12-07T00:41:48Z``."""
    out: list[str | None] = []
    for v in values:
        try:
            out.append(datetime.fromtimestamp(float(v), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        except (TypeError, ValueError, OverflowError, OSError):
            out.append(None)
    return out


_R = TypeVar("_R")


def _reads(what: str) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Reads of ``what`` that fail on a damaged store raise :class:`StoreError` naming the file."""

    def wrap(fn: Callable[..., _R]) -> Callable[..., _R]:
        @functools.wraps(fn)
        def reader(self: CampaignStore, *args: Any, **kwargs: Any) -> _R:
            import sqlalchemy as sa

            try:
                return fn(self, *args, **kwargs)
            except (ValueError, TypeError, KeyError) as exc:  # stored JSON or values that do not parse
                raise damaged_store_error(self.where, f"{what} do not parse: {type(exc).__name__}: {exc}") from None
            except (sa.exc.DBAPIError, sqlite3.Error, OSError) as exc:
                # pandas' DatabaseError (a read_sql that failed, an OSError) carries SQLAlchemy's as its cause
                cause = exc.__cause__ if type(exc).__module__.startswith("pandas") and exc.__cause__ else exc
                orig = getattr(cause, "orig", None) or cause
                text = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
                if isinstance(orig, sqlite3.OperationalError) and "no such" not in text:
                    raise StoreError(f"cannot read {what} from the campaign store {self.where}: {text}") from None
                if isinstance(orig, sqlite3.DatabaseError | sa.exc.DatabaseError):
                    hint = "; not a campaign store?" if "no such" in text else ""
                    raise damaged_store_error(self.where, f"{what}: {text}{hint}") from None
                raise StoreError(f"cannot read {what} from the campaign store {self.where}: {text}") from None

        return reader

    return wrap


def campaign_tables(md: Any) -> dict[str, Any]:
    """Define the store's tables (what each holds: the module's docstring) on SQLAlchemy metadata ``md``
    and return them by name: one schema for every back end, created and checked from the same
    definitions (the row digests cover each table's columns as defined here)."""
    import sqlalchemy as sa

    sa.Table("meta", md, sa.Column("key", sa.String(200), primary_key=True), sa.Column("value", sa.Text))
    _trial_tables(md)
    _candidate_tables(md)
    integrity.digest_table(md)
    return {t.name: t for t in md.sorted_tables}


def _trial_tables(md: Any) -> None:
    """``trials``, ``observations`` and ``ax_state`` on ``md``: what each trial ran with, told Ax and left Ax as."""
    import sqlalchemy as sa

    sa.Table(
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
        sa.Column("kind", sa.String(16)),
    )
    sa.Table(
        "observations",
        md,
        sa.Column("trial_id", sa.Integer, primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("parameters", sa.Text),
        sa.Column("score", sa.Float),
        sa.Column("sem", sa.Float),
        sa.Column("n_samples", sa.Integer),
        sa.Column("n_hits", sa.Integer),
        sa.Column("ax_index", sa.Integer),
    )
    sa.Table(
        "ax_state",
        md,
        sa.Column("trial_id", sa.Integer, primary_key=True),
        sa.Column("snapshot", sa.Text),
    )


def _candidate_tables(md: Any) -> None:
    """``candidates``, ``motifs`` and ``oracle`` on ``md``: every scored candidate, the motif of each hit and
    the verification results, all keyed by the candidate's canonical hash."""
    import sqlalchemy as sa

    sa.Table(
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
    sa.Table(
        "motifs",
        md,
        sa.Column("hash", sa.String(32), primary_key=True),
        sa.Column("motif", sa.String(32), index=True),
        sa.Column("core", sa.Text),
        sa.Column("spectators", sa.Text),
    )
    sa.Table(
        "oracle",
        md,
        sa.Column("hash", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(32)),
        sa.Column("result", sa.Text),
        sa.Column("created", sa.Float),
    )


class CampaignStore:
    """SQLAlchemy-backed store of one campaign.

    ``check``: run ``PRAGMA integrity_check`` (SQLite) and verify the row digests before anything else
    touches the file, and raise a :class:`StoreError` naming it (and the table and trial that changed)
    and what to do if it fails (resume, status, export and report open with it: :meth:`open`);
    :attr:`integrity` is what the digests covered. ``create``: make the file and tables when missing (a
    new campaign, sealed from the start: :mod:`hts.campaign.integrity`). ``readonly``: never write
    (SQLite opened with ``mode=ro``; tables are not created).
    """

    def __init__(self, url: str, *, check: bool = False, create: bool = True, readonly: bool = False) -> None:
        import sqlalchemy as sa

        self.url = url
        self.path = sqlite_path(url)
        self.readonly = readonly
        self.integrity: integrity.Report | None = None  # what the check's row digests covered
        if self.path is not None:
            self._check_file(self.path, check=check, create=create)
        try:
            self.engine = self._make_engine()
            md = sa.MetaData()
            self._bind_tables(campaign_tables(md))
            if check and self.path is None:  # another back end: no integrity_check, the digests still
                self.check()
            if not readonly:
                self._create_tables(md)
            self.legacy = self._lacks_kind()
            if self.legacy and not readonly:
                self._migrate()
        except sa.exc.SQLAlchemyError as exc:
            raise self._open_error(exc) from None

    def _check_file(self, path: Path, *, check: bool, create: bool) -> None:
        """Before an engine touches the SQLite file: refuse a folder, and a missing file that this open may
        not create; with ``check``, run :func:`check_sqlite_file` on an existing one."""
        if path.is_dir():
            raise StoreError(f"the campaign store {path} is a folder, expected an SQLite file")
        if not path.exists() and (self.readonly or not create):
            raise StoreError(f"no campaign store at {path} (the file does not exist)")
        if check and path.exists():
            self.integrity = check_sqlite_file(path)

    def _make_engine(self) -> Any:
        """The SQLAlchemy engine: a read-only SQLite store through a ``mode=ro`` URI (never written); a
        writable one in WAL mode with full synchronous commits (a killed run loses at most its open trial)."""
        import sqlalchemy as sa

        engine_url = self.url
        if self.readonly and self.path is not None:
            from urllib.parse import quote

            engine_url = f"sqlite:///file:{quote(str(self.path.resolve()))}?mode=ro&uri=true"
        engine = sa.create_engine(engine_url, future=True)
        if engine.dialect.name == "sqlite":
            readonly = self.readonly

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                if not readonly:
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

        return engine

    def _bind_tables(self, tables: dict[str, Any]) -> None:
        """Keep the tables of :func:`campaign_tables`, by name and each as an attribute."""
        self.tables = tables
        self.meta = tables["meta"]
        self.trials = tables["trials"]
        self.observations = tables["observations"]
        self.candidates = tables["candidates"]
        self.ax_state = tables["ax_state"]
        self.motifs = tables["motifs"]
        self.oracle = tables["oracle"]
        self.digests = tables[integrity.DIGESTS]

    def _create_tables(self, md: Any) -> None:
        """Create the tables that are missing; a new store is sealed from the start (its ``meta`` says so,
        and from then on a group of rows without its digest is damage: :mod:`hts.campaign.integrity`)."""
        import sqlalchemy as sa

        with self.engine.begin() as conn:
            new = not sa.inspect(conn).has_table("trials")
            md.create_all(conn)
            if new:
                self._put_meta(conn, integrity.MARKER, "1")

    def _open_error(self, exc: Exception) -> StoreError:
        """The :class:`StoreError` for an SQLAlchemy error while opening: a file that SQLite reads as no
        sound database is named damaged (with what to do); anything else (locked, unreachable) is not."""
        import sqlalchemy as sa

        if (
            isinstance(exc, sa.exc.DatabaseError)
            and not isinstance(exc, sa.exc.OperationalError)
            and self.path is not None
        ):
            return damaged_store_error(self.path, str(exc.orig))
        return StoreError(f"cannot open the campaign store {self.url}: {exc}")

    def _lacks_kind(self) -> bool:
        """Whether the trials table predates its ``kind`` column (:mod:`store_legacy`); a schema too
        damaged to read says no here (a salvage open must still open)."""
        import sqlalchemy as sa

        try:
            inspector = sa.inspect(self.engine)
            if not inspector.has_table("trials"):
                return False
            return "kind" not in {c["name"] for c in inspector.get_columns("trials")}
        except (sa.exc.DatabaseError, UnicodeDecodeError):  # damage: named by the reads that meet it
            return False

    def _migrate(self) -> None:
        """Bring a store written before trial kinds were a column up to date (:mod:`store_legacy`)."""
        from hts.campaign.store_legacy import migrate

        with self.engine.begin() as conn:
            migrate(conn, self.trials, self.observations, lambda t: integrity.seal(conn, self.tables, "trial", t))
        self.legacy = False

    @classmethod
    def open(cls, url: str, *, check: bool = True, readonly: bool = True) -> CampaignStore:
        """An existing store, checked (``PRAGMA integrity_check``, row digests) and read-only unless told otherwise:
        what ``hts status``, ``export`` and ``report`` read. ``check=False`` reads a damaged store for
        salvage (reads that hit damage still raise :class:`StoreError`)."""
        return cls(url, check=check, create=False, readonly=readonly)

    @property
    def where(self) -> str:
        """The store's file (SQLite) or URL, for messages."""
        return str(self.path) if self.path is not None else self.url

    def check(self) -> None:
        """``PRAGMA integrity_check`` and the row digests of an open store; :class:`StoreError` naming the file
        (and the table and trial that changed) if it fails."""
        if self.path is not None:
            self.integrity = check_sqlite_file(self.path)
            return
        self.integrity = integrity.verify_engine(self.engine)
        if self.integrity.problems:
            raise damaged_store_error(self.where, "; ".join(self.integrity.problems))

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"the campaign store {self.where} was opened read-only")

    # -- meta -----------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self._writable()
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        with self._begin() as conn:
            self._put_meta(conn, key, text)

    def _put_meta(self, conn: Any, key: str, text: str) -> None:
        conn.execute(self.meta.delete().where(self.meta.c.key == key))
        conn.execute(self.meta.insert().values(key=key, value=text))
        integrity.seal(conn, self.tables, "setting", key)

    @_reads("the campaign's settings (meta)")
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
        self,
        trial: TrialRecord,
        candidates: Sequence[CandidateRecord],
        ax_snapshot: str | None = None,
        observations: Sequence[Observation] = (),
    ) -> None:
        """Commit a trial, its new candidates, its observations and the Ax state after it, all or nothing."""
        import sqlalchemy as sa

        self._writable()
        now = time.time()
        try:
            with self.engine.begin() as conn:
                start = conn.execute(sa.select(sa.func.count()).select_from(self.candidates)).scalar_one()
                conn.execute(self.trials.insert().values(**trial_row(trial, now)))
                if candidates:
                    conn.execute(self.candidates.insert(), candidate_rows(trial, candidates, start, now))
                motifs = motif_rows(candidates)
                if motifs:
                    conn.execute(self.motifs.insert(), motifs)
                if observations:
                    conn.execute(self.observations.insert(), observation_rows(trial.trial_id, observations))
                if ax_snapshot is not None:
                    conn.execute(self.ax_state.insert().values(trial_id=trial.trial_id, snapshot=ax_snapshot))
                integrity.seal(conn, self.tables, "trial", trial.trial_id)
        except sa.exc.IntegrityError as exc:
            raise StoreError(f"trial {trial.trial_id} or one of its candidates is already stored: {exc.orig}") from None
        except sa.exc.OperationalError as exc:
            raise StoreError(f"could not write trial {trial.trial_id} to {self.url} (disk full?): {exc.orig}") from None

    def record_oracle(self, hash_: str, status: str, result: dict[str, Any]) -> None:
        self._writable()
        with self._begin() as conn:
            conn.execute(self.oracle.delete().where(self.oracle.c.hash == hash_))
            conn.execute(
                self.oracle.insert().values(
                    hash=hash_, status=status, result=json.dumps(result, default=float), created=time.time()
                )
            )
            integrity.seal(conn, self.tables, "candidate", hash_)

    # -- reads ----------------------------------------------------------------------------------
    @_reads("the candidates' hashes")
    def known_hashes(self) -> set[str]:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(self.candidates.c.hash)).scalars())

    @_reads("the candidates")
    def n_candidates(self) -> int:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self.candidates)).scalar_one())

    @_reads("the trials")
    def n_trials(self) -> int:
        """Stored trials."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self.trials)).scalar_one())

    @_reads("the candidates")
    def n_hits(self) -> int:
        """Stored candidates that are hits."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            q = sa.select(sa.func.count()).select_from(self.candidates).where(self.candidates.c.hit.is_(True))
            return int(conn.execute(q).scalar_one())

    @_reads("the trials")
    def n_evaluations(self) -> int:
        """Generated samples scored so far (valid ones, duplicates included), over all trials."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(self.trials.c.n_valid), 0))).scalar_one())

    @_reads("the trials")
    def last_trial(self) -> tuple[int, int] | None:
        """(trial_id, iteration) of the newest stored trial."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(self.trials.c.trial_id, self.trials.c.iteration).order_by(self.trials.c.trial_id.desc())
            ).first()
        return None if row is None else (int(row[0]), int(row[1]))

    @_reads("the Ax state")
    def latest_ax_snapshot(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(self.ax_state.select().order_by(self.ax_state.c.trial_id.desc())).first()
        return None if row is None else row.snapshot

    @_reads("the Ax state")
    def latest_ax_state(self) -> tuple[int, str] | None:
        """``(trial id, snapshot)`` of the newest Ax state, the snapshot checked to be a JSON object;
        a :class:`StoreError` naming the trial otherwise (load it with
        :func:`hts.campaign.safety.restore_ax_checked`)."""
        with self.engine.connect() as conn:
            row = conn.execute(self.ax_state.select().order_by(self.ax_state.c.trial_id.desc())).first()
        if row is None:
            return None
        trial_id = int(row.trial_id)
        try:
            ok = isinstance(json.loads(row.snapshot), dict)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise StoreError(
                f"the Ax state stored with trial {trial_id} in {self.where} is not a JSON snapshot (damaged); "
                f"restore the store from a backup, or export what is still readable with `hts export "
                f"{Path(self.where).parent} {SALVAGE_FLAG} --out DIR`"
            )
        return trial_id, str(row.snapshot)

    @_reads("the trials")
    def trials_frame(self) -> pd.DataFrame:
        """One row per trial; ``created`` as ISO 8601 UTC text."""
        import pandas as pd

        columns = [c for c in self.trials.c if not (self.legacy and c.name == "kind")]
        with self.engine.connect() as conn:
            df = pd.read_sql(sa_select(columns).order_by(self.trials.c.trial_id), conn)
        for col in ("knobs", "metrics", "extra"):
            df[col] = df[col].map(json.loads)
        if self.legacy:  # a store from before the kind column, opened read-only
            from hts.campaign.store_legacy import legacy_kind

            df["kind"] = [legacy_kind(s, e) for s, e in zip(df["strategy"], df["extra"], strict=True)]
        df["created"] = pd.Series(iso_times(df["created"]), index=df.index, dtype=object)
        return df

    @_reads("the candidates")
    def candidates_frame(
        self, order_by_distance: bool = False, limit: int | None = None, predictions: bool = True
    ) -> pd.DataFrame:
        """One row per candidate; ``created`` as ISO 8601 UTC text. ``predictions=False`` leaves the
        predictions column out (a summary over a large archive need not parse them)."""
        import pandas as pd

        c = self.candidates.c
        q = self.candidates.select() if predictions else sa_select([col for col in c if col.name != "predictions"])
        q = (
            q.order_by(self.candidates.c.distance, self.candidates.c.eval_index)
            if order_by_distance
            else q.order_by(self.candidates.c.eval_index)
        )
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            df = pd.read_sql(q, conn)
        if predictions:
            df["predictions"] = df["predictions"].map(json.loads)
        df["created"] = pd.Series(iso_times(df["created"]), index=df.index, dtype=object)
        return df

    @_reads("the candidates")
    def candidates_since(self, trial_id: int | None) -> pd.DataFrame:
        """The candidates of the trials after ``trial_id`` (``None``: all), in evaluation order: ``hash``,
        ``eval_index``, ``trial_id``, ``defects``, ``predictions`` (parsed), ``distance``, ``hit`` and
        ``motif`` (``None`` for a candidate without one). Candidates are only ever inserted, a trial's
        all at once, so reading from the last trial seen reads every new candidate exactly once
        (:mod:`hts.campaign.pool`); the read goes through the ``trial_id`` index."""
        import pandas as pd

        c, m = self.candidates.c, self.motifs.c
        columns = [c.hash, c.eval_index, c.trial_id, c.defects, c.predictions, c.distance, c.hit, m.motif]
        q = sa_select(columns).select_from(self.candidates.outerjoin(self.motifs, m.hash == c.hash))
        if trial_id is not None:
            q = q.where(c.trial_id > trial_id)
        with self.engine.connect() as conn:
            df = pd.read_sql(q.order_by(c.eval_index), conn)
        df["predictions"] = df["predictions"].map(json.loads)
        return df

    @_reads("the observations")
    def observations_by_trial(self) -> list[tuple[str, list[Observation]]]:
        """``(kind, observations)`` of every stored trial in trial order (trials of strategies without
        BO have none): what the incumbent is replayed from on ``--resume``."""
        import sqlalchemy as sa

        if self.legacy:
            raise StoreError(f"the campaign store {self.where} predates trial kinds; open it for writing to update it")
        o = self.observations
        with self.engine.connect() as conn:
            kinds = conn.execute(sa.select(self.trials.c.trial_id, self.trials.c.kind).order_by(self.trials.c.trial_id))
            out: dict[int, tuple[str, list[Observation]]] = {int(t): (str(k), []) for t, k in kinds}
            for r in conn.execute(o.select().order_by(o.c.trial_id, o.c.part)).mappings():
                out[int(r["trial_id"])][1].append(
                    Observation(
                        json.loads(r["parameters"]), r["score"], r["sem"], r["n_samples"], r["n_hits"], r["ax_index"]
                    )
                )
        return list(out.values())

    @_reads("the motifs")
    def motifs_frame(self, oracle: bool = False) -> pd.DataFrame:
        """``hash``, ``motif``, ``core``, ``spectators`` of every stored hit; with ``oracle`` every candidate
        the oracle confirmed has the motif stored with its result instead (judged from the oracle's values:
        :mod:`hts.campaign.verifier`), near misses included."""
        import pandas as pd

        with self.engine.connect() as conn:
            frame = pd.read_sql(self.motifs.select(), conn)
        found = self.oracle_found_motifs() if oracle else {}
        if not found:
            return frame
        extra = pd.DataFrame([{"hash": h, **m} for h, m in found.items()])
        kept = frame[~frame["hash"].isin(set(found))]
        return pd.concat([kept, extra[list(frame.columns)]], ignore_index=True)

    @_reads("the oracle results")
    def oracle_found_motifs(self) -> dict[str, dict[str, str]]:
        """``{hash: {motif, core, spectators}}`` of the candidates the oracle confirmed, as judged from its values."""
        o = self.oracle.c
        q = sa_select([o.hash, o.result]).where(o.result.like('%"motif": {%'))
        with self.engine.connect() as conn:
            rows = [(str(h), json.loads(r).get("motif")) for h, r in conn.execute(q)]
        return {h: m for h, m in rows if isinstance(m, dict) and isinstance(m.get("motif"), str)}

    @_reads("the candidates")
    def candidate_defects(self, hashes: Iterable[str]) -> dict[str, str]:
        """The stored ``defects`` text of each of ``hashes`` that is a candidate, read through the hash
        index: a refit looks up its few verified candidates without reading the whole archive."""
        c = self.candidates.c
        wanted = list(dict.fromkeys(hashes))
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for lo in range(0, len(wanted), 500):  # well under SQLite's limit on bound parameters
                q = sa_select([c.hash, c.defects]).where(c.hash.in_(wanted[lo : lo + 500]))
                out.update({str(h): str(d) for h, d in conn.execute(q)})
        return out

    @_reads("the oracle results")
    def oracle_frame(self) -> pd.DataFrame:
        """One row per verified candidate; ``created`` as ISO 8601 UTC text."""
        import pandas as pd

        with self.engine.connect() as conn:
            df = pd.read_sql(self.oracle.select(), conn)
        df["result"] = df["result"].map(json.loads)
        df["created"] = pd.Series(iso_times(df["created"]), index=df.index, dtype=object)
        return df

    @_reads("the oracle results")
    def oracle_motifs(self) -> dict[str, str | None]:
        """Every verified candidate's hash and its motif as a hit (``None`` for a near miss, which has none
        in the ``motifs`` table: :meth:`oracle_found_motifs` has those the oracle confirmed), without
        reading the results themselves."""
        import sqlalchemy as sa

        o, m = self.oracle.c, self.motifs.c
        q = sa.select(o.hash, m.motif).select_from(self.oracle.outerjoin(self.motifs, m.hash == o.hash))
        with self.engine.connect() as conn:
            return {str(h): None if motif is None else str(motif) for h, motif in conn.execute(q)}

    @_reads("the candidates")
    def defects_of(self, hashes: Collection[str]) -> dict[str, str]:
        """``{hash: defects}`` of the stored candidates among ``hashes``."""
        c = self.candidates.c
        out: dict[str, str] = {}
        wanted = list(hashes)
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                q = sa_select([c.hash, c.defects]).where(c.hash.in_(wanted[i : i + 500]))
                out.update((str(h), str(d)) for h, d in conn.execute(q))
        return out

    def integrity_ok(self) -> bool:
        """``PRAGMA integrity_check`` on SQLite (always True for other back ends)."""
        import sqlalchemy as sa

        if self.engine.dialect.name != "sqlite":
            return True
        with self.engine.connect() as conn:
            return conn.execute(sa.text("PRAGMA integrity_check")).scalar_one() == "ok"

    def close(self) -> None:
        self.engine.dispose()


def trial_row(trial: TrialRecord, created: float) -> dict[str, Any]:
    """The ``trials`` table's row of ``trial``, stored at Unix time ``created``."""
    return {
        "trial_id": trial.trial_id,
        "iteration": trial.iteration,
        "strategy": trial.strategy,
        "kind": trial.kind,
        "knobs": json.dumps(trial.knobs, default=float),
        "n_generated": trial.n_generated,
        "n_valid": trial.n_valid,
        "n_new": trial.n_new,
        "n_hits": trial.n_hits,
        "metrics": json.dumps(trial.metrics),
        "extra": json.dumps(trial.extra, default=str),
        "wall_time_s": trial.wall_time_s,
        "created": created,
    }


def candidate_rows(
    trial: TrialRecord, candidates: Sequence[CandidateRecord], first_index: int, created: float
) -> list[dict[str, Any]]:
    """The ``candidates`` table's rows of one trial's new candidates, numbered in the order they were
    scored from ``first_index`` (the candidates stored before them): the archive's evaluation order."""
    return [
        {
            "hash": c.hash,
            "eval_index": first_index + i,
            "trial_id": trial.trial_id,
            "iteration": trial.iteration,
            "defects": c.defects,
            "n_defects": c.n_defects,
            "predictions": json.dumps(c.predictions),
            "distance": c.distance,
            "hit": bool(c.hit),
            "created": created,
        }
        for i, c in enumerate(candidates)
    ]


def motif_rows(candidates: Iterable[CandidateRecord]) -> list[dict[str, Any]]:
    """The ``motifs`` table's rows: one for each candidate with a motif (the hits)."""
    return [
        {"hash": c.hash, "motif": c.motif, "core": c.core, "spectators": c.spectators or ""}
        for c in candidates
        if c.motif is not None
    ]


def observation_rows(trial_id: int, observations: Sequence[Observation]) -> list[dict[str, Any]]:
    """The ``observations`` table's rows of one trial, in part order."""
    return [
        {
            "trial_id": trial_id,
            "part": i,
            "parameters": json.dumps(o.parameters, default=float),
            "score": o.score,
            "sem": o.sem,
            "n_samples": o.n_samples,
            "n_hits": o.n_hits,
            "ax_index": o.ax_index,
        }
        for i, o in enumerate(observations)
    ]


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


def sa_select(columns: list[Any]) -> Any:
    """``sqlalchemy.select`` of ``columns`` (imported lazily, as everywhere in this module)."""
    import sqlalchemy as sa

    return sa.select(*columns)
