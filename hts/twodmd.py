"""Datasets in the published 2DMD layout: read unchanged, write the same layout.

A dataset is one folder holding (see ``shared/reference/2dmd/README.md``):

- ``descriptors.csv``: ``_id, description, base, cell, defects`` (``cell`` and ``defects`` are Python
  literals; they are parsed with :func:`ast.literal_eval`, never ``eval``);
- ``defects.csv.gz``: ``_id, descriptor_id, defect_id`` and the properties (``energy``, ``homo``...);
- ``targets.csv.gz`` (optional): the same plus ``formation_energy`` and ``formation_energy_per_site``;
- ``initial.tar.gz``: the unrelaxed CIFs, one ``<_id>.cif`` per structure.

Reading matches each CIF against the pristine supercell of the descriptor's host, which yields the
defect configuration. Rows whose CIF is missing, unreadable or does not match the host are skipped and
reported (count and ids, in :attr:`DefectDataset.skipped` and the log), never silently dropped.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import logging
import os
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.defects import ConfigBatch, DefectConfiguration
from hts.errors import ConfigError, HTSError, InputDataError
from hts.hosts import Host, canonical_host_name, get_host

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

PROPERTY_COLUMNS = [
    "energy",
    "energy_per_atom",
    "fermi_level",
    "homo",
    "lumo",
    "normalized_homo",
    "normalized_lumo",
    "E_1",
    "homo_lumo_gap",
    "total_mag",
]
TARGET_COLUMNS = ["formation_energy", "formation_energy_per_site"]
ALL_PROPERTIES = PROPERTY_COLUMNS + TARGET_COLUMNS
TARGET_PROPERTIES: tuple[str, ...] = (
    "homo",
    "lumo",
    "homo_lumo_gap",
    "formation_energy",
    "formation_energy_per_site",
    "energy_per_atom",
    "fermi_level",
    "normalized_homo",
    "normalized_lumo",
)
"""Properties a surrogate predicts by default and a campaign may target (2DMD column names)."""

DESCRIPTORS = "descriptors.csv"
DEFECTS = "defects.csv.gz"
TARGETS = "targets.csv.gz"
INITIAL = "initial.tar.gz"


@dataclass
class DefectDataset:
    """Configurations and properties of one 2DMD-layout dataset (one host)."""

    host: Host
    ids: list[str]
    configs: list[DefectConfiguration]
    descriptions: list[str]
    descriptor_ids: list[str]
    table: pd.DataFrame  # indexed by _id, property columns (NaN where not labelled)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (_id, reason)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self) -> ConfigBatch:
        """All configurations as one :class:`ConfigBatch`."""
        return ConfigBatch.from_configs(self.configs)

    def labelled(self, column: str = "homo_lumo_gap") -> DefectDataset:
        """The rows whose ``column`` is a finite number."""
        if column not in self.table.columns:
            raise InputDataError(f"dataset has no column {column!r}; columns: {', '.join(self.table.columns)}")
        ok = np.isfinite(self.table[column].to_numpy(dtype=float))
        return self.subset(np.flatnonzero(ok))

    def subset(self, rows: Sequence[int] | np.ndarray) -> DefectDataset:
        """A dataset with the given row positions."""
        idx = [int(i) for i in rows]
        return DefectDataset(
            self.host,
            [self.ids[i] for i in idx],
            [self.configs[i] for i in idx],
            [self.descriptions[i] for i in idx],
            [self.descriptor_ids[i] for i in idx],
            self.table.iloc[idx].copy(),
            list(self.skipped),
            self.path,
        )


def literal(text: Any, what: str) -> Any:
    """Parse a Python literal from a CSV cell safely (``ast.literal_eval``; no code runs)."""
    if not isinstance(text, str):
        raise InputDataError(f"{what}: expected a Python literal, got {text!r}")
    if len(text) > 100_000:
        raise InputDataError(f"{what}: literal of {len(text)} characters is too long")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise InputDataError(f"{what}: not a Python literal ({type(exc).__name__}): {text[:80]!r}") from None


def _parse_cell(value: Any, what: str) -> tuple[int, int, int]:
    cell = literal(value, what)
    if not (isinstance(cell, (tuple, list)) and len(cell) == 3 and all(isinstance(x, int) for x in cell)):
        raise InputDataError(f"{what}: cell must be three integers such as (8, 8, 1), got {value!r}")
    return (int(cell[0]), int(cell[1]), int(cell[2]))


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(path, dtype={"_id": str, "descriptor_id": str})
    except Exception as exc:  # pandas raises many types on bad files
        raise InputDataError(f"cannot read {path}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _tar_members(path: Path) -> tuple[dict[str, bytes], str | None]:
    """CIF texts by ``_id`` from ``initial.tar.gz``; on a broken archive, what was readable and why."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile() or not member.name.endswith(".cif"):
                    continue
                if member.size > 50_000_000:
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                out[Path(member.name).stem] = fh.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        return out, f"{path.name} is damaged after {len(out)} CIFs ({type(exc).__name__}: {exc})"
    return out, None


