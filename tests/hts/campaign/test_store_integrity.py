"""Row digests (hts.campaign.integrity): values changed inside sound pages are named by table and trial
when a store is opened checked (status, export, report, run --resume), nothing is written, salvage
still reads; stores written before digests still open."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hts.campaign import integrity
from hts.campaign.integrity import row_digest
from hts.campaign.runner import run_campaign
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, check_sqlite_file, sqlite_url
from hts.cli import app
from hts.errors import StoreError
from tests.hts.campaign.conftest import campaign_text
from tests.hts.campaign.store_fixtures import PAGE, digest, run_sql, write_store

# -- the digest function -----------------------------------------------------------------------------


def test_the_digest_is_pinned():
    """Stored digests are compared with ones computed later: the encoding must never change."""
    assert row_digest(["a", "b"], [(1, "x"), (2.5, None)]) == "9cfe97e6cf2aeeda022c12e4867341a2"
    assert row_digest(["a"], []) == "53ebf5e9f5808e4087cad8b8e6a7d874"


def test_every_value_its_type_the_order_and_the_columns_count():
    base = row_digest(["a", "b"], [(1, "x"), (2.5, None)])
    changed = [
        [(1.0, "x"), (2.5, None)],  # int -> float
        [("1", "x"), (2.5, None)],  # int -> text
        [(1, "x"), (2.5, 0)],  # NULL -> 0
        [(1, "x"), (2.5, "")],  # NULL -> empty text
        [(1, "y"), (2.5, None)],
        [(1, "x"), (math.nextafter(2.5, 3.0), None)],  # the last bit of a float
        [(2.5, None), (1, "x")],  # the order of the rows
        [(1, "x")],  # a row less
        [(1, "x"), (2.5, None), (2.5, None)],  # a row more
        [(1, b"x"), (2.5, None)],  # text -> blob
    ]
    digests = {row_digest(["a", "b"], rows) for rows in changed}
    assert base not in digests and len(digests) == len(changed)
    assert row_digest(["a", "c"], [(1, "x"), (2.5, None)]) != base  # the columns' names
    assert row_digest(["a", "b"], [[1, "x"], [2.5, None]]) == base  # lists or tuples: the values count


def test_text_is_hashed_exactly_and_independently_of_unicode_tables():
    assert row_digest(["t"], [("é",)]) != row_digest(["t"], [("e\u0301",)])  # composed / decomposed
    assert row_digest(["t"], [("\U0001f600",)]) != row_digest(["t"], [("\ufffd",)])
    assert row_digest(["t"], [("a\nb",)]) != row_digest(["t"], [("a", "b")])
    assert row_digest(["f"], [(float("nan"),)]) != row_digest(["f"], [(float("inf"),)])


# -- stores ------------------------------------------------------------------------------------------


@pytest.fixture
def store_file(tmp_path) -> Path:
    return write_store(tmp_path / "campaign.sqlite")


def _refused(path: Path, *names: str) -> str:
    """The checked open of ``path`` raises a StoreError naming the file, ``names`` and what to do; the
    file is not written."""
    before = digest(path)
    with pytest.raises(StoreError) as info:
        CampaignStore.open(sqlite_url(path))
    msg = str(info.value)
    assert str(path) in msg and "is damaged" in msg and "nothing was written" in msg, msg
    assert "from a backup" in msg and "--salvage" in msg, msg
    for name in names:
        assert name in msg, msg
    assert digest(path) == before
    return msg


def test_a_new_store_is_sealed_from_the_start(store_file):
    report = check_sqlite_file(store_file)
    assert report.sealed and report.complete and not report.problems
    # 4 trials x (trials, candidates, motifs, observations where the table exists), the newest Ax
    # snapshot, 2 settings (campaign_yaml, the marker); the 3 older snapshots are not verified
    per_trial = sum(1 for s in integrity.SEALED if s.unit == "trial" and not s.newest_only)
    tables = {r[0] for r in sqlite3.connect(store_file).execute("SELECT name FROM sqlite_master")}
    per_trial -= sum(1 for s in integrity.SEALED if s.unit == "trial" and s.table not in tables)
    assert report.checked == 4 * per_trial + 1 + 2 and report.unchecked == 3


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("UPDATE candidates SET distance = distance + 1e-12 WHERE hash = '0002000000000005'", "candidates, trial 2"),
        ("UPDATE candidates SET hit = 1 - hit WHERE hash = '0001000000000003'", "candidates, trial 1"),
        ("UPDATE candidates SET trial_id = 3 WHERE hash = '0001000000000003'", "candidates, trial 1"),
        ("DELETE FROM candidates WHERE hash = '0003000000000007'", "candidates, trial 3"),
        (
            "INSERT INTO candidates (hash, eval_index, trial_id, iteration, defects, n_defects, predictions, distance,"
            " hit, created) VALUES ('ffff000000000000', 999, 0, 0, '1:VAC', 1, '{}', 0.0, 1, 0.0)",
            "candidates, trial 0",
        ),
        ("UPDATE trials SET n_hits = n_hits + 1 WHERE trial_id = 1", "trials, trial 1"),
        ("DELETE FROM trials WHERE trial_id = 3", "trials, trial 3"),
        ("INSERT INTO motifs VALUES ('0002000000000005', 'm', '1:VAC', '')", "motifs, trial 2"),
        ("UPDATE ax_state SET snapshot = '{}' WHERE trial_id = 3", "ax_state, trial 3"),
        ("UPDATE meta SET value = 'name: other' WHERE key = 'campaign_yaml'", "meta, setting campaign_yaml"),
        ("DELETE FROM meta WHERE key = 'row_digests'", "meta, setting row_digests"),
        ("DELETE FROM row_digests WHERE tbl = 'candidates' AND grp = '2'", "candidates, trial 2: rows without"),
        ("UPDATE row_digests SET columns = 'hash' WHERE tbl = 'trials' AND grp = '0'", "trials, trial 0"),
        (
            "UPDATE row_digests SET columns = 'x;drop' WHERE tbl = 'trials' AND grp = '0'",
            "trials, trial 0: its checksum lists no column names",
        ),
    ],
)
def test_rows_changed_behind_the_store_are_named_by_table_and_trial(store_file, statement, named):
    run_sql(store_file, statement)
    _refused(store_file, f"table {named}")


def test_trial_rows_without_a_checksum_are_damage_in_a_sealed_store(store_file):
    run_sql(
        store_file,
        "INSERT INTO trials (trial_id, iteration, strategy, knobs, n_generated, n_valid, n_new, n_hits, metrics,"
        " extra, wall_time_s, created) VALUES (9, 4, 'random', '{}', 1, 1, 0, 0, '{}', '{}', 0.1, 0.0)",
    )
    _refused(store_file, "table trials, trial 9: rows without the checksum written with them")


def test_oracle_results_are_sealed(store_file):
    store = CampaignStore(sqlite_url(store_file))
    store.record_oracle("0002000000000005", "converged", {"homo_lumo_gap": 0.61})
    store.record_oracle("0002000000000005", "converged", {"homo_lumo_gap": 0.62})  # replaced, resealed
    store.close()
    assert not check_sqlite_file(store_file).problems
    run_sql(store_file, "UPDATE oracle SET result = '{\"homo_lumo_gap\": 0.7}'")
    _refused(store_file, "table oracle, candidate 0002000000000005")


def test_only_the_newest_ax_snapshot_is_verified(store_file):
    """Older snapshots are never read (resume restores the newest); verifying them all would cost time
    quadratic in the trials. They are counted as not checked."""
    run_sql(store_file, "UPDATE ax_state SET snapshot = '{}' WHERE trial_id = 1")
    report = check_sqlite_file(store_file)
    assert not report.problems and report.unchecked == 3


def test_one_byte_changed_on_disk_is_refused(tmp_path):
    """A digit of a candidate's prediction changed in the file itself: every page stays sound (SQLite's
    own check passes), the row digest does not."""
    path = write_store(tmp_path / "campaign.sqlite")
    store = CampaignStore(sqlite_url(path))
    trial = TrialRecord(4, 2, "random", {}, 1, 1, 1, 0, {"score": 0.0}, 0.1)
    cand = CandidateRecord("00ff000000000001", "1:VAC", 1, {"homo_lumo_gap": (1.2345678, 0.05)}, 0.5, False)
    store.record_trial(trial, [cand])
    store.close()
    data = path.read_bytes()
    assert data.count(b"1.2345678") == 1
    path.write_bytes(data.replace(b"1.2345678", b"1.2345679"))
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    _refused(path, "table candidates, trial 4")


def test_a_damaged_index_entry_is_refused(store_file):
    """An index entry changed inside a sound page changes what a query through it reads (n_hits counts
    through the index on ``hit``) while the table and its digests are intact: integrity_check names it."""
    with sqlite3.connect(store_file) as con:
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ix_candidates_hit'").fetchone()[0]
    data = bytearray(store_file.read_bytes())
    page = (root - 1) * PAGE
    cells = int.from_bytes(data[page + 3 : page + 5], "big")
    cell = int.from_bytes(data[page + 8 + 2 * (cells - 1) : page + 10 + 2 * (cells - 1)], "big")  # a leaf cell
    header = page + cell + 1  # payload size (1 byte), then the record header: its size, hit's serial type
    assert data[header + 1] in (8, 9)  # hit stored as the constant 0 or 1
    data[header + 1] ^= 1
    store_file.write_bytes(bytes(data))
    _refused(store_file, "ix_candidates_hit")


def test_a_store_written_before_digests_opens_unchecked_and_is_sealed_from_then_on(store_file):
    run_sql(store_file, "DROP TABLE row_digests", "DELETE FROM meta WHERE key = 'row_digests'")
    report = check_sqlite_file(store_file)
    assert not report.sealed and report.checked == 0 and not report.problems
    store = CampaignStore(sqlite_url(store_file), check=True, create=False)  # run --resume
    cand = CandidateRecord("00ff000000000001", "1:VAC", 1, {"homo_lumo_gap": (0.5, 0.05)}, 0.5, True, "m", "1:VAC")
    store.record_trial(TrialRecord(4, 2, "random", {}, 1, 1, 1, 1, {}, 0.1), [cand], '{"trial": 4}')
    store.close()
    report = check_sqlite_file(store_file)
    assert report.sealed and not report.complete and not report.problems
    assert report.checked >= 4 and report.unchecked >= 4  # trial 4's groups; trials 0-3 not checked
    run_sql(store_file, "UPDATE candidates SET distance = 9 WHERE trial_id = 0")
    assert not check_sqlite_file(store_file).problems  # written before digests: not checked
    run_sql(store_file, "UPDATE candidates SET distance = 9 WHERE trial_id = 4")
    _refused(store_file, "table candidates, trial 4")


def test_a_column_added_later_is_covered_from_then_on(store_file):
    """Digests store the columns they cover: rows sealed before a column existed stay valid."""
    run_sql(store_file, "ALTER TABLE candidates ADD COLUMN note TEXT")
    store = CampaignStore(sqlite_url(store_file))
    store.tables["candidates"].append_column(sa.Column("note", sa.Text))
    cand = CandidateRecord("00ff000000000001", "1:VAC", 1, {"homo_lumo_gap": (0.5, 0.05)}, 0.5, False)
    store.record_trial(TrialRecord(4, 2, "random", {}, 1, 1, 1, 0, {}, 0.1), [cand])
    store.close()
    assert not check_sqlite_file(store_file).problems
    run_sql(store_file, "UPDATE candidates SET note = 'x' WHERE trial_id = 4")
    _refused(store_file, "table candidates, trial 4")


def test_other_back_ends_are_verified_through_the_engine():
    store = CampaignStore("sqlite://")  # in memory: no file to quick_check
    store.record_trial(TrialRecord(0, 0, "random", {}, 1, 1, 1, 0, {}, 0.1), [])
    store.check()
    assert store.integrity is not None and store.integrity.complete and store.integrity.checked > 0
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE trials SET n_valid = 2")
    with pytest.raises(StoreError, match="table trials, trial 0"):
        store.check()
    store.close()


# -- the commands ------------------------------------------------------------------------------------


@pytest.fixture
def campaign(tmp_path, tiny_surrogate) -> tuple[Path, Path]:
    path = tmp_path / "c.yaml"
    path.write_text(campaign_text(tiny_surrogate, iterations=2))
    _, out = run_campaign(path, out=tmp_path / "run")
    return path, out


def _files(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _text(res) -> str:
    return " ".join((res.output + " " + str(res.exception)).split())


def test_status_export_and_resume_refuse_a_changed_prediction_and_salvage_exports(campaign, tmp_path):
    path, out = campaign
    store = out / "campaign.sqlite"
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        trial, text = con.execute("SELECT trial_id, predictions FROM candidates ORDER BY eval_index LIMIT 1").fetchone()
    data = store.read_bytes()
    needle = text.encode()
    assert data.count(needle) == 1
    at = data.index(needle) + needle.index(b".") + 2  # the second decimal of the first prediction
    digit = data[at : at + 1]
    store.write_bytes(data[:at] + (b"1" if digit != b"1" else b"2") + data[at + 1 :])
    before = _files(out)
    named = f"table candidates, trial {trial}"
    for args in (["status", str(out)], ["export", str(out), "--out", str(tmp_path / "e")], ["report", str(out)]):
        res = CliRunner(env={"COLUMNS": "200"}).invoke(app, args)
        assert res.exit_code != 0 and named in _text(res) and "--salvage" in _text(res), (args, _text(res))
        assert "Traceback" not in res.output
    with pytest.raises(StoreError, match=named):
        run_campaign(path, out=out, resume=True)
    assert _files(out) == before and not (tmp_path / "e").exists() and not (out / "report").exists()
    salvaged = CliRunner().invoke(app, ["export", str(out), "--out", str(tmp_path / "s"), "--salvage"])
    assert salvaged.exit_code == 0, salvaged.output
    assert (tmp_path / "s" / "candidates.csv").is_file() and list((tmp_path / "s").glob("*.cif"))
    assert _files(out) == before
