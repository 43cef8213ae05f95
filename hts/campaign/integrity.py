"""Row digests: a checksum of what each committed group of a store's rows holds.

SQLite's ``quick_check`` finds damage to a file's structure, not to the values inside a record that
keeps its page valid (a digit of a prediction, a trial's count): such a store reads back changed data
without an error. So every write *seals* what it wrote: in the same transaction it reads the rows back
as the database holds them and stores their digest in :data:`DIGESTS`; a checked open
(:func:`verify`) recomputes the digests and names any group that no longer matches.

What is sealed is one list, :data:`SEALED`: a table, the *unit* whose writes seal it (``trial``: every
table sealed by :meth:`~hts.campaign.store.CampaignStore.record_trial`), and the group of rows one digest
covers. A digest covers all the columns the table had when it was written (they are stored with it):
a column added to a table later is covered from then on, and older digests stay valid. A new table is
covered by adding a line to :data:`SEALED` and sealing its unit where it is written.

Stores written before digests existed hold groups without one: they are counted as *not checked*
(:attr:`Report.unchecked`), not refused. A store created with digests holds :data:`MARKER` in ``meta``,
and then a group without its digest is damage too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DIGESTS = "row_digests"  # table: (tbl, grp) -> the columns covered and the digest of the group's rows
MARKER = "row_digests"  # meta key of a store created with digests: every group has one


@dataclass(frozen=True)
class Sealed:
    """One sealed table: ``group`` is the SQL expression giving the group of a row (a column, usually);
    ``order`` the table's unique key, the order of a group's rows in its digest; ``rows`` the SQL
    condition selecting group ``:g`` (default ``group = :g``); ``newest_only``: only the newest group (the
    largest integer key) is verified on open."""

    table: str
    unit: str
    group: str
    order: str
    rows: str | None = None
    newest_only: bool = False

    @property
    def where(self) -> str:
        return self.rows or f"{self.group} = :g"


SEALED: tuple[Sealed, ...] = (
    Sealed("trials", "trial", "trial_id", "trial_id"),
    Sealed("candidates", "trial", "trial_id", "hash"),
    # a hit's motif row belongs to the trial of its candidate
    Sealed(
        "motifs",
        "trial",
        "(SELECT c.trial_id FROM candidates AS c WHERE c.hash = motifs.hash)",
        "hash",
        rows="hash IN (SELECT c.hash FROM candidates AS c WHERE c.trial_id = :g)",
    ),
    # one snapshot per trial, growing with the campaign: only the newest is ever read (resume restores
    # it), so only the newest is verified on open; reading them all would cost time quadratic in trials
    Sealed("ax_state", "trial", "trial_id", "trial_id", newest_only=True),
    Sealed("observations", "trial", "trial_id", "part"),
    Sealed("oracle", "candidate", "hash", "hash"),
    Sealed("meta", "setting", "key", "key"),
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def digest_table(md: Any) -> Any:
    """The :data:`DIGESTS` table in SQLAlchemy metadata ``md``."""
    import sqlalchemy as sa

    return sa.Table(
        DIGESTS,
        md,
        sa.Column("tbl", sa.String(64), primary_key=True),
        sa.Column("grp", sa.String(200), primary_key=True),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
    )


def _other(value: Any) -> Any:
    """JSON form of what the JSON encoder does not know: blobs (a damaged type), decimals, dates."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"blob": bytes(value).hex()}
    return {type(value).__name__: str(value)}


# Compact, ASCII-only (independent of the Unicode tables of the Python that runs it), floats exactly.
_ENCODE = json.JSONEncoder(ensure_ascii=True, allow_nan=True, separators=(",", ":"), default=_other).encode


