"""Quick fuzz budget: every bad input ends in the project's own error (or a counted skip)."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
from hypothesis import event, given
from hypothesis import strategies as st

from hts.campaign.config import parse_campaign
from hts.cif import read_cif
from hts.defects import DefectConfiguration
from hts.hosts import get_host
from hts.twodmd import read_2dmd, write_2dmd
from tests.fuzz.strategies import cif_mutations, ends_well, literal_mutations, write_mutated_dataset

HOST = get_host("MoS2", (4, 4, 1))
VALID_CIF = DefectConfiguration.from_mapping(HOST, {0: "VAC", 20: "Se", 3: "W"}).to_cif()


@given(cif_mutations(VALID_CIF))
def test_cif_parser_never_crashes(text):
    def parse_and_match(t: str) -> None:
        DefectConfiguration.from_cif(HOST, t)

    event(f"read_cif: {ends_well(read_cif, text)}")
    event(f"from_cif: {ends_well(parse_and_match, text)}")


CAMPAIGN = """\
name: fuzz
host: {material: MoS2}
defects: {min_defects: 1, max_defects: 6}
targets:
  homo_lumo_gap: {value: 1.0, tolerance: 0.1}
budget: {iterations: 2, trials_per_iteration: 2, samples_per_trial: 8}
"""
YAML_TOKENS = [
    "name:",
    "host:",
    "material:",
    "targets:",
    "range:",
    "[1, 0]",
    "{",
    "}",
    "- ",
    "\n",
    "  ",
    ":",
    "homo_lumo_gap",
    "MoS2",
    "value:",
    "-1",
    "1e999",
    "!!python/object/apply:os.system ['ls']",
    "&a",
    "*a",
    "strategy: llm-bo",
    "budget:",
    "iterations: 0",
    "seed: x",
    "~",
    "'",
    '"',
    "#",
]


@given(st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(YAML_TOKENS), max_size=40).map(" ".join),
    st.tuples(st.integers(0, len(CAMPAIGN)), st.sampled_from(YAML_TOKENS)).map(
        lambda t: CAMPAIGN[: t[0]] + t[1] + CAMPAIGN[t[0] :]),
    st.integers(0, len(CAMPAIGN)).map(lambda n: CAMPAIGN[:n]),
))  # fmt: skip
def test_campaign_yaml_never_crashes(text):
    event(ends_well(parse_campaign, text))


def _base_dataset(tmp: Path) -> tuple[dict[str, str], str, str]:
    rng = __import__("numpy").random.default_rng(0)
    configs = []
    for n in (1, 2, 3):
        sites = rng.choice(HOST.n_sites, size=n, replace=False)
        configs.append(DefectConfiguration.from_mapping(HOST, {int(s): "VAC" for s in sites}))
    ids = write_2dmd(tmp, configs, ["a", "b", "c"])
    cifs = {i: c.to_cif() for i, c in zip(ids, configs, strict=True)}
    desc = (tmp / "descriptors.csv").read_text()
    defects = pd.read_csv(tmp / "defects.csv.gz").to_csv(index=False)
    return cifs, desc, defects


@given(
    data=st.data(),
    what=st.sampled_from(["cell", "defects", "csv_cell", "cif", "truncate", "flip", "raw"]),
)
def test_2dmd_reader_never_crashes(tmp_path_factory, data, what):
    base = tmp_path_factory.mktemp("base")
    cifs, desc, defects = _base_dataset(base)
    mutate: dict[str, object] = {}
    if what in ("cell", "defects"):
        frame = pd.read_csv(base / "descriptors.csv")
        frame.loc[0, what] = data.draw(literal_mutations())
        mutate["descriptors"] = frame.to_csv(index=False)
    elif what == "csv_cell":
        frame = pd.read_csv(base / "defects.csv.gz", dtype=str)
        r = data.draw(st.integers(0, len(frame) - 1))
        c = data.draw(st.sampled_from(list(frame.columns)))
        frame.loc[r, c] = data.draw(st.text(max_size=30))
        mutate["defects"] = frame.to_csv(index=False)
    elif what == "cif":
        sid = data.draw(st.sampled_from(sorted(cifs)))
        mutate["cifs"] = {sid: data.draw(cif_mutations(cifs[sid]))}
    elif what == "truncate":
        mutate["truncate_tar"] = data.draw(st.floats(0.0, 0.99))
    elif what == "flip":
        mutate["flip_tar_byte"] = data.draw(st.integers(0, 10**6))
    else:
        mutate["defects"] = data.draw(st.text(max_size=200))
        mutate["raw_defects"] = True
    root = tmp_path_factory.mktemp("mut")
    write_mutated_dataset(root, random.Random(0), cifs, desc, defects, mutate)
    outcome = ends_well(read_2dmd, root)
    event(f"{what}: {outcome}")
    assert not Path("/tmp/hts_pwned").exists()
    if outcome == "ok":
        ds = read_2dmd(root)
        n_rows = len(pd.read_csv(root / "defects.csv.gz"))
        assert len(ds) + len(ds.skipped) == n_rows  # every row read or reported, none dropped
