"""`hts status` / `export` / `report` on damaged stores and into used folders (the commands, end to end)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hts.campaign.results import export_shortlist
from hts.campaign.runner import run_campaign
from hts.cli import app
from hts.errors import ConfigError
from tests.hts.campaign.conftest import campaign_text
from tests.hts.campaign.store_fixtures import PAGE, damage, digest


@pytest.fixture
def campaign_dir(tmp_path, tiny_surrogate):
    path = tmp_path / "c.yaml"
    path.write_text(campaign_text(tiny_surrogate, iterations=2))
    _, out = run_campaign(path, out=tmp_path / "run")
    return out


def _text(res) -> str:
    """What a command said: its output and the error it ended with (the CLI's main prints it)."""
    return " ".join((res.output + " " + str(res.exception)).split())


def _root_page(store: Path, table: str) -> int:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        return int(con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0])


def test_a_second_export_into_the_same_folder_needs_force_and_leaves_no_stale_files(campaign_dir, tmp_path):
    dest = tmp_path / "export"
    export_shortlist(campaign_dir, dest, top=10, all_placements=True)
    assert len(list(dest.glob("*.cif"))) == 10
    with pytest.raises(ConfigError, match="not empty.*--force"):
        export_shortlist(campaign_dir, dest, top=3, all_placements=True)
    assert len(list(dest.glob("*.cif"))) == 10  # refused: nothing removed
    (dest / "notes.txt").write_text("mine")
    export_shortlist(campaign_dir, dest, top=3, all_placements=True, force=True)
    assert len(list(dest.glob("*.cif"))) == 3 and len(pd.read_csv(dest / "candidates.csv")) == 3
    assert (dest / "notes.txt").read_text() == "mine"  # only what hts wrote was replaced


def test_export_into_a_file_or_a_foreign_folder_is_refused(campaign_dir, tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    res = CliRunner().invoke(app, ["export", str(campaign_dir), "--out", str(target)])
    assert res.exit_code != 0 and "is a file, expected a folder" in _text(res)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    res = CliRunner().invoke(app, ["export", str(campaign_dir), "--out", str(foreign), "--force"])
    assert res.exit_code != 0 and "holds no export.json written by hts" in _text(res)
    assert (foreign / "thesis.tex").exists()


@pytest.mark.parametrize("command", ["status", "export", "report"])
def test_a_damaged_store_is_named_and_not_written(campaign_dir, tmp_path, command):
    store = campaign_dir / "campaign.sqlite"
    damage(store, (_root_page(store, "candidates") - 1) * PAGE + 8, b"\xff" * 64)
    before = digest(store)
    args = [command, str(campaign_dir)] + (["--out", str(tmp_path / "e")] if command == "export" else [])
    res = CliRunner(env={"COLUMNS": "200"}).invoke(app, args)
    assert res.exit_code != 0
    text = _text(res)
    assert str(store) in text and "is damaged" in text and "--salvage" in text
    assert digest(store) == before


def test_salvage_exports_what_a_damaged_store_still_holds(campaign_dir, tmp_path):
    store = campaign_dir / "campaign.sqlite"
    damage(store, (_root_page(store, "meta") - 1) * PAGE + 8, b"\xff" * 64)  # the meta table: export needs none of it
    before = digest(store)
    res = CliRunner().invoke(app, ["export", str(campaign_dir), "--out", str(tmp_path / "e")])
    assert res.exit_code != 0 and "is damaged" in _text(res)
    salvaged = CliRunner().invoke(app, ["export", str(campaign_dir), "--out", str(tmp_path / "s"), "--salvage"])
    assert salvaged.exit_code == 0, salvaged.output
    assert len(list((tmp_path / "s").glob("*.cif"))) > 0
    assert digest(store) == before
