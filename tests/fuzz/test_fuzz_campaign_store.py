"""Fuzzing the campaign loader with byte-level garbage and alias bombs, and the store with page damage.

Budgets come from the Hypothesis profile (tests/conftest.py): ``ci`` (the default suite, 150 cases per
test) or ``large`` (10,000 cases per test)::

    HTS_HYPOTHESIS_PROFILE=large .venv/bin/python -m pytest tests/fuzz/test_fuzz_campaign_store.py -q \
        --hypothesis-show-statistics

Properties: a campaign file of any bytes loads or ends in a ConfigError naming the file, quickly; an
alias bomb of any shape is refused (or, when small, loads) in milliseconds; a store with damaged
pages is refused by its check with a StoreError naming the file, or every read returns what the intact
store holds or raises a StoreError naming the file (never changed data without an error), and the
file is never written on.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pandas as pd
from hypothesis import event, given
from hypothesis import strategies as st

from hts.campaign.config import MAX_YAML_NODES, load_campaign
from hts.campaign.store import CampaignStore, check_sqlite_file, sqlite_url
from hts.errors import ConfigError, StoreError
from tests.hts.campaign.store_fixtures import PAGE, digest, write_store

CAMPAIGN = b"""\
name: fuzz
host: {material: MoS2, supercell: [4, 4, 1]}
defects: {min_defects: 1, max_defects: 6}
targets:
  homo_lumo_gap: {value: 1.0, tolerance: 0.1}
  formation_energy: {range: [0.0, 8.0], weight: 0.5}
budget: {iterations: 2, trials_per_iteration: 2, samples_per_trial: 8}
"""


def _mutated(base: bytes) -> st.SearchStrategy[bytes]:
    """Byte flips, insertions, deletions and truncations of ``base``."""

    def apply(ops: list[tuple[int, int, int, bytes]]) -> bytes:
        data = bytearray(base)
        for kind, pos, n, blob in ops:
            pos = pos % (len(data) + 1)
            if kind == 0:  # overwrite
                data[pos : pos + len(blob)] = blob
            elif kind == 1:  # insert
                data[pos:pos] = blob
            elif kind == 2:  # delete
                del data[pos : pos + n]
            else:  # truncate
                del data[pos:]
        return bytes(data)

    op = st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 64), st.binary(min_size=1, max_size=16))
    return st.lists(op, min_size=1, max_size=6).map(apply)


def _attempt(fn, arg, error: type[Exception]) -> tuple[str, str]:
    """``("ok", "")`` or ``("refused", message)`` when ``fn(arg)`` raises ``error``."""
    try:
        fn(arg)
    except error as exc:
        return "refused", str(exc)
    return "ok", ""


def _load_timed(name: str, data: bytes) -> tuple[str, str, str, float]:
    """Write ``data`` as the campaign file ``name`` in a new folder and load it: the file's path, what
    :func:`_attempt` says (a :class:`ConfigError` is a refusal) and the seconds the load took."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        t0 = time.perf_counter()
        outcome, message = _attempt(load_campaign, path, ConfigError)
        return str(path), outcome, message, time.perf_counter() - t0


BYTES = st.one_of(
    st.binary(max_size=2_000),
    _mutated(CAMPAIGN),
    st.binary(max_size=64).map(lambda b: CAMPAIGN + b),
    st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\x00" * 8, b"\xc3\x28", b"\xed\xa0\x80"]).map(
        lambda b: b + CAMPAIGN
    ),
)


@given(data=BYTES)
def test_campaign_files_of_any_bytes_load_or_name_the_file(data):
    path, outcome, message, seconds = _load_timed("fuzz.yaml", data)
    assert seconds < 2.0
    assert outcome == "ok" or (path in message and "Traceback" not in message), message
    event(outcome)


LEAVES = {"lol": 1, "[1, 2]": 3, "{a: 1}": 3, "~": 1, "'x'": 1}  # a leaf and its YAML nodes


@given(
    widths=st.lists(st.integers(1, 12), min_size=1, max_size=12),
    leaf=st.sampled_from(sorted(LEAVES)),
    where=st.sampled_from(["top", "flow", "merge", "value"]),
    name=st.sampled_from(["l", "a", "lol_", "x-"]),
)
def test_alias_bombs_are_refused_quickly(widths, leaf, where, name):
    anchors = [f"{name}0: &{name}0 [{', '.join([leaf] * widths[0])}]"]
    size = 1 + widths[0] * LEAVES[leaf]  # nodes of the last level once its aliases are expanded
    for i, w in enumerate(widths[1:], start=1):
        anchors.append(f"{name}{i}: &{name}{i} [{', '.join([f'*{name}{i - 1}'] * w)}]")
        size = 1 + w * size
    last = f"*{name}{len(widths) - 1}"
    base = CAMPAIGN.decode()
    if where == "top":  # anchors as keys of the campaign (unknown keys, but composed first)
        text = base + "\n".join(anchors) + "\n"
    elif where == "flow":  # in one flow mapping, the last one used as a value
        text = f"x: {{{', '.join(anchors)}}}\n" + base + f"seed: {last}\n"
    elif where == "merge":  # merged into a mapping with <<
        text = "defaults: &d {" + ", ".join(anchors) + "}\n" + base + "extra: {<<: *d}\n"
    else:  # the bomb as the value of a real key
        text = "\n".join(anchors) + "\n" + base.replace("name: fuzz\n", f"name: fuzz\nseed: {last}\n")
    path, outcome, message, seconds = _load_timed("bomb.yaml", text.encode())
    # milliseconds when the machine is idle; the bound leaves room for a loaded, shared machine
    # (test_config_safety holds the 9 x 9 bomb to under a second)
    assert seconds < 5.0
    assert outcome == "ok" or path in message, message
    if size > MAX_YAML_NODES:
        assert outcome == "refused" and "nodes through its aliases" in message, message
    event(f"{'big' if size > MAX_YAML_NODES else 'small'}: {outcome}")


