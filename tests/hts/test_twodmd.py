"""The 2DMD reader on a small fixture in the exact published layout, with broken rows."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hts.errors import InputDataError
from hts.twodmd import read_2dmd, write_2dmd
from tests.conftest import random_config

DESC_ID = "6141cf0efbfd4bd9ab2c2f7e"
DESC_BAD = "6141cf0efbfd4bd9ab2c2f7f"


def _write_published_layout(root: Path, mos2, rng) -> dict[str, object]:
    """A tiny dataset written the way 2DMD publishes it (pymatgen CIFs in a tar, literals in CSV)."""
    from pymatgen.io.cif import CifWriter

    root.mkdir()
    configs = {f"{i:024x}": random_config(mos2, rng, n) for i, n in enumerate((1, 2, 3, 4))}
    pd.DataFrame(
        {
            "_id": [DESC_ID, DESC_BAD],
            "description": ["high_2.5pct", "broken"],
            "base": ["MoS2", "MoS2"],
            "cell": ["(8, 8, 1)", "__import__('os').system('echo pwned')"],
            "defects": ["[{'type': 'vacancy', 'element': 'S'}]", "[]"],
        }
    ).to_csv(root / "descriptors.csv", index=False)
    ids = [*configs, *(f"ffffffffffffffffffffff0{k}" for k in range(4))]
    rows = pd.DataFrame(
        {
            "_id": ids,
            "descriptor_id": [DESC_ID] * 7 + [DESC_BAD],
            "defect_id": "",
            "energy": np.linspace(-1400, -1390, len(ids)),
            "homo_lumo_gap": np.linspace(0.5, 1.8, len(ids)),
        }
    )
    with gzip.open(root / "defects.csv.gz", "wt") as fh:
        rows.to_csv(fh, index=False)
    with tarfile.open(root / "initial.tar.gz", "w:gz") as tar:

        def add(name: str, text: str) -> None:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for sid, c in configs.items():
            add(f"{sid}.cif", str(CifWriter(c.to_structure())))
        # ...00: no CIF at all (missing); ...01: garbage; ...02: a CIF of a different material;
        # ...03: its descriptor's cell is code, not a literal (must not run)
        add("ffffffffffffffffffffff01.cif", "data_x\n_cell_length_a 3\nthis is not a cif\n")
        from hts.hosts import get_host

        other = random_config(get_host("WSe2"), rng, 2)
        add("ffffffffffffffffffffff02.cif", str(CifWriter(other.to_structure())))
        add("ffffffffffffffffffffff03.cif", str(CifWriter(configs[next(iter(configs))].to_structure())))
    return {"configs": configs}


def test_reader_accepts_published_layout_and_reports_bad_rows(tmp_path, mos2, rng, caplog):
    made = _write_published_layout(tmp_path / "ds", mos2, rng)
    ds = read_2dmd(tmp_path / "ds")
    assert ds.ids == list(made["configs"])
    assert ds.configs == list(made["configs"].values())
    reasons = dict(ds.skipped)
    assert set(reasons) == {f"ffffffffffffffffffffff0{k}" for k in range(4)}
    assert "missing" in reasons["ffffffffffffffffffffff00"]
    assert "ffffffffffffffffffffff01.cif" in reasons["ffffffffffffffffffffff01"]
    assert "does not match" in reasons["ffffffffffffffffffffff02"]
    assert "not a Python literal" in reasons["ffffffffffffffffffffff03"]
    assert "skipped 4 of 8 rows" in caplog.text
    assert ds.table.loc[ds.ids[0], "energy"] == pytest.approx(-1400)


def test_malicious_literal_is_not_executed(tmp_path, mos2, rng, capfd):
    _write_published_layout(tmp_path / "ds", mos2, rng)
    ds = read_2dmd(tmp_path / "ds")
    assert "pwned" not in capfd.readouterr().out
    assert all(d != "broken" for d in ds.descriptions)


def test_write_read_roundtrip(tmp_path, mos2, rng):
    configs = [random_config(mos2, rng, n) for n in (1, 5, 9, 24)]
    ids = write_2dmd(tmp_path / "out", configs, ["a", "b", "b", "c"])
    ds = read_2dmd(tmp_path / "out")
    assert ds.ids == ids and ds.configs == configs and ds.descriptions == ["a", "b", "b", "c"]
    assert not ds.skipped
    with pytest.raises(InputDataError, match="already holds a dataset"):
        write_2dmd(tmp_path / "out", configs, ["a"] * 4)


def test_truncated_archive_keeps_readable_rows(tmp_path, mos2, rng):
    configs = [random_config(mos2, rng, 3) for _ in range(30)]
    write_2dmd(tmp_path / "out", configs, ["t"] * 30)
    tar = tmp_path / "out" / "initial.tar.gz"
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    ds = read_2dmd(tmp_path / "out")
    assert 0 < len(ds) < 30
    assert len(ds) + len(ds.skipped) == 30
    assert ds.configs == configs[: len(ds)]


def test_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        read_2dmd(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="descriptors.csv is missing"):
        read_2dmd(tmp_path / "empty")


def test_folder_with_two_hosts_needs_a_choice(tmp_path, mos2, rng):
    from hts.errors import ConfigError
    from hts.hosts import get_host

    wse2 = get_host("WSe2")
    configs = [random_config(mos2, rng, 2), random_config(wse2, rng, 3), random_config(wse2, rng, 1)]
    write_2dmd(tmp_path / "d", configs, ["a", "b", "c"])
    with pytest.raises(ConfigError, match="several hosts"):
        read_2dmd(tmp_path / "d")
    ds = read_2dmd(tmp_path / "d", host="wse2")
    assert ds.host == wse2 and ds.configs == configs[1:]
    assert len(ds.skipped) == 1 and "not the selected" in ds.skipped[0][1]