def read_2dmd(
    path: str | os.PathLike[str],
    host: str | None = None,
    tol: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> DefectDataset:
    """Read a 2DMD-layout folder into a :class:`DefectDataset`.

    ``host`` selects one material when the folder holds several (rows of other hosts are skipped
    and reported); ``progress(done, total)`` is called while matching CIFs.
    """
    import pandas as pd

    root = Path(path)
    if not root.is_dir():
        raise InputDataError(f"dataset folder {root} does not exist")
    for name in (DESCRIPTORS, INITIAL):
        if not (root / name).is_file():
            raise InputDataError(f"{root} is not a 2DMD-layout dataset: {name} is missing")
    defects_path = root / DEFECTS if (root / DEFECTS).is_file() else root / "defects.csv"
    if not defects_path.is_file():
        raise InputDataError(f"{root} is not a 2DMD-layout dataset: {DEFECTS} is missing")

    desc = _read_table(root / DESCRIPTORS)
    rows = _read_table(defects_path)
    for col in ("_id", "description", "base", "cell", "defects"):
        if col not in desc.columns:
            raise InputDataError(f"{root / DESCRIPTORS} has no column {col!r}")
    for col in ("_id", "descriptor_id"):
        if col not in rows.columns:
            raise InputDataError(f"{defects_path} has no column {col!r}")
    if (root / TARGETS).is_file():
        targets = _read_table(root / TARGETS)
        extra = [c for c in targets.columns if c not in rows.columns and c != "_id"]
        if "_id" in targets.columns and extra:
            rows = rows.merge(targets[["_id", *extra]].drop_duplicates("_id"), on="_id", how="left")

    # Descriptors: host per descriptor, or the reason it cannot be used.
    desc_info: dict[str, tuple[Host | None, str, str]] = {}
    for rec in desc.to_dict("records"):
        did = str(rec["_id"])
        try:
            cell = _parse_cell(rec["cell"], f"descriptor {did} cell")
            defects = literal(rec["defects"], f"descriptor {did} defects")
            if not isinstance(defects, (list, tuple)):
                raise InputDataError(f"descriptor {did} defects: expected a list of dicts, got {rec['defects']!r}")
            h = get_host(str(rec["base"]), cell)
            desc_info[did] = (h, str(rec["description"]), "")
        except HTSError as exc:
            desc_info[did] = (None, str(rec.get("description", "")), str(exc))

    hosts = {h.key: h for h, _, _ in desc_info.values() if h is not None}
    if host is not None:
        wanted = canonical_host_name(host)
        chosen = [h for h in hosts.values() if h.name == wanted]
    else:
        chosen = list(hosts.values())
    if len(chosen) > 1:
        raise ConfigError(f"{root} holds several hosts ({', '.join(hosts)}); choose one with host=...")
    if not chosen:
        raise InputDataError(f"{root}: no usable descriptor (no known host material with a valid cell)")
    the_host = chosen[0]

    cifs, tar_problem = _tar_members(root / INITIAL)
    if tar_problem:
        log.warning(tar_problem)

    ids: list[str] = []
    configs: list[DefectConfiguration] = []
    descriptions: list[str] = []
    descriptor_ids: list[str] = []
    keep_rows: list[int] = []
    skipped: list[tuple[str, str]] = []
    seen_ids: set[str] = set()
    records = rows.to_dict("records")
    for i, rec in enumerate(records):
        if progress is not None and i % 256 == 0:
            progress(i, len(records))
        sid = str(rec["_id"])
        did = str(rec["descriptor_id"])
        info = desc_info.get(did)
        if sid in seen_ids:
            skipped.append((sid, "duplicate _id"))
            continue
        seen_ids.add(sid)
        if info is None:
            skipped.append((sid, f"descriptor_id {did!r} is not in {DESCRIPTORS}"))
            continue
        row_host, description, problem = info
        if row_host is None:
            skipped.append((sid, problem))
            continue
        if row_host != the_host:
            skipped.append((sid, f"host {row_host.key} is not the selected {the_host.key}"))
            continue
        raw = cifs.get(sid)
        if raw is None:
            skipped.append((sid, f"CIF {sid}.cif missing from {INITIAL}"))
            continue
        try:
            config = DefectConfiguration.from_cif(the_host, raw.decode("utf-8", errors="replace"), tol=tol)
        except HTSError as exc:
            skipped.append((sid, f"CIF {sid}.cif: {exc}"))
            continue
        ids.append(sid)
        configs.append(config)
        descriptions.append(description)
        descriptor_ids.append(did)
        keep_rows.append(i)
    if progress is not None:
        progress(len(records), len(records))
    if skipped:
        shown = ", ".join(s for s, _ in skipped[:5])
        log.warning("%s: skipped %d of %d rows (first ids: %s)", root, len(skipped), len(records), shown)
    table = rows.iloc[keep_rows].set_index("_id")
    for col in ALL_PROPERTIES:
        if col in table.columns:
            table[col] = pd.to_numeric(table[col], errors="coerce")
    table = table.drop(columns=[c for c in ("descriptor_id", "defect_id", "Unnamed: 0") if c in table.columns])
    return DefectDataset(the_host, ids, configs, descriptions, descriptor_ids, table, skipped, root)


def structure_id(config: DefectConfiguration) -> str:
    """A 24-hex-digit ``_id`` (the length of 2DMD's) derived from the canonical hash: symmetry-invariant."""
    return hashlib.blake2b(f"{config.host.key}:{config.canonical_hash()}".encode(), digest_size=12).hexdigest()


def descriptor_record(description: str, config: DefectConfiguration) -> dict[str, str]:
    """The ``descriptors.csv`` row of a configuration's defect type (id derived from its content)."""
    defects = sorted(config.to_2dmd_defects(), key=lambda d: tuple(sorted(d.items())))
    cell = str(tuple(config.host.supercell))
    text = repr(defects)
    did = hashlib.blake2b(f"{description}|{config.host.name}|{cell}|{text}".encode(), digest_size=12).hexdigest()
    return {"_id": did, "description": description, "base": config.host.name, "cell": cell, "defects": text}


def _atomic_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_gz(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(frame.to_csv(index=False).encode())
    return buf.getvalue()


def write_tables(
    root: Path,
    ids: Sequence[str],
    descriptor_ids: Sequence[str],
    table: pd.DataFrame | None,
    extra_columns: Sequence[str] = (),
) -> None:
    """(Re)write ``defects.csv.gz`` and ``targets.csv.gz`` for ``ids`` with properties from ``table``.

    ``extra_columns`` of ``table`` (e.g. the oracle's SCF status) are appended to both files.
    """
    import pandas as pd

    base = pd.DataFrame({"_id": list(ids), "descriptor_id": list(descriptor_ids), "defect_id": ""})
    props = table.reindex(list(ids)) if table is not None else pd.DataFrame(index=list(ids))
    for col in ALL_PROPERTIES:
        base[col] = props[col].to_numpy(dtype=float) if col in props.columns else np.nan
    extra = [c for c in extra_columns if c in props.columns]
    for col in extra:
        base[col] = props[col].to_numpy()
    _atomic_bytes(root / DEFECTS, _csv_gz(base[["_id", "descriptor_id", "defect_id", *PROPERTY_COLUMNS, *extra]]))
    _atomic_bytes(root / TARGETS, _csv_gz(base))


def write_2dmd(
    path: str | os.PathLike[str],
    configs: Sequence[DefectConfiguration],
    descriptions: Sequence[str],
    table: pd.DataFrame | None = None,
    ids: Sequence[str] | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Write configurations (and optional properties indexed by ``_id``) in the 2DMD layout.

    Files are written atomically and reproducibly (fixed archive timestamps). Refuses to overwrite
    an existing dataset unless ``overwrite``. Returns the ``_id`` of each configuration.
    """
    import pandas as pd

    root = Path(path)
    if root.exists() and any((root / n).exists() for n in (DESCRIPTORS, DEFECTS, INITIAL)) and not overwrite:
        raise InputDataError(f"{root} already holds a dataset; pass overwrite=True (--force) to replace it")
    if len(configs) != len(descriptions):
        raise InputDataError("configs and descriptions differ in length")
    root.mkdir(parents=True, exist_ok=True)
    ids = list(ids) if ids is not None else [structure_id(c) for c in configs]
    if len(set(ids)) != len(ids):
        raise InputDataError("duplicate _id in the dataset to write (symmetry-equivalent configurations?)")
    desc_rows: dict[str, dict[str, str]] = {}
    descriptor_ids = []
    for c, d in zip(configs, descriptions, strict=True):
        rec = descriptor_record(d, c)
        desc_rows.setdefault(rec["_id"], rec)
        descriptor_ids.append(rec["_id"])
    desc_frame = pd.DataFrame(list(desc_rows.values()), columns=["_id", "description", "base", "cell", "defects"])
    _atomic_bytes(root / DESCRIPTORS, desc_frame.to_csv(index=False).encode())
    write_tables(root, ids, descriptor_ids, table)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for sid, c in zip(ids, configs, strict=True):
            data = c.to_cif().encode()
            info = tarfile.TarInfo(f"{sid}.cif")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    _atomic_bytes(root / INITIAL, buf.getvalue())
    return ids


def iter_counts(descriptions: Iterable[str]) -> dict[str, int]:
    """Rows per description, in order of first appearance."""
    out: dict[str, int] = {}
    for d in descriptions:
        out[d] = out.get(d, 0) + 1
    return out
