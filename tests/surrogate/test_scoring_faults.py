"""Fault injection on Dask scoring: a worker killed in the middle of a batch."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from hts.defects import PAD, ConfigBatch
from surrogate.scoring import DaskScorer, score_batch


def _random_batch(host, n: int, seed: int = 0) -> ConfigBatch:
    rng = np.random.default_rng(seed)
    k = 6
    sites = np.full((n, k), PAD, dtype=np.int32)
    codes = np.zeros((n, k), dtype=np.int8)
    for i in range(n):
        m = int(rng.integers(1, k + 1))
        s = np.sort(rng.choice(host.n_sites, size=m, replace=False))
        sites[i, :m] = s
        codes[i, :m] = [rng.choice(np.flatnonzero(host.allowed[x])) for x in s]
    return ConfigBatch(host, sites, codes)


@pytest.mark.slow
def test_worker_killed_mid_scoring_every_row_once_in_order(model_dir, host4):
    from distributed import Client, LocalCluster

    batch = _random_batch(host4, 60_000)
    expected = score_batch(model_dir, batch)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        scorer = DaskScorer(model_dir, client=client, chunk_size=2_000)
        scorer.warm_up()
        killed: list[int] = []

        def kill_busy_worker() -> None:
            deadline = time.time() + 60
            while time.time() < deadline:
                busy = [w for w, keys in client.processing().items() if keys]
                if busy:
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.01)

        t = threading.Thread(target=kill_busy_worker)
        t.start()
        got = scorer.score(batch)
        t.join()
    assert killed, "a worker should have been killed while scoring"
    assert len(got) == len(batch)
    np.testing.assert_allclose(got.mean, expected.mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got.std, expected.std, rtol=1e-6, atol=1e-9)
