"""The labeller on a small 4x4 MoS2 dataset: results, kill-and-restart, a worker killed mid-task."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hts.generate import generate_high_density
from hts.hosts import get_host
from hts.labelling import OracleSettings, label_dataset, read_shards
from hts.twodmd import read_2dmd, write_2dmd

pytest.importorskip("tblite")


def _dataset(path: Path, n_per_conc: int = 2) -> list[str]:
    host = get_host("MoS2", (4, 4, 1))
    configs, labels = generate_high_density(host, n_per_conc, seed=5, concentrations=(0.05, 0.1, 0.15, 0.2, 0.25))
    return write_2dmd(path, configs, labels)


def _shard_ids(root: Path) -> list[str]:
    ids = []
    for shard in sorted((root / "labels").glob("part-*.jsonl")):
        for line in shard.read_bytes().splitlines():
            try:
                ids.append(json.loads(line)["_id"])
            except (json.JSONDecodeError, KeyError):
                continue  # a line torn by the kill
    return ids


@pytest.mark.slow
def test_label_small_dataset(tmp_path):
    ids = _dataset(tmp_path / "d", 2)
    report = label_dataset(tmp_path / "d", n_workers=2)
    assert report.computed == len(ids) == 10 and report.failed == 0
    ds = read_2dmd(tmp_path / "d")
    gap = ds.table["homo_lumo_gap"].to_numpy()
    assert np.isfinite(gap).all() and (gap >= 0).all()
    assert np.isfinite(ds.table["normalized_homo"]).all()
    # running again repeats nothing
    again = label_dataset(tmp_path / "d", n_workers=2)
    assert again.computed == 0 and again.already_done == 10
    assert sorted(_shard_ids(tmp_path / "d")) == sorted(ids)


@pytest.mark.slow
def test_kill_and_restart_loses_and_repeats_nothing(tmp_path):
    root = tmp_path / "d"
    ids = _dataset(root, 3)
    cmd = [sys.executable, "-m", "hts.cli", "data", "label", str(root), "--workers", "2"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(_shard_ids(root)) < 3:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the labeller, its scheduler and its workers: all at once
    proc.wait()
    before = _shard_ids(root)
    assert 3 <= len(before) < len(ids), "the labeller should be killed mid-run"
    report = label_dataset(root, n_workers=2)
    after = _shard_ids(root)
    assert len(after) == len(set(after)) == len(ids)  # nothing repeated, nothing missing
    assert set(before) <= set(after)
    assert report.already_done == len(before)


@pytest.mark.slow
def test_worker_killed_mid_task_is_redone_elsewhere(tmp_path):
    from distributed import Client, LocalCluster

    root = tmp_path / "d"
    ids = _dataset(root, 2)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        killed: list[int] = []

        def kill_one_busy_worker() -> None:
            while time.time() < deadline:
                processing = client.processing()
                busy = [w for w, keys in processing.items() if keys]
                if busy and len(_shard_ids(root)) >= 1:
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.2)

        deadline = time.time() + 200
        t = threading.Thread(target=kill_one_busy_worker)
        t.start()
        report = label_dataset(root, scheduler=cluster.scheduler_address)
        t.join()
    assert killed, "a worker should have been killed while it was busy"
    got = _shard_ids(root)
    assert sorted(got) == sorted(ids)  # every result exactly once
    assert report.failed == 0 and set(read_shards(root)) == set(ids)


def test_settings_mismatch_refused(tmp_path):
    root = tmp_path / "d"
    _dataset(root, 1)
    (root / "labels").mkdir()
    (root / "labels" / "part-x.jsonl").write_text(
        json.dumps({"_id": "a", "status": "ok", "settings": OracleSettings(method="GFN2-xTB").as_dict()}) + "\n"
    )
    from hts.errors import ConfigError

    with pytest.raises(ConfigError, match="Label a fresh copy"):
        label_dataset(root)


@pytest.mark.slow
def test_fewest_defects_first(tmp_path):
    root = tmp_path / "d"
    _dataset(root, 1)  # one structure per concentration (5 to 12 defects in 4x4)
    ds = read_2dmd(root)
    counts = {i: c.n_defects for i, c in zip(ds.ids, ds.configs, strict=True)}
    report = label_dataset(root, n_workers=1, limit=2, order="fewest-defects")
    assert report.computed == 2
    labelled = sorted(counts[i] for i in read_shards(root))
    assert labelled == sorted(counts.values())[:2]


def test_unknown_order_refused(tmp_path):
    root = tmp_path / "d"
    _dataset(root, 1)
    from hts.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown labelling order 'random'"):
        label_dataset(root, order="random")
