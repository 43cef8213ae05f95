"""Bounds on every number a campaign holds, and safe loading of campaign files (size, encoding, aliases)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hts.campaign.config import (
    LIMITS,
    MAX_CAMPAIGN_BYTES,
    MAX_YAML_NODES,
    load_campaign,
    parse_campaign,
    read_campaign_text,
)
from hts.errors import ConfigError

BASE = """\
name: t
host: {material: MoS2}
targets:
  homo_lumo_gap: {value: 1.0, tolerance: 0.1}
"""


def _refused(text: str, *fragments: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_campaign(text, "c.yaml")
    msg = str(info.value)
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


def test_a_billion_samples_per_trial_is_refused_at_load_time(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(BASE + "budget: {iterations: 1, samples_per_trial: 1000000000}\n")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    assert time.perf_counter() - t0 < 2
    msg = str(info.value)
    # the file, the key, its line, the value and the limit
    assert str(path) in msg and "budget.samples_per_trial (line 5)" in msg
    assert "1,000,000,000" in msg and "limit of 100,000" in msg


# One YAML snippet per bounded key, just above its limit.
ABOVE = {
    "defects.min_defects": "defects: {min_defects: 601, max_defects: 602}\n",
    "defects.max_defects": "defects: {max_defects: 601}\n",
    "targets.value": None,
    "targets.tolerance": None,
    "targets.weight": None,
    "budget.iterations": "budget: {iterations: 100001, trials_per_iteration: 1}\n",
    "budget.trials_per_iteration": "budget: {iterations: 1, trials_per_iteration: 65}\n",
    "budget.samples_per_trial": "budget: {samples_per_trial: 100001}\n",
    "budget.max_evaluations": "budget: {max_evaluations: 1000000001}\n",
    "budget.wall_clock_hours": "budget: {wall_clock_hours: 8761}\n",
    "generator.batch_size": "generator: {batch_size: 1025}\n",
    "bo.initial_trials": "bo: {initial_trials: 1001}\n",
    "bo.scout_trials": "bo: {scout_trials: 1001}\n",
    "bo.exploit_trials": "bo: {exploit_trials: 65}\n",
    "bo.local_trials": "bo: {local_trials: 65}\n",
    "dask.workers": "dask: {workers: 257}\n",
    "oracle.top_k": "oracle: {top_k: 1001}\n",
    "seed": "seed: 4294967296\n",
}
TARGET_ABOVE = {
    "targets.value": "  formation_energy: {value: 10001, tolerance: 1}\n",
    "targets.tolerance": "  formation_energy: {value: 1, tolerance: 10001}\n",
    "targets.weight": "  formation_energy: {range: [0, 1], weight: 1000001}\n",
}


@pytest.mark.parametrize("key", [k for k in LIMITS if k in ABOVE])
def test_every_bounded_key_names_key_value_and_limit(key):
    if key in TARGET_ABOVE:
        text = BASE + TARGET_ABOVE[key]
        where = key.replace("targets.", "targets.formation_energy.")
    else:
        text = BASE + ABOVE[key]
        where = key
    lim = LIMITS[key].value
    msg = _refused(text, where, f"limit of {lim:,}", "(line ")
    assert "above the limit" in msg


def test_every_limit_has_a_test_and_a_reason():
    untested = set(LIMITS) - set(ABOVE) - {"budget.trials", "budget.trials.llm-bo", "budget.evaluations"}
    assert not untested
    assert all(lim.why and lim.value > 0 for lim in LIMITS.values())


def test_values_at_the_limits_are_accepted():
    c = parse_campaign(
        BASE + "strategy: random\n"
        "budget: {iterations: 100, trials_per_iteration: 64, samples_per_trial: 100000, max_evaluations: 10000000}\n"
        "generator: {batch_size: 1024}\ndask: {workers: 256}\noracle: {top_k: 1000}\nseed: 4294967295\n"
    )
    assert c.budget.samples_per_trial == 100_000 and c.seed == 2**32 - 1


def test_totals_are_bounded_too():
    _refused(
        BASE + "strategy: random\nbudget: {iterations: 100000, trials_per_iteration: 2}\n",
        "budget (line 6)",
        "200,000 trials",
        "limit of 100,000",
    )
    # llm-bo stores Ax's state after every trial: 1,000 trials at most
    _refused(
        BASE + "strategy: llm-bo\nbudget: {iterations: 501, trials_per_iteration: 2}\n",
        "budget.iterations (line 6)",
        "1,002",
        "llm-bo",
    )
    parse_campaign(BASE + "strategy: random\nbudget: {iterations: 501, trials_per_iteration: 2}\n")
    # evaluations: the product, unless max_evaluations caps it
    _refused(
        BASE + "strategy: random\nbudget: {iterations: 1000, trials_per_iteration: 2, samples_per_trial: 10000}\n",
        "budget.samples_per_trial (line 6)",
        "20,000,000 evaluations",
        "limit of 10,000,000",
        "max_evaluations",
    )
    parse_campaign(
        BASE + "strategy: random\n"
        "budget: {iterations: 1000, trials_per_iteration: 2, samples_per_trial: 10000, max_evaluations: 5000000}\n"
    )
    _refused(
        BASE + "strategy: random\n"
        "budget: {iterations: 1000, trials_per_iteration: 2, samples_per_trial: 10000, max_evaluations: 12000000}\n",
        "budget.max_evaluations",
        "12,000,000",
    )


@pytest.mark.parametrize(
    ("snippet", "where"),
    [
        ("budget: {wall_clock_hours: .inf}\n", "budget.wall_clock_hours"),
        ("oracle: {share: .nan}\n", "oracle.share"),
        ("seed: -1\n", "seed"),
        ("budget: {samples_per_trial: 0}\n", "budget.samples_per_trial"),
    ],
)
def test_infinite_nan_and_negative_values_name_the_value(snippet, where):
    msg = _refused(BASE + snippet, where, "(got ")
    assert "line 5" in msg


def test_inf_in_a_target_is_refused():
    _refused(BASE.replace("{value: 1.0, tolerance: 0.1}", "{range: [0, .inf]}"), "targets.homo_lumo_gap.range")


@pytest.mark.parametrize(
    ("cell", "problem"), [("[100, 100, 1]", "10000 cells"), ("[8, 8, 2]", "not a monolayer"), ("[0, 8, 1]", "not a")]
)
def test_supercell_bounds_name_the_key(cell, problem):
    _refused(
        BASE.replace("{material: MoS2}", f"{{material: MoS2, supercell: {cell}}}"), "host.supercell (line 2)", problem
    )


@pytest.mark.parametrize("name", ["../../etc", "a/b", ".", "x" * 129])
def test_name_is_one_folder_name(name):
    _refused(BASE.replace("name: t", f"name: {name!r}"), "name (line 1)")


# -- safe loading -----------------------------------------------------------------------------------


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return BASE + "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_within_a_second(tmp_path):
    path = tmp_path / "lol.yaml"
    path.write_text(_bomb())
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    assert time.perf_counter() - t0 < 1.0
    msg = str(info.value)
    assert str(path) in msg and f"more than {MAX_YAML_NODES:,} nodes" in msg and "aliases" in msg
    assert "line " in msg  # where the expansion crossed the bound


def test_a_few_aliases_are_fine():
    text = BASE + "budget: &b {iterations: 2}\n"
    assert parse_campaign(text).budget.iterations == 2
    # an alias used as a value (a mapping merged in) still validates
    c = parse_campaign(
        "name: t\nhost: {material: MoS2}\ntargets:\n  homo_lumo_gap: &t {value: 1.0, tolerance: 0.1}\n  homo: *t\n"
    )
    assert c.targets["homo"].value == 1.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &a [*a]\n", "refers to a collection that contains it"),
        ("a: " + "[" * 200 + "]" * 200 + "\n", "nesting deeper than"),
        ("seed: " + "9" * 5000 + "\n", "cannot be read"),
        ("d: 2001-13-45\n", "cannot be read"),
        ("x: !!python/object/apply:os.system ['touch /tmp/hts_pwned']\n", "could not determine a constructor"),
        ("name: t\x00\n", "unacceptable character"),
    ],
)
def test_hostile_yaml_is_a_config_error_naming_the_file(text, problem):
    msg = _refused(text, "c.yaml", problem)
    assert "Traceback" not in msg
    assert not Path("/tmp/hts_pwned").exists()


def test_random_bytes_name_the_file_not_unicode_decode_error(tmp_path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match=r"garbage\.yaml is not UTF-8 text \(byte 0x80 at offset 128\)"):
        load_campaign(path)


def test_an_oversized_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "#" + "x" * MAX_CAMPAIGN_BYTES + "\n")
    with pytest.raises(ConfigError, match=r"big\.yaml is larger than the limit of 1,000,000 bytes"):
        load_campaign(path)
    with pytest.raises(ConfigError, match="above the limit of 1,000,000"):
        parse_campaign(path.read_text(), "text")


def test_wrong_kinds_of_campaign_paths(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, expected a YAML file"):
        load_campaign(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_campaign(tmp_path / "missing.yaml")
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_campaign(fifo)  # refused without blocking on the pipe


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert read_campaign_text(path) == BASE
    assert load_campaign(path).name == "t"


def test_errors_still_name_key_and_line():
    _refused(BASE + "budget:\n  iterations: 3\n  itterations: 4\n", "unknown key 'budget.itterations' (line 7)")
