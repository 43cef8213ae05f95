"""The ``screen`` strategy: uniform random configurations scored by the surrogate in large chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hts.campaign import screen
from hts.campaign.results import CampaignResults, export_shortlist
from hts.campaign.runner import run_campaign
from tests.hts.campaign.conftest import campaign_text


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_screen_stores_hits_with_motifs_and_nearest_misses(tmp_path, tiny_surrogate, monkeypatch):
    monkeypatch.setattr(screen, "CHUNK", 3_000)
    monkeypatch.setattr(screen, "KEEP_NEAREST", 10)
    extra = "budget: {max_evaluations: 7000}\n"
    text = campaign_text(tiny_surrogate, strategy="screen").replace(
        "budget: {iterations: 3, trials_per_iteration: 2, samples_per_trial: 32}\n", extra
    )
    summary, out = run_campaign(_write(tmp_path, text), out=tmp_path / "run")
    assert summary.evaluations == 7000 and summary.trials == 3  # 3,000 + 3,000 + 1,000
    assert summary.stopped == "max_evaluations"
    res = CampaignResults.open(out)
    try:
        ranked = res.ranked()
        trials = res.store.trials_frame()
        s = res.summary()
    finally:
        res.close()
    hits = ranked[ranked["hit"].astype(bool)]
    assert len(hits) > 0 and hits["motif"].notna().all() and ranked.loc[~ranked["hit"], "motif"].isna().all()
    assert (~ranked["hit"]).sum() <= 3 * 10  # misses: only the nearest of each chunk
    assert list(trials["strategy"].unique()) == ["screen"] and s["screen trials"] == 3
    assert s["hit_motifs"] == hits["motif"].nunique() <= len(hits)
    # every hit scored in a chunk is stored once (unique) or was a duplicate of one stored earlier
    assert trials["n_hits"].sum() == len(hits) <= sum(e["scored_hits"] for e in trials["extra"])
    short = pd.read_csv(export_shortlist(out, tmp_path / "export", top=1000) / "candidates.csv")
    assert short["motif"].is_unique and len(short) == s["hit_motifs"]


def test_screen_resumes_without_repeating(tmp_path, tiny_surrogate, monkeypatch):
    monkeypatch.setattr(screen, "CHUNK", 2_000)
    text = campaign_text(tiny_surrogate, strategy="screen").replace(
        "budget: {iterations: 3, trials_per_iteration: 2, samples_per_trial: 32}\n", "budget: {max_evaluations: 4000}\n"
    )
    path = _write(tmp_path, text)
    first, out = run_campaign(path, out=tmp_path / "run")
    again, _ = run_campaign(path, out=out, resume=True)
    assert first.evaluations == 4000 and again.trials == first.trials  # nothing left to do


def test_screen_stores_at_most_keep_per_motif_hits_of_a_motif(tmp_path, tiny_surrogate, monkeypatch):
    monkeypatch.setattr(screen, "CHUNK", 2_000)
    monkeypatch.setattr(screen, "KEEP_PER_MOTIF", 3)
    text = campaign_text(tiny_surrogate, strategy="screen").replace(
        "budget: {iterations: 3, trials_per_iteration: 2, samples_per_trial: 32}\n", "budget: {max_evaluations: 6000}\n"
    )
    _, out = run_campaign(_write(tmp_path, text), out=tmp_path / "run")
    res = CampaignResults.open(out)
    try:
        motifs = res.store.motifs_frame()
        trials = res.store.trials_frame()
    finally:
        res.close()
    assert motifs["motif"].value_counts().max() <= 3
    assert sum(e["new_hits_not_stored"] for e in trials["extra"]) > 0  # counted, not stored


def test_nearest_misses_threshold_only_once_full(monkeypatch):
    monkeypatch.setattr(screen, "KEEP_MISSES", 3)
    misses = screen.NearestMisses([0.9, 0.2])
    assert misses.threshold() == float("inf")
    misses.add([0.5, 0.7])
    assert misses.threshold() == 0.7  # the 3rd nearest of 0.2, 0.5, 0.7, 0.9
    misses.add([0.1])
    assert misses.threshold() == 0.5
    d = [0.0, 0.4, 0.6, 0.45, 0.0]
    assert list(screen._worth_keeping(np.array(d), misses.threshold())) == [0, 1, 3, 4]


def test_a_long_screen_stores_a_bounded_number_of_misses(tmp_path, tiny_surrogate, monkeypatch):
    """Once KEEP_MISSES misses are stored, a chunk's miss is kept only when nearer than all but a few
    of them: far fewer than KEEP_NEAREST a chunk, and the nearest ones are never lost (also on resume)."""
    monkeypatch.setattr(screen, "CHUNK", 1_000)
    monkeypatch.setattr(screen, "KEEP_NEAREST", 20)
    monkeypatch.setattr(screen, "KEEP_MISSES", 20)
    text = campaign_text(tiny_surrogate, strategy="screen").replace(
        "budget: {iterations: 3, trials_per_iteration: 2, samples_per_trial: 32}\n",
        "budget: {max_evaluations: 12000}\n",
    )
    path = _write(tmp_path, text)
    summary, out = run_campaign(path, out=tmp_path / "run")
    assert summary.trials == 12
    res = CampaignResults.open(out)
    try:
        cands = res.store.candidates_frame(predictions=False)
    finally:
        res.close()
    misses = cands[~cands["hit"].astype(bool)]
    assert 20 <= len(misses) < 12 * 20 // 2  # without the bound: 20 a chunk, 240
    # each miss stored after the first chunk was nearer than the 20th nearest stored before it
    for trial in range(1, 12):
        before = misses.loc[misses["trial_id"] < trial, "distance"].nsmallest(20)
        later = misses.loc[misses["trial_id"] == trial, "distance"]
        if len(before) == 20:
            assert (later < before.max()).all()
