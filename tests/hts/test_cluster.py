"""hts.cluster: the project's Dask clients keep Dask's debugging logs short."""

from __future__ import annotations

import subprocess
import sys

import dask
import distributed  # noqa: F401  (its config defaults)
import numpy as np

from hts.cluster import DEBUG_LOG_LENGTH, dask_client

KEY = "distributed.admin.low-level-log-length"


def _row_sums(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=1)


def test_local_cluster_keeps_at_most_the_bound_of_messages_and_stimuli() -> None:
    before = dask.config.get(KEY)
    with dask_client(None, n_workers=1) as client:
        rng = np.random.default_rng(0)
        for _ in range(3 * DEBUG_LOG_LENGTH):  # one task a round: a batch of messages per task
            client.gather(client.submit(_row_sums, rng.random((200, 8)), pure=False))
        scheduler = client.cluster.scheduler
        sent = [len(stream.recent_message_log) for stream in scheduler.stream_comms.values()]
        stimuli = client.run(lambda dask_worker: len(dask_worker.state.stimulus_log))
    assert sent and max(sent) <= DEBUG_LOG_LENGTH
    assert stimuli and max(stimuli.values()) <= DEBUG_LOG_LENGTH
    assert dask.config.get(KEY) == before  # the bound holds while the client is open, not after


def test_the_bound_leaves_distributed_defaults_in_place_in_a_fresh_process() -> None:
    """Setting a key of a config section that does not exist yet creates the section, and leaving the
    context deletes it: distributed's defaults, loaded inside, would go with it."""
    code = (
        "import dask\n"
        "from hts.cluster import bounded_logs\n"
        "with bounded_logs():\n"
        "    pass\n"
        "print(dask.config.get('distributed.comm.timeouts.connect'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip()
