"""The campaign store's basics (hts.campaign.store): what a trial writes and what the reads give back.

Damage, row digests and trial kinds are tested in test_store_check.py, test_store_integrity.py and
test_store_observations.py."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from hts.campaign.plan import Observation
from hts.campaign.store import (
    CampaignStore,
    CandidateRecord,
    TrialRecord,
    format_defects,
    parse_defects,
    sqlite_path,
    sqlite_url,
)
from hts.errors import StoreError

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _cand(hash_: str, distance: float, hit: bool = False, motif: str | None = None, **kw) -> CandidateRecord:
    return CandidateRecord(
        hash=hash_,
        defects=kw.pop("defects", "3:VAC"),
        n_defects=kw.pop("n_defects", 1),
        predictions={"homo_lumo_gap": (0.5 + distance, 0.05)},
        distance=distance,
        hit=hit,
        motif=motif,
        **kw,
    )


def _trial(trial_id: int, iteration: int = 0, n_valid: int = 10, kind: str = "fixed", **kw) -> TrialRecord:
    return TrialRecord(
        trial_id=trial_id,
        iteration=iteration,
        strategy="random",
        knobs=kw.pop("knobs", {"max_defects": 3}),
        n_generated=n_valid + 2,
        n_valid=n_valid,
        n_new=kw.pop("n_new", 2),
        n_hits=kw.pop("n_hits", 1),
        metrics=kw.pop("metrics", {"score": 0.25}),
        wall_time_s=0.5,
        extra=kw.pop("extra", {}),
        kind=kind,
    )


@pytest.fixture
def store(tmp_path: Path):
    s = CampaignStore(sqlite_url(tmp_path / "s.sqlite"))
    yield s
    s.close()


def _two_trials(store: CampaignStore) -> None:
    """Trial 0 (iteration 0): a hit and a miss; trial 1 (iteration 1): a hit and a near miss."""
    store.record_trial(
        _trial(0, 0, n_valid=10, kind="random", knobs={"max_defects": 3}, extra={"note": "first"}),
        [_cand("h0", 0.0, hit=True, motif="m0", core="3:VAC", spectators="7:Se"), _cand("a0", 0.4)],
    )
    store.record_trial(
        _trial(1, 1, n_valid=7, kind="ax", knobs={"temperature": 0.75}, metrics={"score": 0.5}),
        [_cand("h1", 0.0, hit=True, motif="m0", core="3:VAC"), _cand("a1", 0.1)],
    )


def test_an_empty_store_counts_nothing(store):
    assert store.known_hashes() == set()
    assert (store.n_candidates(), store.n_trials(), store.n_hits(), store.n_evaluations()) == (0, 0, 0, 0)
    assert store.last_trial() is None
    assert store.trials_frame().empty and store.candidates_frame().empty
    assert store.motifs_frame().empty and store.oracle_frame().empty
    assert store.latest_ax_snapshot() is None


def test_recorded_trials_are_counted(store):
    _two_trials(store)
    assert store.known_hashes() == {"h0", "a0", "h1", "a1"}
    assert store.n_candidates() == 4
    assert store.n_trials() == 2
    assert store.n_hits() == 2
    assert store.n_evaluations() == 17  # the trials' valid samples (10 + 7), duplicates included
    assert store.last_trial() == (1, 1)
    store.record_trial(_trial(2, 1, n_valid=0), [])  # a trial that found nothing new is still a trial
    assert store.last_trial() == (2, 1) and store.n_trials() == 3 and store.n_candidates() == 4


def test_trials_frame_decodes_its_json_and_keeps_the_kind(store):
    _two_trials(store)
    trials = store.trials_frame()
    assert list(trials["trial_id"]) == [0, 1]
    assert list(trials["kind"]) == ["random", "ax"]
    assert trials["knobs"].tolist() == [{"max_defects": 3}, {"temperature": 0.75}]
    assert trials["metrics"].tolist() == [{"score": 0.25}, {"score": 0.5}]
    assert trials["extra"].tolist() == [{"note": "first"}, {}]
    assert list(trials["n_valid"]) == [10, 7] and list(trials["n_generated"]) == [12, 9]
    assert all(ISO.fullmatch(t) for t in trials["created"])


def test_candidates_frame_orders_limits_and_may_leave_out_predictions(store):
    _two_trials(store)
    cands = store.candidates_frame()
    assert list(cands["hash"]) == ["h0", "a0", "h1", "a1"]  # evaluation order, across trials
    assert list(cands["eval_index"]) == [0, 1, 2, 3]
    assert list(cands["trial_id"]) == [0, 0, 1, 1] and list(cands["iteration"]) == [0, 0, 1, 1]
    assert cands["predictions"].iloc[3] == {"homo_lumo_gap": [0.6, 0.05]}  # decoded (a JSON pair)
    assert [bool(h) for h in cands["hit"]] == [True, False, True, False]
    # by distance, ties in evaluation order
    assert list(store.candidates_frame(order_by_distance=True)["hash"]) == ["h0", "h1", "a1", "a0"]
    assert list(store.candidates_frame(order_by_distance=True, limit=3)["hash"]) == ["h0", "h1", "a1"]
    assert list(store.candidates_frame(limit=1)["hash"]) == ["h0"]
    bare = store.candidates_frame(predictions=False)
    assert "predictions" not in bare.columns and list(bare["hash"]) == ["h0", "a0", "h1", "a1"]
    assert all(ISO.fullmatch(t) for t in bare["created"])


def test_motifs_are_stored_for_candidates_with_a_motif_only(store):
    _two_trials(store)
    motifs = store.motifs_frame().set_index("hash")
    assert sorted(motifs.index) == ["h0", "h1"]
    assert motifs.loc["h0", "motif"] == "m0" and motifs.loc["h0", "core"] == "3:VAC"
    assert motifs.loc["h0", "spectators"] == "7:Se"
    assert motifs.loc["h1", "spectators"] == ""  # none stripped: empty text, not NULL


def test_a_new_oracle_result_replaces_the_earlier_one(store):
    _two_trials(store)
    store.record_oracle("h0", "error", {"error": "RuntimeError: lost worker"})
    store.record_oracle("h1", "converged", {"homo_lumo_gap": 0.61})
    store.record_oracle("h0", "converged", {"homo_lumo_gap": 0.58, "energy": -10.0})
    oracle = store.oracle_frame().set_index("hash")
    assert sorted(oracle.index) == ["h0", "h1"]
    assert oracle.loc["h0", "status"] == "converged"
    assert oracle.loc["h0", "result"] == {"homo_lumo_gap": 0.58, "energy": -10.0}
    assert all(ISO.fullmatch(t) for t in oracle["created"])


def test_meta_round_trips_text_as_is_and_other_values_as_json(store):
    assert store.get_meta("missing") is None and store.get_meta("missing", "fallback") == "fallback"
    store.set_meta("campaign_yaml", "name: x\n")
    store.set_meta("seeds", {"seed": 3, "strategy": "random"})
    store.set_meta("count", 2)
    assert store.get_meta("campaign_yaml") == "name: x\n"
    assert json.loads(store.get_meta("seeds")) == {"seed": 3, "strategy": "random"}
    assert store.get_meta("count") == "2"
    store.set_meta("count", 3)  # one value per key: the newest
    assert store.get_meta("count") == "3"


def test_a_read_only_store_refuses_every_write(tmp_path):
    path = tmp_path / "s.sqlite"
    writer = CampaignStore(sqlite_url(path))
    _two_trials(writer)
    writer.close()
    ro = CampaignStore.open(sqlite_url(path))
    try:
        assert ro.readonly and ro.n_trials() == 2
        with pytest.raises(StoreError, match="opened read-only"):
            ro.record_trial(_trial(2), [_cand("new", 0.2)])
        with pytest.raises(StoreError, match="opened read-only"):
            ro.record_oracle("h0", "converged", {})
        with pytest.raises(StoreError, match="opened read-only"):
            ro.set_meta("k", "v")
        assert ro.n_trials() == 2 and ro.oracle_frame().empty and ro.get_meta("k") is None
    finally:
        ro.close()


def test_a_trial_with_an_already_stored_candidate_is_refused_whole(store):
    _two_trials(store)
    trial = _trial(2, 2, n_valid=5)
    fresh = _cand("fresh", 0.3, hit=True, motif="m9", core="5:VAC")
    obs = [Observation({"temperature": 1.0}, 0.5, 0.1, 5, 1, 2)]
    with pytest.raises(StoreError, match=r"trial 2 or one of its candidates is already stored"):
        store.record_trial(trial, [fresh, _cand("a0", 0.3)], ax_snapshot='{"after": 2}', observations=obs)
    # all or nothing: no trial row, no candidate, motif, observation or Ax state of trial 2
    assert store.n_trials() == 2 and store.last_trial() == (1, 1)
    assert store.known_hashes() == {"h0", "a0", "h1", "a1"}
    assert "fresh" not in set(store.motifs_frame()["hash"])
    assert store.latest_ax_snapshot() is None
    assert [len(o) for _, o in store.observations_by_trial()] == [0, 0]
    assert store.n_evaluations() == 17
    # the store goes on: the same trial without the duplicate is stored, numbered after the others
    store.record_trial(trial, [fresh], ax_snapshot='{"after": 2}', observations=obs)
    assert store.n_trials() == 3 and store.latest_ax_snapshot() == '{"after": 2}'
    assert store.candidates_frame().set_index("hash").loc["fresh", "eval_index"] == 4


def test_a_trial_id_stored_twice_is_refused(store):
    _two_trials(store)
    with pytest.raises(StoreError, match=r"trial 1 or one of its candidates is already stored"):
        store.record_trial(_trial(1, 1), [_cand("other", 0.2)])
    assert "other" not in store.known_hashes()


def test_a_candidate_hash_twice_in_one_trial_is_refused(store):
    with pytest.raises(StoreError, match="trial 0"):
        store.record_trial(_trial(0), [_cand("dup", 0.1), _cand("dup", 0.2)])
    assert store.n_trials() == 0 and store.n_candidates() == 0


def test_the_file_is_in_wal_mode(store):
    store.record_trial(_trial(0), [_cand("x", 0.1)])
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_urls_and_paths(tmp_path):
    url = sqlite_url(tmp_path / "a" / ".." / "s.sqlite")
    assert url == f"sqlite:///{tmp_path.resolve() / 's.sqlite'}"
    assert sqlite_path(url) == tmp_path.resolve() / "s.sqlite"
    assert sqlite_path("sqlite://") is None  # in memory
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://user@db/campaign") is None
    assert sqlite_path("not a url") is None


def test_defects_text_round_trips():
    pairs = [(3, "VAC"), (70, "Se")]
    assert format_defects(pairs) == "3:VAC,70:Se"
    assert parse_defects(format_defects(pairs)) == pairs
    assert format_defects([]) == "" and parse_defects("") == []
