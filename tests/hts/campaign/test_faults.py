"""Fault injection on the campaign loop: SIGINT, and the disk filling up under the store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from hts.campaign.config import parse_campaign
from hts.campaign.loop import run_loop
from hts.campaign.proposers import RandomProposer
from hts.campaign.runner import run_campaign
from hts.campaign.store import CampaignStore, sqlite_url
from hts.errors import StoreError
from hts.hosts import get_host
from surrogate.scoring import load_cached, score_batch
from tests.hts.campaign.conftest import campaign_text


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute(sql).fetchone()[0])


@pytest.mark.slow
def test_sigint_stops_gracefully_and_resume_continues(tmp_path, tiny_surrogate):
    path = tmp_path / "c.yaml"
    path.write_text(campaign_text(tiny_surrogate, iterations=60, samples=16))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hts.cli", "run", str(path), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    db = out / "campaign.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            if db.exists() and _count(db, "select count(*) from trials") >= 3:
                break
        except sqlite3.OperationalError:
            continue
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "interrupted" in output
    n = _count(db, "select count(*) from trials")
    assert 3 <= n < 120
    assert _count(db, "select count(*) from candidates") == _count(db, "select sum(n_new) from trials")
    summary, _ = run_campaign(path, out=out, resume=True)
    assert summary.trials == 120 and summary.stopped == "iterations"


def test_disk_full_is_a_clear_error_and_keeps_every_committed_candidate(tmp_path, tiny_surrogate):
    campaign = parse_campaign(campaign_text(tiny_surrogate, iterations=200, samples=64))
    host = get_host("MoS2", (4, 4, 1))
    db = tmp_path / "campaign.sqlite"
    store = CampaignStore(sqlite_url(db))
    store.set_meta("campaign_yaml", "x")
    # The database may grow by ~40 pages of 4 KiB and no more: SQLite then fails with SQLITE_FULL
    # ("database or disk is full"), exactly as on a full file system.
    limit = _count(db, "pragma page_count") + 40

    @sa.event.listens_for(store.engine, "connect")
    def _cap(dbapi_conn, _rec):
        dbapi_conn.execute(f"PRAGMA max_page_count = {limit}")

    store.engine.dispose()
    model = load_cached(tiny_surrogate)

    class Scorer:
        def score(self, batch):
            return score_batch(model, batch)

    with pytest.raises(StoreError, match="disk full"):
        run_loop(campaign, host, store, RandomProposer(host, campaign), Scorer())
    store.close()
    with sqlite3.connect(db) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    n_trials = _count(db, "select count(*) from trials")
    assert n_trials > 0
    # every committed trial has all its candidates, and nothing of the failed trial is there
    assert _count(db, "select count(*) from candidates") == _count(db, "select sum(n_new) from trials")
    assert _count(db, "select count(distinct trial_id) from candidates") <= n_trials
