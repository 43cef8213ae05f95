"""The oracle beside generation (hts.campaign.verifier), with a fake oracle on threads."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hts.campaign.results import CampaignResults
from hts.campaign.runner import run_campaign
from hts.campaign.store import CampaignStore, sqlite_url
from hts.campaign.verifier import MIN_PROBABILITY, Verifier, motif_groups, thread_submit
from tests.hts.campaign.conftest import campaign_text, fake_xtb_result

CALLS: list[tuple] = []


def fake_oracle(host_name, supercell, defects, settings):
    """A stand-in for GFN1-xTB: the gap falls with the number of vacancies; fails on request."""
    CALLS.append(defects)
    if any(site == 13 for site, _ in defects):
        raise RuntimeError("SCF exploded on site 13")
    return fake_xtb_result(defects)


@pytest.fixture
def campaign_dir(tmp_path, tiny_surrogate):
    path = tmp_path / "c.yaml"
    path.write_text(campaign_text(tiny_surrogate, iterations=2, samples=64))
    _, out = run_campaign(path, out=tmp_path / "run")
    return out


def _verifier(out, slots=2, compute=fake_oracle):
    read = CampaignResults.open(out)
    read.close()
    res = CampaignResults(out, read.campaign, read.host, CampaignStore(sqlite_url(out / "campaign.sqlite")))
    pool = ThreadPoolExecutor(slots)
    v = Verifier(res.campaign, res.host, out, res.store, thread_submit(pool), slots, compute=compute, progress=None)
    return res, v


def _drain(v: Verifier, rounds: int, minimum: float = 0.0) -> None:
    for _ in range(rounds):
        v.pump(minimum_probability=minimum)
        deadline = time.time() + 5
        while v.jobs and time.time() < deadline:
            time.sleep(0.01)
            v.pump(minimum_probability=0.0, limit=0)


def test_verifies_new_motifs_first_and_stores_every_result(campaign_dir):
    res, v = _verifier(campaign_dir)
    try:
        _drain(v, 3)
        oracle = res.store.oracle_frame()
        assert res.store.get_meta("oracle_reference") is not None  # the pristine host came first
        assert 4 <= len(oracle) <= 6 and oracle["hash"].is_unique
        ranked = res.ranked()
        verified = ranked[ranked["oracle_status"].notna()]
        groups = motif_groups(verified, res.host)
        hits = verified[verified["hit"].astype(bool)]
        # every verified hit is of a motif no other verified candidate covers
        assert groups[hits.index].is_unique
        assert "oracle_homo_lumo_gap" in ranked and verified["oracle_homo_lumo_gap"].notna().any()
    finally:
        res.close()


def test_while_the_loop_runs_a_covered_motif_is_not_verified_again(campaign_dir):
    res, v = _verifier(campaign_dir)
    try:
        for _ in range(60):  # the loop's pump (candidates from the pool) until it sends nothing more
            before = len(res.store.oracle_frame())
            _drain(v, 1, minimum=MIN_PROBABILITY)
            if len(res.store.oracle_frame()) == before:
                break
        verified = [v.groups[h] for h in res.store.oracle_frame()["hash"] if h in v.groups]
        assert verified and len(verified) == len(set(verified))
        left = {r.group for r in v.pool.rows.values()}
        assert left & set(verified)  # other placements of the covered motifs were there to choose
        v.pump()
        assert not v.jobs  # and the slots stay free
    finally:
        res.close()


def test_a_failing_oracle_call_is_recorded_and_the_rest_goes_on(campaign_dir):
    def flaky(host_name, supercell, defects, settings):
        if defects and len(CALLS) % 2 == 0:
            CALLS.append(defects)
            raise RuntimeError("SCF exploded")
        return fake_oracle(host_name, supercell, defects, settings)

    res, v = _verifier(campaign_dir, compute=flaky)
    try:
        _drain(v, 3)
        oracle = res.store.oracle_frame()
        errors = oracle[oracle["status"] == "error"]
        assert len(errors) >= 1 and len(oracle) > len(errors)
        assert all("RuntimeError: SCF exploded" in r["error"] for r in errors["result"])
    finally:
        res.close()


def test_a_second_verifier_repeats_no_finished_verification(campaign_dir):
    res, v = _verifier(campaign_dir)
    _drain(v, 2)
    first = set(res.store.oracle_frame()["hash"])
    res.close()
    CALLS.clear()
    res, v = _verifier(campaign_dir)  # a resumed campaign
    try:
        _drain(v, 2)
        again = res.store.oracle_frame()
        assert again["hash"].is_unique and first < set(again["hash"])
        assert not any(c == () for c in CALLS)  # the stored reference is not recomputed
    finally:
        res.close()


def test_finish_tops_up_to_top_k_and_cancels_at_the_deadline(campaign_dir):
    res, v = _verifier(campaign_dir, slots=1)
    try:
        v.finish(deadline=None, top_k=3)
        assert len(res.store.oracle_frame()) == 3 and not v.jobs

        def slow(*args):
            time.sleep(2)
            return fake_oracle(*args)

        v.compute = slow
        v.finish(deadline=time.perf_counter() + 0.3, top_k=5)
        assert not v.jobs and len(res.store.oracle_frame()) == 3  # the slow job was cancelled, not stored
    finally:
        res.close()


def test_progress_is_reported_for_every_stored_result_and_logged_by_default(campaign_dir, caplog):
    import logging

    calls: list[tuple] = []
    res, v = _verifier(campaign_dir)
    v.progress = lambda *a: calls.append(a)
    try:
        _drain(v, 1)
        n = len(res.store.oracle_frame())
        assert [c[0] for c in calls] == list(range(1, n + 1))  # verified so far, one call per result
        assert all(c[3] == "converged" and len(c[2]) == 16 for c in calls)
        from hts.campaign.verifier import log_progress

        v.progress = log_progress
        with caplog.at_level(logging.INFO, logger="hts.campaign.verifier"):
            _drain(v, 1)
        assert any("oracle:" in r.message and "verified" in r.message for r in caplog.records)
    finally:
        res.close()


def slow_oracle(host_name, supercell, defects, settings):
    """The fake oracle, slow enough that its worker can be killed while it runs."""
    if defects:
        time.sleep(4)
    return fake_oracle(host_name, supercell, defects, settings)


@pytest.mark.slow
def test_a_worker_killed_mid_verification_has_its_job_redone_elsewhere(campaign_dir):
    import os
    import signal

    from distributed import Client, LocalCluster

    from hts.campaign.verifier import dask_submit

    read = CampaignResults.open(campaign_dir)
    read.close()
    store = CampaignStore(sqlite_url(campaign_dir / "campaign.sqlite"))
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        v = Verifier(
            read.campaign, read.host, campaign_dir, store, dask_submit(client), 1, compute=slow_oracle, progress=None
        )
        while v.reference_job is not None:  # the pristine reference first (no sleep)
            v.pump(minimum_probability=0.0, limit=0)
            time.sleep(0.05)
        v.pump(minimum_probability=0.0)
        (job,) = v.jobs
        deadline = time.time() + 20
        where = None
        while where is None and time.time() < deadline:  # the worker running the job
            where = next(iter(client.who_has([job]).get(job.key, ())), None) or next(
                (w for w, keys in client.processing().items() if job.key in keys), None
            )
            time.sleep(0.1)
        assert where is not None
        pid = client.run(os.getpid, workers=[where])[where]
        assert not job.done()  # killed mid-job
        os.kill(pid, signal.SIGKILL)
        v.finish(deadline=time.perf_counter() + 60, top_k=1)
    oracle = store.oracle_frame()
    store.close()
    assert len(oracle) == 1 and oracle["status"].iloc[0] == "converged"  # redone on the other worker


def test_a_failing_pristine_reference_stops_verification_not_the_campaign(campaign_dir):
    def no_reference(host_name, supercell, defects, settings):
        if not defects:
            raise RuntimeError("(sygvd) failed to solve eigenvalue problem")
        return fake_oracle(host_name, supercell, defects, settings)

    res, v = _verifier(campaign_dir, compute=no_reference)
    try:
        v.finish(deadline=time.perf_counter() + 30, top_k=3)  # returns, does not raise
        assert v.broken is not None and "sygvd" in v.broken
        assert not v.jobs and len(res.store.oracle_frame()) == 0
        assert v.pump() == 0  # later pumps do nothing
    finally:
        res.close()
