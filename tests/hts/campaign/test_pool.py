"""The oracle's pool of candidates (hts.campaign.pool): read incrementally, bounded, and choosing as the
whole store does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from hts.campaign.acquisition import marginal_hit_probability
from hts.campaign.config import parse_campaign
from hts.campaign.pool import OraclePool
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, sqlite_url
from hts.campaign.verifier import MIN_PROBABILITY, REFERENCE, Verifier
from hts.hosts import get_host
from tests.hts.campaign.store_fixtures import CAMPAIGN_YAML

CAMPAIGN = parse_campaign(CAMPAIGN_YAML)  # one target: homo_lumo_gap in [0.45, 0.75]
HOST = get_host(CAMPAIGN.host.material, CAMPAIGN.host.supercell)
WINDOWS = [CAMPAIGN.targets["homo_lumo_gap"].window]


def cand(hash_: str, gap: float, std: float = 0.05, distance: float = 0.0, motif: str | None = None) -> CandidateRecord:
    """A stored candidate predicted at ``gap`` +- ``std``; a hit of ``motif`` when one is given."""
    site = int(hash_, 16) % 48
    return CandidateRecord(
        hash=hash_,
        defects=f"{site}:VAC",
        n_defects=1,
        predictions={"homo_lumo_gap": (gap, std)},
        distance=distance,
        hit=motif is not None,
        motif=motif,
        core=f"{site}:VAC" if motif is not None else None,
        spectators="" if motif is not None else None,
    )


def add_trial(store: CampaignStore, trial_id: int, cands: Sequence[CandidateRecord]) -> None:
    trial = TrialRecord(trial_id, trial_id, "random", {}, len(cands), len(cands), len(cands), 0, {}, 0.1)
    store.record_trial(trial, cands)


def probability(gap: float, std: float = 0.05) -> float:
    return float(marginal_hit_probability(np.array([[gap]]), np.array([[std]]), WINDOWS)[0])


@pytest.fixture
def store(tmp_path):
    s = CampaignStore(sqlite_url(tmp_path / "campaign.sqlite"))
    yield s
    s.close()


def spy_reads(store: CampaignStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of candidates each ``candidates_since`` call returns, call by call."""
    read = store.candidates_since
    counts: list[int] = []

    def counted(trial_id: int | None) -> Any:
        frame = read(trial_id)
        counts.append(len(frame))
        return frame

    monkeypatch.setattr(store, "candidates_since", counted)
    return counts


def test_an_update_reads_only_the_trials_stored_since_the_last(store, monkeypatch):
    add_trial(store, 0, [cand(f"{i:04x}", 0.6) for i in range(5)])
    add_trial(store, 1, [cand(f"{i:04x}", 0.6) for i in range(5, 8)])
    reads = spy_reads(store, monkeypatch)
    pool = OraclePool(CAMPAIGN.targets, MIN_PROBABILITY, HOST)
    assert pool.update(store) == 8 and len(pool) == 8
    assert pool.update(store) == 0 and reads == [8, 0]  # nothing new: nothing read
    add_trial(store, 2, [cand(f"{i:04x}", 0.6) for i in range(8, 10)])
    assert pool.update(store) == 2 and reads == [8, 0, 2]
    assert sorted(pool.rows) == [f"{i:04x}" for i in range(10)]


def test_candidates_below_the_minimum_probability_are_not_kept(store):
    gaps = {"0001": 0.6, "0002": 0.3, "0003": 0.9, "0004": 0.44, "0005": 1.2}
    add_trial(store, 0, [cand(h, g) for h, g in gaps.items()])
    minimum = probability(0.44)  # 0004 is exactly at the minimum: kept
    pool = OraclePool(CAMPAIGN.targets, minimum, HOST)
    assert pool.update(store) == 5
    assert sorted(pool.rows) == ["0001", "0004"]
    assert pool.rows["0001"].probability == pytest.approx(probability(0.6))


def test_each_group_keeps_its_best_rows_ties_in_stored_order(store):
    gaps = [0.5, 0.6, 0.55, 0.6, 0.7, 0.6]  # probability: 0.6 best, then 0.55, then 0.5 = 0.7
    add_trial(store, 0, [cand(f"{i:04x}", g, motif="m1") for i, g in enumerate(gaps)])
    add_trial(store, 1, [cand("00aa", 0.5, motif="m2"), cand("00ab", 0.6), cand("00ac", 0.6)])
    pool = OraclePool(CAMPAIGN.targets, MIN_PROBABILITY, HOST, per_group=3)
    pool.update(store)
    assert sorted(pool.members["m1"]) == ["0001", "0003", "0005"]  # the three at 0.6
    assert sorted(pool.rows) == ["0001", "0003", "0005", "00aa", "00ab", "00ac"]  # misses: one group (one V_S each)
    add_trial(store, 2, [cand("00b0", 0.6, motif="m1"), cand("00b1", 0.55, motif="m1")])
    pool.update(store)
    assert sorted(pool.members["m1"]) == ["0001", "0003", "0005"]  # a later tie loses to the stored one


