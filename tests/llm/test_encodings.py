"""Encodings and their parser: round trips, prompts, and errors that name the problem."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hts.defects import DefectConfiguration
from hts.errors import ConfigError, GenerationError
from hts.hosts import get_host
from llm.encodings import ENCODINGS, detect_encoding, encode, encode_answer, parse_answer
from llm.prompts import build_prompt
from llm.properties import PROPERTIES, canonical_property, round_targets
from tests.llm.conftest import configs


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_round_trip(host, encoding):
    for cfg in configs(host, 0, 30, max_defects=20):
        text = encode_answer(cfg, encoding)
        assert parse_answer(text, host, encoding) == cfg
        assert parse_answer(text, host) == cfg  # detected encoding
        assert detect_encoding(text) == encoding


@pytest.mark.parametrize("name", ["MoS2", "BN", "GaSe", "P"])
def test_round_trip_full_size_hosts(name):
    h = get_host(name)
    for cfg in configs(h, 1, 5, max_defects=12):
        for enc in ENCODINGS:
            assert parse_answer(encode_answer(cfg, enc), h, enc) == cfg


def test_formats(host):
    cfg = DefectConfiguration.from_mapping(host, {3: "W", 20: "VAC", 40: "Se"})
    assert encode_answer(cfg, "sparse") == "<defects> 03:W 20:VAC 40:Se </defects>"
    assert encode_answer(DefectConfiguration.pristine(host), "sparse") == "<defects> </defects>"
    sites = encode_answer(cfg, "sites").split()
    assert sites[0] == "<sites>" and sites[-1] == "</sites>" and len(sites) == host.n_sites + 2
    assert sites[1 + 3] == "W" and sites[1 + 20] == "VAC" and sites[1 + 40] == "Se"
    lines = encode_answer(cfg, "cif").splitlines()
    assert len(lines) == host.n_sites
    assert lines[0] == "Mo 0.0833 0.1667 0.2500"
    assert lines[3].startswith("W ") and lines[20].startswith("VAC ")


def test_parser_is_lenient_on_order_and_whitespace(host):
    cfg = DefectConfiguration.from_mapping(host, {3: "W", 20: "VAC"})
    assert parse_answer("  <defects> 20:VAC 3:W </defects>\n", host) == cfg
    lines = encode_answer(cfg, "cif").splitlines()
    assert parse_answer("\n".join(reversed(lines)), host, "cif") == cfg
    # coordinates within tolerance of a pristine site are accepted
    lines[3] = "W 0.0834 0.9167 0.2500".replace("0.9167", lines[3].split()[2])
    assert parse_answer("\n".join(lines), host, "cif") == cfg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<defects> 03:W 03:VAC </defects>", "written twice"),
        ("<defects> 03:Se </defects>", "may become"),
        ("<defects> 99:W </defects>", "out of range"),
        ("<defects> 03:W", "no closing"),
        ("<defects> 03:W </defects> extra", "text after"),
        ("<defects> 03-W </defects>", "not 'site:symbol'"),
        ("<sites> Mo Mo </sites>", "2 symbols for the 48 sites"),
        ("Mo 0.1 0.2 0.3\n", "1 lines for the 48 sites"),
        ("hello", "1 lines"),
        ("", "0 lines"),
    ],
)
def test_errors_name_the_problem(host, text, message):
    with pytest.raises(GenerationError, match=message):
        parse_answer(text, host)


def test_cif_errors(host):
    lines = encode_answer(DefectConfiguration.pristine(host), "cif").splitlines()
    bad = [*lines[:-1], "Mo 0.5000 0.5000 0.9000"]
    with pytest.raises(GenerationError, match="match no site"):
        parse_answer("\n".join(bad), host, "cif")
    dup = [*lines[:-1], lines[0]]
    with pytest.raises(GenerationError, match="written twice"):
        parse_answer("\n".join(dup), host, "cif")
    nan = [*lines[:-1], "S nan 0.1 0.2"]
    with pytest.raises(GenerationError):
        parse_answer("\n".join(nan), host, "cif")


@given(text=st.text(max_size=200), encoding=st.sampled_from([None, *ENCODINGS]))
def test_parser_never_crashes(text, encoding):
    host = get_host("MoS2", (4, 4, 1))
    with contextlib.suppress(GenerationError):
        parse_answer(text, host, encoding)


@given(body=st.lists(st.tuples(st.integers(-5, 60), st.sampled_from(["W", "Se", "VAC", "Mo", "S", "X", "w"]))))
def test_sparse_fuzz_parses_or_explains(body):
    host = get_host("MoS2", (4, 4, 1))
    text = "<defects>" + "".join(f" {s:02d}:{sp}" for s, sp in body) + " </defects>"
    try:
        cfg = parse_answer(text, host)
    except GenerationError:
        return
    assert all(host.rule_for(s, sp) is not None for s, sp in cfg.defects)


def test_unknown_encoding(host):
    with pytest.raises(ConfigError, match="unknown encoding"):
        encode_answer(DefectConfiguration.pristine(host), "xyz")


def test_prompt_has_the_study_parts(host):
    prompt = build_prompt(host, {"gap": 1.23456, "fermi_level": -4.17612, "energy_per_atom": -8.66994}, "cif")
    assert prompt.startswith("Here is a TMDC material (MoS2), unitcell of size [4, 4, 1].\n")
    assert "{'type': 'substitution', 'from': 'Mo', 'to': 'W'}" in prompt
    assert "{'type': 'vacancy', 'element': 'S'}." in prompt
    assert "- The band gap is 1.23.\n" in prompt
    assert "- The Fermi level is -4.18.\n" in prompt
    assert "- The energy per atom is -8.6699.\n" in prompt
    assert "replace it with VAC" in prompt and prompt.endswith("Crystal structure:\n")
    # properties in fixed order, the same instruction for every encoding up to its tail
    assert prompt.index("band gap") < prompt.index("energy per atom") < prompt.index("Fermi level")
    heads = {build_prompt(host, {"gap": 1.0}, e).split("Generate defects")[0] for e in ENCODINGS}
    assert len(heads) == 1
    assert "properties" not in build_prompt(host, None, "sparse")
    bn = build_prompt(get_host("BN"), {}, "sparse")
    assert bn.startswith("Here is a 2D material (BN), unitcell of size [8, 8, 1].")


def test_properties():
    assert canonical_property("Band-Gap") == "homo_lumo_gap"
    assert next(iter(PROPERTIES)) == "homo"
    assert PROPERTIES["homo"].format(-0.001) == "0.00"
    assert round_targets({"gap": 1.236}) == {"homo_lumo_gap": 1.24}
    with pytest.raises(ConfigError, match="unknown property"):
        canonical_property("colour")
    with pytest.raises(ConfigError, match="NaN"):
        build_prompt(get_host("MoS2", (4, 4, 1)), {"homo": float("nan")}, "sparse")


def test_encode_pair(host):
    cfg = configs(host, 3, 2)[1]
    prompt, answer = encode(cfg, "sparse", {"homo": -5.0})
    assert prompt.endswith("Defects:\n") and parse_answer(answer, host) == cfg
