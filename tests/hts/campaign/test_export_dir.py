"""prepare_export_dir: an export goes into a new or empty folder, or (--force) replaces a previous export
of hts there, removing only the files hts wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hts.campaign.safety import is_hts_export, prepare_export_dir
from hts.errors import ConfigError
from hts.provenance import write_provenance


def _previous_export(dest: Path) -> list[str]:
    """What `hts export` writes, with its provenance record; returns the names."""
    dest.mkdir(parents=True, exist_ok=True)
    cifs = ["0001_0123456789abcdef.cif", "0002_fedcba9876543210.cif", "motif-3.cif"]
    for name in cifs:
        (dest / name).write_text("data_x\n")
    (dest / "candidates.csv").write_text("rank,cif,hash\n" + "".join(f"{i},{n},h\n" for i, n in enumerate(cifs)))
    (dest / "motifs.csv").write_text("motif,hits\n")
    (dest / "campaign.yaml").write_text("name: t\n")
    write_provenance(dest / "export.json", {"campaign_dir": "runs/t", "top": 3})
    return [*cifs, "candidates.csv", "motifs.csv", "campaign.yaml", "export.json"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_folder_is_created(tmp_path):
    dest = tmp_path / "a" / "b" / "export"
    prepare_export_dir(dest, force=False)
    assert dest.is_dir() and not any(dest.iterdir())


def test_an_empty_folder_is_kept(tmp_path):
    prepare_export_dir(tmp_path, force=False)
    prepare_export_dir(tmp_path, force=True)
    assert tmp_path.is_dir()


def test_a_previous_export_is_refused_without_force(tmp_path):
    dest = tmp_path / "export"
    _previous_export(dest)
    before = _snapshot(dest)
    with pytest.raises(ConfigError) as info:
        prepare_export_dir(dest, force=False)
    msg = str(info.value)
    assert f"export folder {dest} is not empty (7 entries)" in msg and "--force" in msg
    assert _snapshot(dest) == before


def test_force_removes_only_the_files_hts_wrote(tmp_path):
    dest = tmp_path / "export"
    _previous_export(dest)
    (dest / "notes.txt").write_text("mine")
    (dest / "my_structure.cif").write_text("mine too")  # a CIF hts did not write (not listed, not ranked)
    (dest / "sub").mkdir()
    (dest / "sub" / "0009_0123456789abcdef.cif").write_text("in a sub-folder: not touched")
    prepare_export_dir(dest, force=True)
    assert sorted(p.name for p in dest.iterdir()) == ["my_structure.cif", "notes.txt", "sub"]
    assert (dest / "sub" / "0009_0123456789abcdef.cif").exists()


def test_force_on_a_folder_that_is_no_export_removes_nothing(tmp_path):
    dest = tmp_path / "home"
    dest.mkdir()
    (dest / "0001_0123456789abcdef.cif").write_text("looks like ours")
    (dest / "candidates.csv").write_text("precious")
    before = _snapshot(dest)
    with pytest.raises(ConfigError) as info:
        prepare_export_dir(dest, force=True)
    msg = str(info.value)
    assert str(dest) in msg and "holds no export.json written by hts" in msg and "nothing was removed" in msg
    assert _snapshot(dest) == before


@pytest.mark.parametrize(
    "marker",
    [
        "not json",
        json.dumps({"settings": {"top": 3}}),  # no campaign_dir, no hts_version
        json.dumps([1, 2, 3]),
        json.dumps({"hts_version": "0.1.0", "settings": "runs/t"}),
    ],
)
def test_an_export_json_hts_did_not_write_is_not_a_licence_to_delete(tmp_path, marker):
    dest = tmp_path / "export"
    dest.mkdir()
    (dest / "export.json").write_text(marker)
    (dest / "candidates.csv").write_text("precious")
    before = _snapshot(dest)
    assert not is_hts_export(dest)
    with pytest.raises(ConfigError, match="holds no export.json written by hts"):
        prepare_export_dir(dest, force=True)
    assert _snapshot(dest) == before


def test_a_destination_that_is_a_file_is_named(tmp_path):
    dest = tmp_path / "export.csv"
    dest.write_text("a file")
    for force in (False, True):
        with pytest.raises(ConfigError, match=r"export folder .*export\.csv is a file, expected a folder"):
            prepare_export_dir(dest, force=force)
    assert dest.read_text() == "a file"
    with pytest.raises(ConfigError, match=r"cannot be created: .*export\.csv is a file, expected a folder"):
        prepare_export_dir(dest / "below", force=False)


def test_a_broken_link_is_named(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match="broken symbolic link"):
        prepare_export_dir(link, force=True)
