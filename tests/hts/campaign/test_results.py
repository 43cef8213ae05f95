"""Reading a campaign back: the oracle's verdict on verified candidates in ranking, status and report."""

from __future__ import annotations

import math

import pytest

from hts.campaign.report import write_report
from hts.campaign.results import CampaignResults, composition_key
from hts.campaign.runner import run_campaign
from hts.campaign.store import CampaignStore, sqlite_url
from tests.hts.campaign.conftest import campaign_text


@pytest.fixture
def verified_run(tmp_path, tiny_surrogate):
    """A finished tiny campaign (gap 0.6 +- 0.15 eV, formation energy 0-30 eV) with three oracle
    results stored: one inside both windows, one whose gap misses, one failed SCF (no values)."""
    path = tmp_path / "c.yaml"
    path.write_text(campaign_text(tiny_surrogate, iterations=1))
    _, out = run_campaign(path, out=tmp_path / "run")
    res = CampaignResults.open(out)
    hashes = list(res.ranked()["hash"][:3])
    res.close()
    store = CampaignStore(sqlite_url(out / "campaign.sqlite"))  # as the oracle writes (status reads read-only)
    store.record_oracle(hashes[0], "converged", {"homo_lumo_gap": 0.70, "formation_energy": 12.0})
    store.record_oracle(hashes[1], "converged", {"homo_lumo_gap": 1.05, "formation_energy": 12.0})
    store.record_oracle(hashes[2], "failed", {"error": "SCF did not converge"})
    store.close()
    return out, hashes


def test_ranked_and_summary_say_which_hits_the_oracle_confirms(verified_run):
    out, (inside, gap_misses, failed) = verified_run
    res = CampaignResults.open(out)
    try:
        ranked = res.ranked().set_index("hash")
        summary = res.summary()
    finally:
        res.close()
    assert ranked.loc[inside, "oracle_hit"] is True and ranked.loc[inside, "oracle_distance"] == 0
    # 1.05 eV is 0.30 eV past the window's 0.75 eV edge: 2 half-widths, weighted as `distance` weighs it
    assert ranked.loc[gap_misses, "oracle_hit"] is False
    assert ranked.loc[gap_misses, "oracle_distance"] == pytest.approx(2.0 * math.sqrt(1.0 / 1.5))
    assert ranked.loc[failed, "oracle_hit"] is None or math.isnan(ranked.loc[failed, "oracle_hit"])
    assert ranked["oracle_hit"].notna().sum() == 2  # not verified: no verdict
    assert summary["verified"] == 3 and summary["confirmed"] == 1
    hits = ranked[ranked["hit"].astype(bool)]
    assert 0 < summary["hit_compositions"] <= len(hits)
    assert summary["hit_compositions"] == len({composition_key(res.host, d) for d in hits["defects"]})


def test_composition_key_tells_vacancies_apart_by_site():
    """MoS2 8x8: Mo 0-63, S 64-191; a vacancy on an S site is vac_S, on a Mo site vac_Mo."""
    from hts.hosts import get_host

    host = get_host("MoS2")
    assert composition_key(host, "70:VAC,71:VAC,3:W") == composition_key(host, "3:W,100:VAC,64:VAC")
    assert composition_key(host, "70:VAC,71:VAC,3:W") == (("Mo->W", 1), ("vac_S", 2))
    assert composition_key(host, "70:VAC") != composition_key(host, "5:VAC")


def test_status_and_report_show_the_oracle_check(verified_run):
    from typer.testing import CliRunner

    from hts.cli import app

    out, hashes = verified_run
    res = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["status", str(out)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "oracle-verified 3 (1 inside every target window by the oracle)" in text
    assert "1 oracle failures recorded" in text
    rows = {h: line.split() for line in res.output.splitlines() for h in hashes if f" {h} " in line}
    assert [rows[h][-1] for h in hashes[:2]] == ["hit", "miss"]  # ranks 1-2, verified
    assert rows[hashes[2]][-1] not in ("hit", "miss")  # the failed SCF: no verdict
    html = write_report(out)
    assert (html.parent / "oracle_check.png").stat().st_size > 1000
    assert "oracle_check.png" in html.read_text()
