"""The store's trial kinds and observations, and stores written before they were columns and a table."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hts.campaign.incumbent import Incumbent
from hts.campaign.plan import Observation
from hts.campaign.store import CampaignStore, TrialRecord, sqlite_url


def _trial(i: int, kind: str, extra: dict | None = None, knobs: dict | None = None) -> TrialRecord:
    return TrialRecord(i, 0, "llm-bo", knobs or {"a": i}, 64, 64, 10, 5, {"score": 0.1 * i}, 0.1, extra or {}, kind)


def test_kinds_and_observations_round_trip(tmp_path: Path):
    store = CampaignStore(sqlite_url(tmp_path / "s.sqlite"))
    scout = [Observation({"a": 1}, 0.5, 0.1, 40, 20, 0), Observation({"a": 2}, 0.0, 0.1, 24, 0, 1)]
    store.record_trial(_trial(0, "scout"), [], None, scout)
    store.record_trial(_trial(1, "exploit"), [], None, [Observation({"a": 1}, 0.6, 0.05, 64, 40, 2)])
    store.record_trial(_trial(2, "fixed"), [])
    assert store.observations_by_trial() == [
        ("scout", scout),
        ("exploit", [Observation({"a": 1}, 0.6, 0.05, 64, 40, 2)]),
        ("fixed", []),
    ]
    assert list(store.trials_frame()["kind"]) == ["scout", "exploit", "fixed"]
    store.close()


def _legacy_store(path: Path) -> Path:
    """A store as written before trials had a kind column: flags and observations in ``extra``."""
    store = CampaignStore(sqlite_url(path))
    scout = {"scout": True, "scout_obs": [[{"a": 1}, 0.5, 40, 20], [{"a": 2}, 0.0, 24, 0]]}
    store.record_trial(_trial(0, "", scout), [])
    store.record_trial(_trial(1, "", {"ax_trial": 2}, {"a": 3}), [])
    store.record_trial(_trial(2, "", {"ax_trial": 3, "exploit": True}, {"a": 1}), [])
    probe = {"local": True, "probe_obs": [[{"a": 4}, 0.2, 32, 3], [{"a": 5}, 0.0, 32, 0]]}
    store.record_trial(_trial(3, "", probe), [])
    store.close()
    _before_kinds(path, "DROP TABLE IF EXISTS row_digests")  # older than the checksums too
    return path


def _before_kinds(path: Path, digests_sql: str) -> None:
    """Take a store back to before the kind column and the observations table (``digests_sql``: what
    happens to its row digests)."""
    with sqlite3.connect(path) as con:
        con.execute("ALTER TABLE trials DROP COLUMN kind")
        con.execute("DROP TABLE observations")
        con.execute(digests_sql)


def test_a_legacy_store_reads_its_kinds_and_is_migrated_when_opened_for_writing(tmp_path: Path):
    path = _legacy_store(tmp_path / "old.sqlite")
    ro = CampaignStore.open(sqlite_url(path))  # status, export, report: read-only, derived on the fly
    assert list(ro.trials_frame()["kind"]) == ["scout", "ax", "exploit", "probe"]
    ro.close()
    with sqlite3.connect(path) as con:  # nothing was written by the read-only open
        assert "kind" not in [r[1] for r in con.execute("PRAGMA table_info(trials)")]
    store = CampaignStore(sqlite_url(path))  # run --resume: migrated once
    trials = store.observations_by_trial()
    store.close()
    assert [k for k, _ in trials] == ["scout", "ax", "exploit", "probe"]
    assert [len(o) for _, o in trials] == [2, 1, 1, 2]
    assert trials[1][1][0].ax_index == 2 and trials[1][1][0].parameters == {"a": 3}
    inc = Incumbent.replay(trials)
    assert inc.explored() == [(5, 64), (3, 64)]  # the Ax trial and the probe; not the scout nor the re-run
    with sqlite3.connect(path) as con:
        kinds = [r[0] for r in con.execute("SELECT kind FROM trials ORDER BY trial_id")]
        assert kinds == ["scout", "ax", "exploit", "probe"]
        assert json.loads(con.execute("SELECT parameters FROM observations WHERE trial_id = 3").fetchone()[0]) == {
            "a": 4
        }


def test_a_sealed_store_from_before_the_kind_column_is_migrated_and_still_checks_clean(tmp_path: Path):
    """Row digests came before the kind column: such a store, migrated on ``--resume``, has its new
    observations sealed with their trial, so the next checked open finds nothing amiss."""
    from hts.campaign.store import check_sqlite_file

    path = tmp_path / "sealed.sqlite"
    store = CampaignStore(sqlite_url(path))
    probe = {"local": True, "probe_obs": [[{"a": 4}, 0.2, 32, 3], [{"a": 5}, 0.0, 32, 0]]}
    store.record_trial(_trial(0, "", probe), [])
    store.close()
    _before_kinds(path, "DELETE FROM row_digests WHERE tbl IN ('trials', 'observations')")
    CampaignStore(sqlite_url(path)).close()  # migrated
    check_sqlite_file(path)
    store = CampaignStore.open(sqlite_url(path))
    assert [(k, len(o)) for k, o in store.observations_by_trial()] == [("probe", 2)]
    store.close()