def row_digest(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The digest (32 hex digits, BLAKE2b) of ``rows`` in the table's key order, each a sequence of
    values in ``columns`` order as the database returns them: every value, its type (``1``, ``1.0`` and
    ``"1"`` differ), the rows' order and the columns' names count. One JSON text of the whole group
    (compact, ASCII-only, floats exact) is hashed: a group is encoded in one call."""
    text = _ENCODE([list(columns), list(map(tuple, rows))])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _column_list(text: str) -> list[str] | None:
    names = text.split(",") if isinstance(text, str) and text else []
    return names if names and all(_NAME.match(n) for n in names) else None


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def seal(conn: Any, tables: Mapping[str, Any], unit: str, key: Any) -> None:
    """Seal group ``key`` of every table of ``unit`` (SQLAlchemy connection ``conn`` inside the
    transaction that wrote it; ``tables``: name -> SQLAlchemy table): read the rows back as stored and
    replace the group's digest."""
    import sqlalchemy as sa

    for spec in SEALED:
        if spec.unit != unit or spec.table not in tables:
            continue
        columns = [c.name for c in tables[spec.table].columns]
        sql = f"SELECT {_quoted(columns)} FROM {spec.table} WHERE {spec.where} ORDER BY {spec.order}"
        rows = conn.execute(sa.text(sql), {"g": key})
        digest = row_digest(columns, rows)
        conn.execute(sa.text(f"DELETE FROM {DIGESTS} WHERE tbl = :t AND grp = :g"), {"t": spec.table, "g": str(key)})
        conn.execute(
            sa.text(f"INSERT INTO {DIGESTS} (tbl, grp, columns, digest) VALUES (:t, :g, :c, :d)"),
            {"t": spec.table, "g": str(key), "c": ",".join(columns), "d": digest},
        )


@dataclass
class Report:
    """What :func:`verify` found. ``sealed``: the store has digests at all; ``complete``: it was created
    with them (:data:`MARKER`); ``checked``: groups whose rows matched their digest; ``unchecked``: groups
    without a digest in a store written before digests, and Ax snapshots older than the newest;
    ``problems``: groups that do not match, named by table and unit (empty when sound)."""

    sealed: bool = False
    complete: bool = False
    checked: int = 0
    unchecked: int = 0
    problems: list[str] = field(default_factory=list)


def verify(execute: Callable[[str], Iterable[Sequence[Any]]], tables: set[str], limit: int = 3) -> Report:
    """Recompute the digest of every sealed group and compare (``execute(sql)``: the rows of a query on a
    read-only connection; ``tables``: the tables the store has). Stops after ``limit`` problems.
    Database errors propagate (the caller names the damage)."""
    report = Report()
    if DIGESTS not in tables:
        return report  # written before digests: nothing is checked
    report.sealed = True
    stored: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    for tbl, grp, columns, digest in execute(f"SELECT tbl, grp, columns, digest FROM {DIGESTS}"):
        stored[str(tbl)][str(grp)] = (columns, digest)
    if "meta" in tables:
        report.complete = any(True for _ in execute(f"SELECT 1 FROM meta WHERE key = '{MARKER}'"))
    for spec in SEALED:
        if len(report.problems) >= limit:
            break
        _verify_table(execute, tables, spec, stored.get(spec.table, {}), report)
    del report.problems[limit:]
    return report


def _verify_table(
    execute: Callable[[str], Iterable[Sequence[Any]]],
    tables: set[str],
    spec: Sealed,
    stored: dict[str, tuple[str, str]],
    report: Report,
) -> None:
    unit = spec.unit
    if spec.table not in tables:
        if stored:
            report.problems.append(f"table {spec.table} is missing, {len(stored)} checksums of it are not")
        return
    where = ""
    if spec.newest_only:
        keys = []
        for grp in stored:
            try:
                keys.append(int(grp))
            except ValueError:
                report.problems.append(f"table {spec.table}: a checksum names {unit} {grp!r}, not a number")
                return
        newest = [k for (k,) in execute(f"SELECT max({spec.group}) FROM {spec.table}") if k is not None]
        wanted = {max(keys)} if keys else set()
        wanted |= {int(k) for k in newest if isinstance(k, int)}
        report.unchecked += max(0, len(stored) - len(wanted & set(keys)))
        if not wanted:
            return
        where = f" WHERE {spec.group} IN ({', '.join(str(k) for k in sorted(wanted))})"
        stored = {g: v for g, v in stored.items() if int(g) in wanted}
    by_columns: dict[str, list[str]] = defaultdict(list)
    for grp, (columns, _) in stored.items():
        by_columns[columns].append(grp)
    seen: set[str] = set()
    if not by_columns:
        seen = {str(g) for (g,) in execute(f"SELECT DISTINCT {spec.group} FROM {spec.table}{where}")}
    for columns, groups in by_columns.items():
        names = _column_list(columns)
        if names is None:
            report.problems.append(f"table {spec.table}, {unit} {groups[0]}: its checksum lists no column names")
            return
        rows: dict[str, list[Sequence[Any]]] = defaultdict(list)
        sql = f"SELECT {spec.group}, {_quoted(names)} FROM {spec.table}{where} ORDER BY {spec.group}, {spec.order}"
        for row in execute(sql):
            rows[str(row[0])].append(row[1:])
        seen |= set(rows)
        for grp in sorted(groups, key=_natural):
            if row_digest(names, rows.get(grp, ())) == stored[grp][1]:
                report.checked += 1
            else:
                report.problems.append(
                    f"table {spec.table}, {unit} {grp}: the rows differ from the checksum written with them"
                )
                return
    missing = sorted(seen - set(stored), key=_natural)
    if not missing:
        return
    if report.complete:
        report.problems.append(f"table {spec.table}, {unit} {missing[0]}: rows without the checksum written with them")
    else:
        report.unchecked += len(missing)


def _natural(key: str) -> tuple[int, int | str]:
    """Integer keys in numeric order, before any other."""
    try:
        return 0, int(key)
    except ValueError:
        return 1, key


def verify_sqlite(con: Any, limit: int = 3) -> Report:
    """:func:`verify` through an open :mod:`sqlite3` connection (read-only, as the check opens it)."""
    tables = {str(name) for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    factory = con.text_factory
    con.text_factory = str  # decoded in C; text that is not UTF-8 (damage) raises, named by the caller
    try:
        return verify(lambda sql: con.execute(sql), tables, limit)
    finally:
        con.text_factory = factory


def verify_engine(engine: Any, limit: int = 3) -> Report:
    """:func:`verify` through an SQLAlchemy engine (back ends other than an SQLite file)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        return verify(lambda sql: conn.exec_driver_sql(sql).fetchall(), tables, limit)