def test_the_total_keeps_the_best_rows_verified_groups_first_to_go(store):
    add_trial(store, 0, [cand(f"{i:04x}", 0.6 + 0.01 * i, motif=f"m{i}") for i in range(6)])
    pool = OraclePool(CAMPAIGN.targets, MIN_PROBABILITY, HOST, total=4)
    pool.update(store)
    assert sorted(pool.rows) == ["0000", "0001", "0002", "0003"]  # nearest the window's centre
    pool.discard("9999", "m0")  # a candidate of m0 outside the pool was verified
    add_trial(store, 1, [cand("0010", 0.615, motif="m9"), cand("0011", 0.9)])
    pool.update(store)
    # m0's row (the best) goes before 0003 (the worst of the rest); 0011 is below the minimum
    assert sorted(pool.rows) == ["0001", "0002", "0003", "0010"]


def test_read_at_once_or_trial_by_trial_the_pool_is_the_same(store, tmp_path):
    trials = [
        [cand(f"{t:02x}{i:02x}", 0.45 + 0.02 * ((t * 7 + i) % 15), motif=f"m{i % 4}") for i in range(12)]
        for t in range(5)
    ]
    incremental = OraclePool(CAMPAIGN.targets, MIN_PROBABILITY, HOST, per_group=5, total=14)
    for t, cands in enumerate(trials):
        add_trial(store, t, cands)
        incremental.update(store)
    at_once = OraclePool(CAMPAIGN.targets, MIN_PROBABILITY, HOST, per_group=5, total=14)
    at_once.update(store)
    assert len(at_once) == 14 and list(incremental.choices()) == list(at_once.choices())


class Pending:
    """A job that never finishes."""

    def done(self) -> bool:
        return False

    def cancel(self) -> None:
        pass


def pending_submit(fn: Any, *args: Any, key: str) -> Pending:
    return Pending()


def make_verifier(store: CampaignStore, tmp_path, slots: int = 2) -> Verifier:
    store.set_meta(REFERENCE, {"homo": -6.0, "lumo": -4.0})  # no reference job
    host = get_host(CAMPAIGN.host.material, CAMPAIGN.host.supercell)
    return Verifier(CAMPAIGN, host, tmp_path, store, pending_submit, slots, progress=None)


def test_the_pool_chooses_as_the_whole_store_does(store, tmp_path):
    # equal predictions (equal probability and acquisition) in different groups: the acquisition takes
    # the first in the order of hts status (distance, then uncertainty), not the stored order
    first = [
        cand("1000", 0.6, distance=0.3),
        cand("1001", 0.6, distance=0.1),
        cand("1002", 0.6, distance=0.2),
        cand("1003", 0.55, std=0.08, distance=0.0, motif="ma"),
        cand("1004", 0.6, std=0.01, distance=0.0, motif="ma"),
        cand("1005", 0.6, std=0.01, distance=0.0, motif="mb"),
        cand("1006", 0.7, distance=0.0, motif="mc"),
        cand("1007", 0.3, distance=0.5),  # below the minimum
        cand("1008", 0.65, std=0.2, distance=0.0, motif="md"),
        cand("1009", 0.5, distance=0.0, motif="me"),
    ]
    add_trial(store, 0, first)
    store.record_oracle("1005", "converged", {})  # verified before the verifier starts: mb is credited
    v = make_verifier(store, tmp_path, slots=2)
    v.pump()  # two jobs in flight, chosen from the pool
    assert len(v.jobs) == 2
    add_trial(
        store,
        1,
        [
            cand("2000", 0.6, distance=0.05),
            cand("2001", 0.6, std=0.01, distance=0.0, motif="mb"),
            cand("2002", 0.6, std=0.01, distance=0.0, motif="mf"),
            cand("2003", 0.6, distance=0.05),
        ],
    )
    for k in (1, 2, 3):
        pooled = [r["hash"] for r in v._choose_pooled(k, MIN_PROBABILITY)]
        ranked = [r["hash"] for r in v._choose_ranked(k, MIN_PROBABILITY)]
        assert pooled == ranked and len(pooled) == k
    assert [r["hash"] for r in v._choose_pooled(1, 0.5)] == [r["hash"] for r in v._choose_ranked(1, 0.5)]
    job, (hash_, defects) = next(iter(v.jobs.items()))
    del v.jobs[job]
    v._record(hash_, defects, RuntimeError("SCF exploded"))  # verified now: out of the pool, its group credited
    assert hash_ in v.verified and hash_ not in v.pool.rows and hash_ not in v._busy()
    for k in (1, 3):
        assert [r["hash"] for r in v._choose_pooled(k, MIN_PROBABILITY)] == [
            r["hash"] for r in v._choose_ranked(k, MIN_PROBABILITY)
        ]


