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


def _record(sid: str, homo: float, lumo: float, frontier: list | None) -> dict:
    rec = {
        "_id": sid,
        "status": "ok",
        "settings": OracleSettings().as_dict(),
        "energy": -100.0,
        "energy_per_atom": -2.0,
        "fermi_level": -5.0,
        "homo": homo,
        "lumo": lumo,
        "homo_lumo_gap": lumo - homo,
        "n_fractional": 4,
        "scf_status": "converged",
        "wall_time_s": 1.0,
        "e_1": -20.0,
    }
    if frontier is not None:
        rec["frontier"] = frontier
    return rec


def test_merge_rederives_band_edges_from_frontier(tmp_path):
    """Shards with ``frontier`` get the oracle's current HOMO/LUMO at merge time (here an old-rule
    label with a negative gap); shards without it (the bundled MoS2 labels) keep their stored values."""
    from hts.labelling import merge_labels

    root = tmp_path / "d"
    ids = _dataset(root, 1)[:2]
    frontier = [  # odd electron count over near-degenerate levels, channels smeared differently
        [-9.25, 1.0, 1.0],
        [-8.9971, 0.99995, 0.9998],
        [-8.7781, 0.82177, 0.51206],
        [-8.7488, 0.59749, 0.25253],
        [-8.74616, 0.57273, 0.23376],
        [-8.61415, 0.00805, 0.00184],
        [-8.2593, 0.0, 0.0],
    ]
    pristine_frontier = [[-6.5, 1.0, 1.0], [-6.0, 1.0, 1.0], [-4.0, 0.0, 0.0], [-3.9, 0.0, 0.0]]
    (root / "labels").mkdir()
    ref = {"host": "MoS2-4x4x1", "settings": OracleSettings().as_dict(), "pristine": _record("p", -6.0, -4.0, None)}
    ref["pristine"]["frontier"] = pristine_frontier
    (root / "labels" / "reference.json").write_text(json.dumps(ref))
    shard = [_record(ids[0], -8.74616, -8.7488, frontier), _record(ids[1], -5.5, -4.25, None)]
    (root / "labels" / "part-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shard))
    assert merge_labels(root) == 2
    table = read_2dmd(root).table
    new = table.loc[ids[0]]
    assert (new["homo"], new["lumo"]) == (-8.7488, -8.74616)
    assert new["homo_lumo_gap"] == pytest.approx(0.00264) and new["normalized_homo"] == pytest.approx(-2.7488)
    old = table.loc[ids[1]]
    assert (old["homo"], old["lumo"], old["homo_lumo_gap"]) == (-5.5, -4.25, 1.25)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["oracle"]["pristine"]["homo_lumo_gap"] == 2.0


def test_manifest_note_per_host():
    from hts.labelling import gamma_note

    legacy = (  # the note every MoS2 manifest carried before notes were per host
        "Gamma-point labels: MoS2's band edges lie at K, which folds onto Gamma only for supercells whose size "
        "is a multiple of 3, so the 8x8 pristine gap (GFN1-xTB) is larger than at 3x3/6x6. This is a property "
        "of the label, not a bug. HOMO/LUMO are on xTB's energy scale: compare within one method only."
    )
    assert gamma_note("MoS2-8x8x1", "GFN1-xTB") == legacy
    for key in ("WSe2-8x8x1", "BN-8x8x1"):  # K-valley hosts at 8x8: not folded
        assert "at K, which folds onto Gamma only" in gamma_note(key, "GFN1-xTB")
    for key in ("MoS2-6x6x1", "P-6x6x1", "GaSe-6x6x1", "InSe-6x6x1"):
        assert "as 6x6 is, so the pristine gap" in gamma_note(key, "GFN2-xTB")
    assert "larger than at 2x2/4x4" in gamma_note("InSe-3x3x1", "GFN2-xTB")


def test_merge_without_chemical_potentials_for_the_hosts_elements(tmp_path, caplog):
    """Labels of a method whose references lack the host's elements (MoS2 with GFN2-xTB: no Mo, W)
    merge with empty formation energies and a warning instead of failing."""
    from hts.labelling import merge_labels

    root = tmp_path / "d"
    ids = _dataset(root, 1)[:1]
    settings = OracleSettings(method="GFN2-xTB").as_dict()
    (root / "labels").mkdir()
    pristine = {**_record("p", -6.0, -4.0, None), "settings": settings}
    (root / "labels" / "reference.json").write_text(
        json.dumps({"host": "MoS2-4x4x1", "settings": settings, "pristine": pristine})
    )
    rec = {**_record(ids[0], -5.5, -4.25, None), "settings": settings}
    (root / "labels" / "part-1.jsonl").write_text(json.dumps(rec) + "\n")
    assert merge_labels(root) == 1
    row = read_2dmd(root).table.loc[ids[0]]
    assert row["homo_lumo_gap"] == 1.25 and np.isnan(row["formation_energy"])
    assert "no GFN2-xTB chemical potential for Mo, W" in caplog.text