# What status, export, report and resume read from a store, by name.
READS: dict[str, Callable[[CampaignStore], object]] = {
    "trials": CampaignStore.trials_frame,
    "candidates": CampaignStore.candidates_frame,
    "candidates by distance": lambda s: s.candidates_frame(order_by_distance=True, limit=50),
    "candidates without predictions": lambda s: s.candidates_frame(predictions=False),
    "motifs": CampaignStore.motifs_frame,
    "oracle": CampaignStore.oracle_frame,
    "hashes": CampaignStore.known_hashes,
    "Ax state": CampaignStore.latest_ax_state,
    "counts": lambda s: (s.n_trials(), s.n_candidates(), s.n_hits(), s.n_evaluations(), s.last_trial()),
    "campaign": lambda s: s.get_meta("campaign_yaml"),
}


def _same(a: object, b: object) -> bool:
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        return a.equals(b)
    return type(a) is type(b) and a == b


@cache
def _base_store() -> tuple[bytes, dict[str, object]]:
    """The bytes of a small complete store and what each of :data:`READS` returns from it."""
    tmp = Path(tempfile.mkdtemp(prefix="hts-fuzz-store-"))
    try:
        path = write_store(tmp / "campaign.sqlite", trials=6, per_trial=60)
        store = CampaignStore.open(sqlite_url(path))
        try:
            return path.read_bytes(), {name: read(store) for name, read in READS.items()}
        finally:
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


DAMAGE = st.tuples(
    st.integers(0, 40),  # page (past the end: the file grows)
    st.integers(0, PAGE - 1),  # offset in the page
    st.sampled_from(["random", "zeros", "ones", "flip"]),
    st.integers(1, 512),  # bytes
    st.binary(min_size=1, max_size=512),
)


def _damaged(base: bytes, damages: list[tuple[int, int, str, int, bytes]], cut: int | None) -> bytes:
    data = bytearray(base)
    for page, offset, kind, n, blob in damages:
        pos = page * PAGE + offset
        if pos > len(data):
            data.extend(b"\0" * (pos - len(data)))
        if kind == "random":
            patch = (blob * (n // len(blob) + 1))[:n]
        elif kind == "zeros":
            patch = b"\0" * n
        elif kind == "ones":
            patch = b"\xff" * n
        else:
            patch = bytes(b ^ 0xFF for b in data[pos : pos + n]) or b"\xff"
        data[pos : pos + len(patch)] = patch
    if cut is not None:
        del data[cut % (len(data) + 1) :]
    return bytes(data)


@given(damages=st.lists(DAMAGE, min_size=1, max_size=4), cut=st.none() | st.integers(0, 200_000))
def test_a_damaged_store_is_named_never_read_silently_as_a_crash_and_never_written(damages, cut):
    """Every read of a store that passes its check (quick_check, row digests) returns what the intact
    store holds, or raises a StoreError naming the file: ``changed`` (a silently changed read) fails."""
    base, base_reads = _base_store()
    data = _damaged(base, damages, cut)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "campaign.sqlite"
        path.write_bytes(data)
        before = digest(path)
        checked, message = _attempt(check_sqlite_file, path, StoreError)  # what run --resume does first
        assert checked == "ok" or (str(path) in message and "damaged" in message), message
        assert digest(path) == before
        opened, message = _attempt(CampaignStore.open, sqlite_url(path), StoreError)  # status, export, report
        assert opened == checked, message
        if opened == "refused":
            assert str(path) in message and "damaged" in message, message
            assert digest(path) == before
            event("refused by the check")
            return
        store = CampaignStore.open(sqlite_url(path))
        outcomes: dict[str, str] = {}
        try:
            for name, read in READS.items():
                try:
                    outcomes[name] = "same" if _same(read(store), base_reads[name]) else "changed"
                except StoreError as exc:
                    outcomes[name] = "named" if str(path) in str(exc) else f"unnamed: {exc}"
        finally:
            store.close()
        assert digest(path) == before
    assert not [o for o in outcomes.values() if o.startswith("unnamed")], outcomes
    kind = "changed" if "changed" in outcomes.values() else "named" if "named" in outcomes.values() else "intact"
    event(f"check passes; reads: {kind}")
    assert kind != "changed", f"read back changed without an error: {outcomes}"
