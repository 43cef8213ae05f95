"""The store checks itself: integrity_check and row digests before reading or resuming, read-only
opens, damage named with what to do, Ax state that does not load named by its trial, ISO times in the
frames."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from hts.campaign.safety import restore_ax_checked
from hts.campaign.store import CampaignStore, check_sqlite_file, iso_times, sqlite_url
from hts.errors import StoreError
from tests.hts.campaign.store_fixtures import PAGE, damage, digest, run_sql, write_store


@pytest.fixture
def store_file(tmp_path) -> Path:
    return write_store(tmp_path / "campaign.sqlite")


def _assert_damage_message(msg: str, path: Path) -> None:
    assert str(path) in msg and "damaged" in msg
    assert "Restore campaign.sqlite from a backup" in msg and "--salvage" in msg


def test_a_healthy_store_opens_checked_and_read_only(store_file):
    before = digest(store_file)
    store = CampaignStore.open(sqlite_url(store_file))
    try:
        store.check()
        assert store.n_trials() == 4 and store.n_candidates() == 160 and store.n_hits() == 32
        assert store.n_evaluations() == 160 and store.last_trial() == (3, 1)
        trials, cands, orc = store.trials_frame(), store.candidates_frame(), store.oracle_frame()
        assert len(trials) == 4 and len(cands) == 160 and orc.empty
        with pytest.raises(StoreError, match="opened read-only"):
            store.set_meta("x", 1)
    finally:
        store.close()
    assert digest(store_file) == before  # a read-only open writes nothing


def test_created_times_are_iso_text(store_file):
    store = CampaignStore.open(sqlite_url(store_file))
    try:
        for frame in (store.trials_frame(), store.candidates_frame()):
            assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in frame["created"])
    finally:
        store.close()
    assert iso_times([0.0, None, float("nan")]) == ["1970-01-01T00:00:00Z", None, None]


def test_a_missing_store_or_a_folder_is_named_and_nothing_is_created(tmp_path):
    missing = tmp_path / "none.sqlite"
    with pytest.raises(StoreError, match=f"no campaign store at {re.escape(str(missing))}"):
        CampaignStore.open(sqlite_url(missing))
    assert not missing.exists()
    folder = tmp_path / "dir.sqlite"
    folder.mkdir()
    with pytest.raises(StoreError, match="is a folder, expected an SQLite file"):
        CampaignStore.open(sqlite_url(folder))


@pytest.mark.parametrize("page", [1, 3, 7, 12])
@pytest.mark.parametrize("readonly", [True, False])
def test_a_damaged_store_is_refused_and_never_written(store_file, page, readonly):
    damage(store_file, page * PAGE, b"\xff" * 64)
    before = digest(store_file)
    with pytest.raises(StoreError) as info:
        CampaignStore.open(sqlite_url(store_file), readonly=readonly)  # readonly=False: as run --resume
    _assert_damage_message(str(info.value), store_file)
    assert digest(store_file) == before
    with pytest.raises(StoreError):
        check_sqlite_file(store_file)
    assert digest(store_file) == before


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "campaign.sqlite"
    path.write_text("name: not a database\n" * 100)
    before = digest(path)
    with pytest.raises(StoreError) as info:
        CampaignStore.open(sqlite_url(path))
    _assert_damage_message(str(info.value), path)
    assert "not a database" in str(info.value)
    with pytest.raises(StoreError) as info:
        CampaignStore(sqlite_url(path), check=True)  # the writable open of a resume checks first too
    assert digest(path) == before


def test_salvage_reads_what_it_can_and_names_the_rest(store_file):
    damage(store_file, 3 * PAGE, b"\xff" * 64)  # a page of the trials table
    before = digest(store_file)
    store = CampaignStore.open(sqlite_url(store_file), check=False)
    outcomes = []
    try:
        for read in (store.trials_frame, store.candidates_frame, store.oracle_frame, store.known_hashes):
            try:
                read()
                outcomes.append("ok")
            except StoreError as exc:
                _assert_damage_message(str(exc), store_file)
                outcomes.append("damaged")
    finally:
        store.close()
    assert "damaged" in outcomes and "ok" in outcomes
    assert digest(store_file) == before


def test_stored_values_that_do_not_parse_are_named(store_file):
    run_sql(store_file, "UPDATE trials SET metrics = '{not json' WHERE trial_id = 2")
    before = digest(store_file)
    with pytest.raises(StoreError) as info:  # the pages are sound: the row digest of trial 2 is not
        CampaignStore.open(sqlite_url(store_file))
    _assert_damage_message(str(info.value), store_file)
    assert "table trials, trial 2" in str(info.value)
    store = CampaignStore.open(sqlite_url(store_file), check=False)  # salvage reads it unchecked
    try:
        with pytest.raises(StoreError) as info:
            store.trials_frame()
    finally:
        store.close()
    _assert_damage_message(str(info.value), store_file)
    assert "the trials do not parse" in str(info.value)
    assert digest(store_file) == before


def test_a_store_without_tables_is_not_a_campaign_store(tmp_path):
    path = tmp_path / "other.sqlite"
    run_sql(path, "CREATE TABLE t (x)")
    store = CampaignStore.open(sqlite_url(path))
    try:
        with pytest.raises(StoreError, match="no such table: trials; not a campaign store"):
            store.trials_frame()
    finally:
        store.close()


def test_ax_state_that_is_not_json_names_its_trial(store_file):
    run_sql(store_file, "UPDATE ax_state SET snapshot = 'garbage' WHERE trial_id = 3")
    before = digest(store_file)
    with pytest.raises(StoreError, match="table ax_state, trial 3"):
        CampaignStore.open(sqlite_url(store_file))
    store = CampaignStore.open(sqlite_url(store_file), check=False)
    try:
        with pytest.raises(StoreError, match=r"the Ax state stored with trial 3 in .*campaign\.sqlite is not a JSON"):
            store.latest_ax_state()
        with pytest.raises(StoreError, match="trial 3"):
            restore_ax_checked(store, restore=json.loads)
    finally:
        store.close()
    assert digest(store_file) == before


def test_ax_state_that_ax_cannot_load_names_its_trial(store_file):
    store = CampaignStore.open(sqlite_url(store_file))

    def ax_restore(snapshot: str) -> object:
        raise KeyError("experiment")  # what Ax raises on a snapshot of another shape

    try:
        assert restore_ax_checked(store, restore=json.loads)["trial"] == 3  # a loadable one is returned
        with pytest.raises(StoreError) as info:
            restore_ax_checked(store, restore=ax_restore)
    finally:
        store.close()
    msg = str(info.value)
    assert "the Ax state stored with trial 3" in msg and "cannot be loaded (KeyError" in msg
    assert "restore the store from a backup" in msg and "--salvage" in msg


def test_no_ax_state_is_none(tmp_path):
    path = write_store(tmp_path / "campaign.sqlite", trials=1, ax=False)
    store = CampaignStore.open(sqlite_url(path))
    try:
        assert store.latest_ax_state() is None and restore_ax_checked(store) is None
    finally:
        store.close()


def test_a_damaged_schema_that_is_not_utf8_is_named(store_file):
    """Found by the store fuzzer: SQLite's message quotes the damaged schema, which Python cannot decode."""
    damage(store_file, 3946, b"\xff" * 6)  # inside the schema text on the first page
    before = digest(store_file)
    with pytest.raises(StoreError) as info:
        check_sqlite_file(store_file)
    _assert_damage_message(str(info.value), store_file)
    store = CampaignStore.open(sqlite_url(store_file), check=False)
    try:
        with pytest.raises(StoreError, match="damaged"):
            store.trials_frame()
    finally:
        store.close()
    assert digest(store_file) == before


def test_damage_that_makes_sqlite_run_out_of_memory_is_named(tmp_path):
    """Found by the store fuzzer: the check of 0xff over a candidates leaf page (a damaged size field)
    fails with SQLITE_NOMEM (a MemoryError). Every leaf is tried, so that the layout may change."""
    from tests.fuzz.test_fuzz_campaign_store import _base_store, _damaged

    base, _ = _base_store()
    path = tmp_path / "campaign.sqlite"
    path.write_bytes(base)
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as con:
        query = "SELECT pageno FROM dbstat WHERE name = 'candidates' AND pagetype = 'leaf' ORDER BY pageno"
        leaves = [int(p) for (p,) in con.execute(query)]
    messages = []
    for page in leaves:
        path.write_bytes(_damaged(base, [(0, 24, "zeros", 1, b"\0"), (page - 1, 213, "ones", 377, b"\0")], None))
        before = digest(path)
        try:
            check_sqlite_file(path)  # 0xff over a page's free space is no damage
        except StoreError as exc:
            _assert_damage_message(str(exc), path)
            messages.append(str(exc))
        assert digest(path) == before
    assert any("ran out of memory" in m for m in messages), messages
