"""Verification outside the loop (hts.campaign.verify): which candidates the oracle gets first, and
``verify_top`` with a fake oracle on an in-process "cluster" (no Dask, no xTB)."""

from __future__ import annotations

from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

import hts.campaign.verifier
from hts.campaign import verify
from hts.campaign.config import parse_campaign
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, format_defects, sqlite_url
from hts.campaign.verifier import REFERENCE
from hts.hosts import get_host
from tests.hts.campaign.conftest import fake_xtb_result

HOST = get_host("MoS2", (4, 4, 1))
S = [int(s) for s in HOST.sites_of("S")]

CAMPAIGN = parse_campaign(
    """\
name: verify
host: {material: MoS2, supercell: [4, 4, 1]}
targets:
  homo_lumo_gap: {value: 0.6, tolerance: 0.15}
strategy: random
dask: {workers: 3}
oracle: {enabled: true, top_k: 2}
seed: 5
"""
)

# hash -> (motif, predicted gap, its std, distance): three placements of motif A, each nearly sure to be
# inside the window, one of motif B less sure, and a miss.
POOL = {
    "a1": ("A", 0.60, 0.02, 0.0),
    "a2": ("A", 0.60, 0.03, 0.0),
    "a3": ("A", 0.60, 0.04, 0.0),
    "b1": ("B", 0.60, 0.10, 0.0),
    "miss": (None, 1.50, 0.05, 0.75),
}
DEFECTS = {h: [(S[i], "VAC"), (S[i + 10], "Se")] for i, h in enumerate(POOL)}


def _pool(motifs: bool = True) -> pd.DataFrame:
    rows = [
        {"hash": h, "pred_homo_lumo_gap": m, "std_homo_lumo_gap": s, **({"motif": g} if motifs else {})}
        for h, (g, m, s, _) in POOL.items()
    ]
    return pd.DataFrame(rows, index=[10 * i for i in range(len(rows))])


def test_distinct_motifs_are_chosen_before_a_second_placement():
    chosen = verify.choose_for_oracle(_pool(), CAMPAIGN, HOST, 2)
    assert list(chosen["hash"]) == ["a1", "b1"]  # not a2, though it is surer than b1
    assert list(chosen.index) == [0, 30]  # rows of the pool as they were
    # without motifs every candidate is its own group: the two surest
    assert list(verify.choose_for_oracle(_pool(motifs=False), CAMPAIGN, HOST, 2)["hash"]) == ["a1", "a2"]


def test_a_candidate_without_a_motif_is_its_own_group():
    pool = _pool()
    pool.loc[pool["hash"] == "a2", "motif"] = None  # a miss placed like a hit: a group of its own
    assert set(verify.choose_for_oracle(pool, CAMPAIGN, HOST, 2)["hash"]) == {"a1", "a2"}


def test_a_small_pool_is_taken_whole_most_likely_first_and_an_empty_one_is_empty():
    chosen = verify.choose_for_oracle(_pool(), CAMPAIGN, HOST, 10)
    assert list(chosen["hash"]) == ["a1", "a2", "a3", "b1", "miss"]
    empty = _pool().iloc[:0]
    assert verify.choose_for_oracle(empty, CAMPAIGN, HOST, 3).empty


def test_every_target_counts():
    two = parse_campaign(
        "name: t\nhost: {material: MoS2, supercell: [4, 4, 1]}\n"
        "targets: {homo_lumo_gap: {value: 0.6, tolerance: 0.15}, formation_energy: {range: [0.0, 5.0]}}\n"
    )
    pool = _pool(motifs=False)
    pool["pred_formation_energy"] = [9.0, 2.0, 2.0, 2.0, 2.0]  # a1 is sure to be outside the energy window
    pool["std_formation_energy"] = 0.1
    chosen = verify.choose_for_oracle(pool, two, HOST, 10)
    # a1 last: its formation energy is 40 std outside (probability 0), the miss's gap only 15
    assert list(chosen["hash"]) == ["a2", "a3", "b1", "miss", "a1"]


# -- verify_top ---------------------------------------------------------------------------------


oracle_calls: list[tuple] = []


def fake_oracle(host_name, supercell, defects, settings):
    """A stand-in for xTB: converged, its gap falling with the number of vacancies."""
    oracle_calls.append(tuple(defects))
    return fake_xtb_result(defects)


def _submit(fn, *args, key):
    """Runs the job at once: a finished future."""
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future