def test_a_resumed_verifier_skips_verified_candidates_and_credits_their_motifs(store, tmp_path):
    add_trial(
        store,
        0,
        [
            cand("3000", 0.6, std=0.01, motif="m1"),
            cand("3001", 0.6, std=0.01, motif="m1"),
            cand("3002", 0.6, std=0.05, distance=0.1),
        ],
    )
    store.record_oracle("3000", "failed", {})  # a failed SCF still credits its motif
    v = make_verifier(store, tmp_path)
    assert v._n_verified() == 1
    assert (
        [r["hash"] for r in v._choose(1, MIN_PROBABILITY)]
        == ["3002"]
        == [r["hash"] for r in v._choose_ranked(1, MIN_PROBABILITY)]
    )


def test_pump_chooses_from_the_pool_without_reading_the_whole_store(store, tmp_path, monkeypatch):
    from hts.campaign.results import CampaignResults

    add_trial(store, 0, [cand(f"{i:04x}", 0.6, motif=f"m{i}") for i in range(6)])
    v = make_verifier(store, tmp_path, slots=2)

    def whole_store(self: CampaignResults) -> None:
        raise AssertionError("the whole store was read")

    monkeypatch.setattr(CampaignResults, "ranked", whole_store)
    v.pump()
    assert len(v.jobs) == 2 and len(v.pool) == 6


def test_a_rescore_replaces_the_predictions_and_drops_what_falls_below_the_minimum(store):
    add_trial(store, 0, [cand("0001", 0.6, motif="a"), cand("0002", 0.62, motif="b"), cand("0003", 0.8)])
    pool = OraclePool(CAMPAIGN.targets, MIN_PROBABILITY, HOST)
    pool.update(store)
    assert len(pool) == 3

    def refitted(defects: list[str]) -> tuple[np.ndarray, np.ndarray]:
        # the refitted model moves candidate 0001 far outside and 0003 to the window's centre
        gap = {"1:VAC": (1.4, 0.02), "2:VAC": (0.62, 0.05), "3:VAC": (0.6, 0.02)}
        return np.array([[gap[d][0]] for d in defects]), np.array([[gap[d][1]] for d in defects])

    assert pool.rescore(refitted) == 2
    assert sorted(pool.rows) == ["0002", "0003"]
    row = pool.rows["0003"]
    assert row.mean == (0.6,) and row.std == (0.02,) and row.distance == 0.0
    assert row.probability == pytest.approx(probability(0.6, 0.02))
    assert [r.hash for r in pool.choices()] == ["0003", "0002"]  # ranked by the new stds (both inside)
    assert pool.rescore(refitted) == 2  # the same model again changes nothing


def test_the_verifier_rescoring_its_pool_asks_the_scorer_for_the_campaign_targets(store, tmp_path):
    from types import SimpleNamespace

    add_trial(store, 0, [cand("0001", 0.6, motif="a"), cand("0002", 0.62, motif="b")])
    v = Verifier(CAMPAIGN, HOST, tmp_path, store, pending_submit, 1, progress=None)
    v.pool.update(store)
    seen: list[int] = []

    def score(batch: Any) -> Any:
        seen.append(len(batch))
        n = len(batch)  # a model with one more target than the campaign, in another order
        return SimpleNamespace(
            targets=["formation_energy", "homo_lumo_gap"], mean=np.tile([3.0, 1.5], (n, 1)), std=np.full((n, 2), 0.01)
        )

    assert v.rescore(score) == 0 and seen == [2]  # both now predicted at 1.5 eV: outside, gone


def test_after_a_refit_the_top_up_ranks_by_the_refitted_model(store, tmp_path):
    from types import SimpleNamespace

    # stored: 0001 the likelier hit; the refitted model says 0002 is, and puts 0001 outside
    add_trial(store, 0, [cand("0001", 0.6, std=0.01, motif="a"), cand("0002", 0.8, std=0.2)])
    store.set_meta(REFERENCE, "{}")
    v = Verifier(CAMPAIGN, HOST, tmp_path, store, pending_submit, 1, progress=None)
    assert [r["hash"] for r in v._choose_ranked(1, 0.0)] == ["0001"]
    refitted = {"1:VAC": 1.5, "2:VAC": 0.6}

    def score(batch: Any) -> Any:
        gaps = [refitted[d] for d in batch_defects(batch)]
        return SimpleNamespace(
            targets=["homo_lumo_gap"], mean=np.array([[g] for g in gaps]), std=np.full((len(gaps), 1), 0.01)
        )

    v.rescore(score)
    chosen = v._choose_ranked(1, 0.0)
    assert [r["hash"] for r in chosen] == ["0002"] and chosen[0]["mean"] == (0.6,)


def batch_defects(batch: Any) -> list[str]:
    """Each configuration of ``batch`` as stored defects text (one vacancy each here)."""
    from hts.campaign.store import format_defects

    return [format_defects(c.defects) for c in batch.to_configs()]
