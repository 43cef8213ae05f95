"""Hypothesis strategies and runners shared by the quick fuzz tests and the large-budget script."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from pathlib import Path

from hypothesis import strategies as st

from hts.errors import HTSError

CIF_TOKENS = [
    "data_x",
    "loop_",
    "_cell_length_a",
    "_cell_length_b",
    "_cell_length_c",
    "_cell_angle_alpha",
    "_cell_angle_beta",
    "_cell_angle_gamma",
    "_atom_site_fract_x",
    "_atom_site_fract_y",
    "_atom_site_fract_z",
    "_atom_site_type_symbol",
    "_atom_site_label",
    "_atom_site_occupancy",
    "_symmetry_equiv_pos_as_xyz",
    "'x, y, z'",
    "Mo",
    "S",
    "W",
    "Se",
    "VAC",
    "0.5",
    "-1e308",
    "nan",
    "inf",
    "1.0(3)",
    "25.52",
    "120",
    "'",
    '"',
    ";",
    "#",
    "\n",
    " ",
    "?",
    ".",
]


def cif_mutations(valid: str) -> st.SearchStrategy[str]:
    """Garbage, truncations and token-level mutations of a valid CIF."""
    lines = valid.splitlines()
    truncated = st.integers(0, len(valid)).map(lambda n: valid[:n])
    dropped = st.lists(st.integers(0, len(lines) - 1), max_size=5).map(
        lambda idx: "\n".join(line for i, line in enumerate(lines) if i not in set(idx))
    )
    spliced = st.tuples(st.integers(0, len(lines) - 1), st.lists(st.sampled_from(CIF_TOKENS), max_size=8)).map(
        lambda t: "\n".join([*lines[: t[0]], " ".join(t[1]), *lines[t[0] + 1 :]])
    )
    garbage = st.text(max_size=400)
    tokens = st.lists(st.sampled_from(CIF_TOKENS), max_size=60).map(" ".join)
    return st.one_of(truncated, dropped, spliced, garbage, tokens)


def literal_mutations() -> st.SearchStrategy[str]:
    """Strings for descriptors.csv ``cell``/``defects`` cells: valid, broken and hostile literals."""
    hostile = st.sampled_from([
        "__import__('os').system('touch /tmp/hts_pwned')", "(8, 8, 1) if True else 0", "[1]*10**9",
        "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1", "{'a': 1}", "(8, 8)", "(8.0, 8, 1)",
        "[{'type': 'vacancy'}]", "None", "", "(-1, 8, 1)", "(1000, 1000, 1)", "b'x'",
    ])  # fmt: skip
    return st.one_of(hostile, st.text(max_size=60), st.just("(8, 8, 1)"))


def write_mutated_dataset(
    root: Path,
    rng: random.Random,
    base_cifs: dict[str, str],
    base_desc: str,
    base_defects: str,
    mutate: dict[str, object],
) -> None:
    """A 2DMD folder derived from a valid one with the mutations in ``mutate`` applied."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "descriptors.csv").write_text(str(mutate.get("descriptors", base_desc)))
    data = str(mutate.get("defects", base_defects)).encode()
    (root / "defects.csv.gz").write_bytes(gzip.compress(data) if not mutate.get("raw_defects") else data)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for sid, text in base_cifs.items():
            payload = str(mutate.get("cifs", {}).get(sid, text)).encode()  # type: ignore[union-attr]
            info = tarfile.TarInfo(f"{sid}.cif")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    blob = buf.getvalue()
    cut = mutate.get("truncate_tar")
    if isinstance(cut, float):
        blob = blob[: int(len(blob) * cut)]
    if mutate.get("flip_tar_byte") is not None:
        i = int(mutate["flip_tar_byte"]) % max(1, len(blob))  # type: ignore[call-overload]
        blob = blob[:i] + bytes([blob[i] ^ 0xFF]) + blob[i + 1 :] if blob else blob
    (root / "initial.tar.gz").write_bytes(blob)


def ends_well(fn, *args, **kwargs) -> str:
    """Run ``fn``: 'ok', or 'handled' if it raised the project's own error; anything else propagates."""
    try:
        fn(*args, **kwargs)
    except HTSError as exc:
        if not str(exc):
            raise AssertionError(f"{type(exc).__name__} without a message: an error must say what was wrong") from exc
        return "handled"
    return "ok"