@pytest.fixture
def cluster(monkeypatch):
    """No Dask: ``dask_client`` records how it was asked for, jobs run in the calling thread."""
    asked: list[tuple] = []

    @contextmanager
    def dask_client(*args, **kwargs):
        asked.append((args, kwargs))
        yield "client"

    monkeypatch.setattr("hts.cluster.dask_client", dask_client)
    monkeypatch.setattr("hts.oracle.blas.fast_blas_env", lambda: {"BLAS": "fast"})
    monkeypatch.setattr(verify, "dask_submit", lambda client: _submit if client == "client" else None)
    monkeypatch.setattr("hts.labelling.compute_one", fake_oracle)
    monkeypatch.setattr(hts.campaign.verifier, "POLL_S", 0.0)
    oracle_calls.clear()
    return asked


def _campaign_dir(tmp_path: Path, oracle: dict[str, tuple[str, dict]] | None = None, reference: bool = False) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    store = CampaignStore(sqlite_url(out / "campaign.sqlite"))
    cands = [
        CandidateRecord(
            h,
            format_defects(DEFECTS[h]),
            2,
            {"homo_lumo_gap": (m, s)},
            d,
            g is not None,
            motif=g,
            core=format_defects(DEFECTS[h]) if g else None,
        )
        for h, (g, m, s, d) in POOL.items()
    ]
    store.record_trial(TrialRecord(0, 0, "random", {}, 5, 5, 5, 4, {}, 0.1), cands)
    for h, (status, result) in (oracle or {}).items():
        store.record_oracle(h, status, result)
    if reference:
        store.set_meta(REFERENCE, fake_oracle("MoS2", (4, 4, 1), (), None))
    store.close()
    oracle_calls.clear()
    return out


def _oracle(out: Path) -> pd.DataFrame:
    store = CampaignStore.open(sqlite_url(out / "campaign.sqlite"))
    try:
        return store.oracle_frame().set_index("hash")
    finally:
        store.close()


def test_verify_top_stores_the_chosen_candidates(tmp_path, cluster):
    out = _campaign_dir(tmp_path)
    progress: list[tuple] = []
    stored = verify.verify_top(CAMPAIGN, HOST, out, progress=lambda *a: progress.append(a))
    assert stored == 2  # oracle.top_k
    oracle = _oracle(out)
    assert set(oracle.index) == {"a1", "b1"} and set(oracle["status"]) == {"converged"}
    assert oracle.loc["a1", "result"]["homo_lumo_gap"] == pytest.approx(1.4)  # one vacancy
    assert "normalized_homo" in oracle.loc["a1", "result"]  # normalised to the pristine reference
    assert oracle_calls[0] == ()  # the pristine reference first
    assert sorted(oracle_calls[1:]) == sorted(tuple(DEFECTS[h]) for h in ("a1", "b1"))
    assert [p[0] for p in progress] == [1, 2] and {p[2] for p in progress} == {"a1", "b1"}
    ((args, kwargs),) = cluster  # one cluster: the campaign's scheduler (none: local), its workers, the fast BLAS
    assert args == (None, 3, 1, {"BLAS": "fast"}) and kwargs == {"security": None}


def test_verify_top_skips_what_is_verified_and_adds_top_k_more(tmp_path, cluster):
    earlier = {"a1": ("converged", {"homo_lumo_gap": 0.61})}
    out = _campaign_dir(tmp_path, earlier, reference=True)
    before = _oracle(out).loc["a1", "created"]
    assert verify.verify_top(CAMPAIGN, HOST, out, top_k=1, progress=None) == 1
    oracle = _oracle(out)
    assert set(oracle.index) == {"a1", "b1"}  # motif A is verified: B is worth more than a2
    assert oracle.loc["a1", "result"] == {"homo_lumo_gap": 0.61} and oracle.loc["a1", "created"] == before
    assert oracle_calls == [tuple(DEFECTS["b1"])]  # neither a1 again nor the stored reference


def test_verify_top_with_nothing_to_verify_stores_nothing(tmp_path, cluster):
    everything = {h: ("converged", {"homo_lumo_gap": 0.6}) for h in POOL}
    out = _campaign_dir(tmp_path, everything, reference=True)
    assert verify.verify_top(CAMPAIGN, HOST, out, top_k=3, progress=None) == 0
    assert oracle_calls == [] and len(_oracle(out)) == len(POOL)


def test_verify_top_of_a_folder_without_a_store_refuses_and_creates_nothing(tmp_path, cluster):
    from hts.errors import StoreError

    with pytest.raises(StoreError, match="no campaign store"):
        verify.verify_top(CAMPAIGN, HOST, tmp_path, progress=None)
    assert list(tmp_path.iterdir()) == [] and oracle_calls == []
