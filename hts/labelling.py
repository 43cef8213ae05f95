"""Label a 2DMD-layout dataset with a physics oracle on Dask workers, resumably.

Results are appended, one JSON line per structure, to ``DIR/labels/part-*.jsonl`` as they arrive
(flushed and fsynced), so a run killed at any moment loses only the structures in flight. A restart
reads every shard, skips the ids already there (none is repeated) and labels the rest. The shards are
the unit that is committed while a long labelling job runs; :func:`merge_labels` turns them (one or
many, from any number of runs) into ``defects.csv.gz`` / ``targets.csv.gz`` with the derived 2DMD
columns:

- ``normalized_homo = homo - E_VBM(pristine)`` (and likewise LUMO), with ``E_VBM`` the pristine
  supercell's HOMO at the same level of theory. 2DMD aligns with ``E_1``, the lowest Kohn-Sham level,
  as ``homo - E_1 - (E_VBM - E_1)_pristine``; with xTB the lowest orbital of any Se-containing cell is
  the Se 4s level, ~1.03 eV below S 3s, so that alignment shifted every Se-containing structure by
  ~1 eV (measured on the bundled data: an S->Se + Mo->W cell with the pristine gap got a normalised
  HOMO of +1.05 eV). The xTB cells share the lattice and are neutral, so their eigenvalues have one
  reference (the same cell's raw HOMO moves by 0.02 eV); ``E_1`` is still recorded in its column;
- ``formation_energy = E_defect - E_pristine + sum(mu_removed) - sum(mu_added)`` with the elemental
  chemical potentials of :mod:`hts.oracle.references` (same method), and
  ``formation_energy_per_site`` (divided by the number of defects);
- ``homo``, ``lumo`` and ``homo_lumo_gap`` (and the pristine VBM) are re-derived from each result's
  stored ``frontier`` orbitals under the oracle's current definition (Aufbau with the integer electron
  count, :mod:`hts.oracle.xtb`), so a change of that definition needs no recomputation; results
  without ``frontier`` (the bundled MoS2 labels, computed before it existed) keep their stored values.

The manifest's note says, per host, whether its band edges fold onto the Gamma point of its supercell
(:data:`BAND_EDGES`).

The pristine reference is computed first, once per dataset, and stored in ``labels/reference.json``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hts.defects import DefectConfiguration
from hts.errors import ConfigError, InputDataError, OracleError
from hts.hosts import VAC, Host, default_oracle_method, get_host, host_elements

log = logging.getLogger(__name__)

LABELS_DIR = "labels"
REFERENCE_FILE = "reference.json"


@dataclass(frozen=True)
class OracleSettings:
    """What identifies a labelling: the oracle and its settings (stored with every result)."""

    oracle: str = "xtb"
    method: str = "GFN1-xTB"
    electronic_temperature_K: float = 300.0
    max_iterations: int = 250

    def as_dict(self) -> dict[str, Any]:
        return {
            "oracle": self.oracle,
            "method": self.method,
            "electronic_temperature_K": self.electronic_temperature_K,
            "max_iterations": self.max_iterations,
        }


_WORKER_ORACLES: dict[str, Any] = {}


def build_oracle(settings: OracleSettings) -> Any:
    """The oracle object for ``settings`` (cached per process, so once per Dask worker)."""
    key = json.dumps(settings.as_dict(), sort_keys=True)
    if key not in _WORKER_ORACLES:
        if settings.oracle != "xtb":
            raise ConfigError(f"unknown oracle {settings.oracle!r}; available: xtb")
        from hts.oracle.xtb import XTBOracle

        _WORKER_ORACLES[key] = XTBOracle(
            method=settings.method,
            electronic_temperature_K=settings.electronic_temperature_K,
            max_iterations=settings.max_iterations,
        )
    return _WORKER_ORACLES[key]


def compute_one(
    host_name: str, supercell: tuple[int, int, int], defects: tuple[tuple[int, str], ...], settings: OracleSettings
) -> dict[str, Any]:
    """Run the oracle on one configuration (the Dask task; arguments are small and picklable)."""
    host = get_host(host_name, supercell)
    config = DefectConfiguration.from_mapping(host, defects)
    result = build_oracle(settings).compute(config.to_structure())
    out = result.to_dict()
    out["n_atoms"] = host.n_sites - sum(1 for _, sp in config.defects if sp == VAC)
    return out


# -- shards ---------------------------------------------------------------------------------------
def read_shards(root: Path) -> dict[str, dict[str, Any]]:
    """All finished results by ``_id`` from ``labels/*.jsonl`` (a torn last line is ignored)."""
    out: dict[str, dict[str, Any]] = {}
    folder = root / LABELS_DIR
    if not folder.is_dir():
        return out
    for shard in sorted(folder.glob("part-*.jsonl")):
        with shard.open("rb") as fh:
            for raw in fh:
                try:
                    rec = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    log.warning("%s: ignoring an incomplete line (a run was killed while writing)", shard.name)
                    continue
                if isinstance(rec, dict) and "_id" in rec:
                    out.setdefault(str(rec["_id"]), rec)
    return out


class ShardWriter:
    """Append-only JSONL shard; each record is flushed and fsynced before the next is taken."""

    def __init__(self, root: Path) -> None:
        folder = root / LABELS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.path = folder / f"part-{stamp}-{os.getpid()}.jsonl"
        self._fh = self.path.open("ab")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, default=_json_default).encode() + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
        if self.path.stat().st_size == 0:
            self.path.unlink()


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


# -- reference ------------------------------------------------------------------------------------
def load_or_compute_reference(
    root: Path, host: Host, settings: OracleSettings, run: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The pristine reference of ``root`` (computed with ``run`` the first time, then stored)."""
    path = root / LABELS_DIR / REFERENCE_FILE
    if path.is_file():
        ref = json.loads(path.read_text())
        if ref.get("settings") != settings.as_dict() or ref.get("host") != host.key:
            raise ConfigError(
                f"{path} was computed with {ref.get('settings')} for {ref.get('host')}; this run uses "
                f"{settings.as_dict()} for {host.key}. Label into a fresh copy of the dataset instead."
            )
        return ref
    result = run()
    ref = {"host": host.key, "settings": settings.as_dict(), "pristine": result}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ref, indent=2, default=_json_default))
    os.replace(tmp, path)
    return ref


# -- the run --------------------------------------------------------------------------------------
@dataclass
class LabelReport:
    total: int
    already_done: int
    computed: int = 0
    failed: int = 0
    wall_time_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)


LABEL_ORDERS = ("dataset", "fewest-defects")


def label_dataset(
    path: str | os.PathLike[str],
    settings: OracleSettings | None = None,
    scheduler: str | None = None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    worker_env: dict[str, str] | None = None,
    order: str = "dataset",
) -> LabelReport:
    """Label every structure of the dataset at ``path`` that has no result yet; then merge.

    ``settings`` default to the host's method (:func:`hts.hosts.default_oracle_method`: GFN2-xTB for
    InSe and GaSe, GFN1-xTB otherwise). Killed at any moment and restarted, it loses no finished result
    and repeats none. ``order``:
    ``dataset`` (the dataset's own order) or ``fewest-defects`` (low-density structures first, in
    the dataset's order within each defect count: the part 2DMD's headline figures are quoted on).
    """
    from distributed import as_completed

    from hts.cluster import dask_client
    from hts.twodmd import read_2dmd

    root = Path(path)
    ds = read_2dmd(root)
    settings = settings or OracleSettings(method=default_oracle_method(ds.host.name))
    done = read_shards(root)
    for rid, rec in done.items():
        if rec.get("settings") != settings.as_dict():
            raise ConfigError(
                f"{root / LABELS_DIR} holds results computed with {rec.get('settings')} (e.g. {rid}); "
                f"this run asks for {settings.as_dict()}. Label a fresh copy of the dataset instead."
            )
    if order not in LABEL_ORDERS:
        raise ConfigError(f"unknown labelling order {order!r}; choose one of {', '.join(LABEL_ORDERS)}")
    pending = [(i, c) for i, c in zip(ds.ids, ds.configs, strict=True) if i not in done]
    if order == "fewest-defects":
        pending.sort(key=lambda item: item[1].n_defects)  # stable: the dataset's order within a count
    if limit is not None:
        pending = pending[:limit]
    report = LabelReport(total=len(ds), already_done=len(done))
    if worker_env is None:
        worker_env = _fast_blas_env()
    t0 = time.perf_counter()
    host = ds.host
    with dask_client(scheduler, n_workers, threads_per_worker, worker_env) as client:
        ref_args = (host.name, host.supercell, (), settings)
        load_or_compute_reference(
            root, host, settings, lambda: client.submit(compute_one, *ref_args, pure=False).result()
        )
        if pending:
            writer = ShardWriter(root)
            try:
                futures = {
                    client.submit(
                        compute_one, host.name, host.supercell, c.defects, settings, pure=False, key=f"label-{i}"
                    ): i
                    for i, c in pending
                }
                for finished, fut in enumerate(as_completed(futures), start=1):
                    rid = futures[fut]
                    try:
                        res = fut.result()
                        rec = {"_id": rid, "status": "ok", "settings": settings.as_dict(), **res}
                        report.computed += 1
                    except Exception as exc:  # one structure failing does not stop the others
                        rec = {
                            "_id": rid,
                            "status": "error",
                            "settings": settings.as_dict(),
                            "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                        }
                        report.failed += 1
                        report.failures.append((rid, rec["error"]))
                        log.warning("structure %s failed: %s", rid, rec["error"])
                    writer.write(rec)
                    if progress is not None:
                        progress(finished, len(pending))
            finally:
                writer.close()
    report.wall_time_s = time.perf_counter() - t0
    merge_labels(root)
    return report


def _fast_blas_env() -> dict[str, str]:
    try:
        from hts.oracle.blas import fast_blas_env
    except ImportError:  # pragma: no cover - oracle package always present
        return {}
    return fast_blas_env()


# -- merge ----------------------------------------------------------------------------------------
def chemical_potentials(settings: OracleSettings) -> dict[str, float]:
    """Elemental chemical potentials (eV/atom) at the oracle's level of theory (stored references)."""
    from hts.oracle.references import load_elemental_references

    return load_elemental_references(settings.method)


def merge_labels(path: str | os.PathLike[str]) -> int:
    """Rewrite ``defects.csv.gz`` / ``targets.csv.gz`` of ``path`` from its label shards.

    Returns the number of labelled rows. Unlabelled rows keep NaN properties.
    """
    import pandas as pd

    from hts.twodmd import read_2dmd, write_tables

    root = Path(path)
    ds = read_2dmd(root)
    done = read_shards(root)
    ref_path = root / LABELS_DIR / REFERENCE_FILE
    if not done or not ref_path.is_file():
        return 0
    ref = json.loads(ref_path.read_text())
    settings = OracleSettings(**ref["settings"])
    pristine = ref["pristine"]
    try:
        mu = chemical_potentials(settings)
    except (OracleError, FileNotFoundError, KeyError) as exc:
        log.warning("formation energies left empty: %s", exc)
        mu = {}
    missing = sorted(set(host_elements(ds.host.name)) - set(mu)) if mu else []
    if missing:  # e.g. GaSe labelled with GFN1-xTB, which has no Ga or In reference
        log.warning(
            "formation energies left empty: no %s chemical potential for %s (python -m hts.oracle.references "
            "--method %s --elements %s)",
            settings.method,
            ", ".join(missing),
            settings.method,
            " ".join(missing),
        )
        mu = {}
    rows = []
    for sid, config in zip(ds.ids, ds.configs, strict=True):
        rec = done.get(sid)
        row: dict[str, Any] = {"_id": sid}
        if rec is not None and rec.get("status") == "ok":
            row.update(derived_properties(config, rec, pristine, mu))
        if rec is not None:
            row["scf_status"] = rec.get("scf_status", rec.get("status"))
            row["n_fractional"] = rec.get("n_fractional")
            row["oracle_wall_time_s"] = rec.get("wall_time_s")
        rows.append(row)
    table = pd.DataFrame(rows).set_index("_id")
    write_tables(
        root, ds.ids, ds.descriptor_ids, table, extra_columns=["scf_status", "n_fractional", "oracle_wall_time_s"]
    )
    write_manifest(root, ds.descriptions, ds.ids, table, ref, done)
    return int(sum(1 for r in rows if "energy" in r))


# Where each host's band edges lie in its unit cell's Brillouin zone, as the host's own oracle method
# places them, and the supercell sizes n whose Gamma point contains them (multiples of m). Measured from
# pristine Gamma-point gaps of n x n cells (eV): MoS2 (GFN1, 2DMD cell) 3x3/6x6 1.63, 4x4 2.07, 8x8 1.78;
# WSe2 (GFN1) 3x3 1.93, 6x6 1.93, 4x4 2.62, 8x8 2.15; h-BN (GFN1) 3x3 4.11, 6x6 4.17, 4x4 5.30, 5x5 4.81,
# 8x8 4.48; P (GFN1) 3x3 1.651, 6x6 1.651, 2x2 1.78, 4x4 1.71 (the HOMO moves, the LUMO stays: a VBM off
# Gamma); GaSe (GFN2) 4x4 2.410, 6x6 2.410, 2x2 2.44, 3x3 2.74 (the LUMO moves: a CBM at M); InSe (GFN2)
# 4x4 1.397, 6x6 1.397, 2x2 1.42, 3x3 1.53.
BAND_EDGES: dict[str, tuple[str, int]] = {
    "MoS2": ("at K", 3),
    "WSe2": ("at K", 3),
    "BN": ("at K", 3),
    "P": ("at Gamma (conduction band) and at a k-point of the 3x3 grid off Gamma (valence band)", 3),
    "GaSe": ("near Gamma (valence band) and at M (conduction band)", 2),
    "InSe": ("at Gamma and M, points of the 2x2 grid", 2),
}
METHOD_NOTE = (
    "This is a property of the label, not a bug. HOMO/LUMO are on xTB's energy scale: compare within one method only."
)


def gamma_note(host_key: str, method: str) -> str:
    """The manifest's note on what the Gamma-point gap of this host and supercell means (:data:`BAND_EDGES`).

    MoS2 8x8 keeps the note its manifest always had."""
    from hts.hosts import host_from_key

    host = host_from_key(host_key)
    na, nb, _ = host.supercell
    size = f"{na}x{nb}"
    if host.name not in BAND_EDGES:  # pragma: no cover - every host is listed
        return f"Gamma-point labels ({size}, {method}). {METHOD_NOTE}"
    where, m = BAND_EDGES[host.name]
    if na % m or nb % m:
        text = (
            f"Gamma-point labels: {host.name}'s band edges lie {where}, which folds onto Gamma only for "
            f"supercells whose size is a multiple of {m}, so the {size} pristine gap ({method}) is larger than "
            f"at {m}x{m}/{2 * m}x{2 * m}."
        )
    else:
        text = (
            f"Gamma-point labels: {host.name}'s band edges lie {where}, which folds onto Gamma for supercells "
            f"whose size is a multiple of {m}, as {size} is, so the pristine gap ({method}) is the band gap "
            f"(to the resolution of the {size} k-grid)."
        )
    return f"{text} {METHOD_NOTE}"


def write_manifest(
    root: Path, descriptions: list[str], ids: list[str], table: Any, ref: dict[str, Any], done: dict[str, Any]
) -> Path:
    """``manifest.json``: counts and gap statistics per type, method, settings, versions, commands."""
    from hts.provenance import package_versions

    per_type: dict[str, dict[str, Any]] = {}
    gaps: dict[str, list[float]] = {}
    gap_col = table.get("homo_lumo_gap")
    for sid, d in zip(ids, descriptions, strict=True):
        entry = per_type.setdefault(d, {"structures": 0, "labelled": 0, "failed": 0})
        entry["structures"] += 1
        rec = done.get(sid)
        if rec is None:
            continue
        if rec.get("status") == "ok" and rec.get("scf_status") != "failed":
            entry["labelled"] += 1
            gap = float(gap_col.get(sid, np.nan)) if gap_col is not None else np.nan
            if np.isfinite(gap):
                gaps.setdefault(d, []).append(gap)
        else:
            entry["failed"] += 1
    for d, entry in per_type.items():
        g = np.array(gaps.get(d, []))
        entry["gap_eV"] = (
            {
                k: round(float(f(g)), 4)
                for k, f in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))
            }
            if g.size
            else None
        )
    times = [float(r.get("wall_time_s", 0.0)) for r in done.values() if r.get("status") == "ok"]
    gen = root / "generation.json"
    method = ref.get("settings", {}).get("method")
    manifest = {
        "dataset": root.name,
        "host": ref.get("host"),
        "structures": len(ids),
        "labelled": sum(e["labelled"] for e in per_type.values()),
        "failed": sum(e["failed"] for e in per_type.values()),
        "per_type": per_type,
        "oracle": {
            **ref.get("settings", {}),
            "periodic": "3D with vacuum, Gamma point",
            "structures": "unrelaxed",
            "pristine": _pristine_summary(ref["pristine"]),
        },
        "oracle_time_s": {
            "total": round(sum(times), 1),
            "mean_per_structure": round(float(np.mean(times)), 2) if times else None,
        },
        "versions": package_versions(("tblite", "numpy", "pymatgen")),
        "commands": {
            "generate": json.loads(gen.read_text()).get("settings") if gen.is_file() else None,
            "label": f"hts data label {root.name} --oracle xtb --method {method}",
            "merge": f"hts data merge {root.name}",
        },
        "note": gamma_note(str(ref.get("host")), str(method)),
    }
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def band_edges_of(rec: dict[str, Any]) -> tuple[float, float, float]:
    """(HOMO, LUMO, gap) of a stored result: re-derived from its ``frontier`` orbitals when it has them
    (:func:`hts.oracle.xtb.edges_from_frontier`, the oracle's current definition), else as stored
    (results from before ``frontier`` existed, e.g. the bundled MoS2 labels, keep their values)."""
    from hts.oracle.xtb import edges_from_frontier

    edges = edges_from_frontier(rec["frontier"]) if rec.get("frontier") else None
    if edges is None:
        return float(rec["homo"]), float(rec["lumo"]), float(rec["homo_lumo_gap"])
    return edges[0], edges[1], edges[1] - edges[0]


def _pristine_summary(pristine: dict[str, Any]) -> dict[str, Any]:
    """Energy and band edges of the pristine reference for the manifest (edges as the merge derives them)."""
    out = {k: pristine.get(k) for k in ("energy", "homo", "lumo", "homo_lumo_gap")}
    if pristine.get("frontier") and pristine.get("scf_status") != "failed":
        out["homo"], out["lumo"], out["homo_lumo_gap"] = band_edges_of(pristine)
    return out


def derived_properties(
    config: DefectConfiguration, rec: dict[str, Any], pristine: dict[str, Any], mu: dict[str, float]
) -> dict[str, float]:
    """2DMD property columns of one result (see the module docstring)."""
    homo, lumo, gap = band_edges_of(rec)
    e1 = float(rec.get("e_1", np.nan))
    p_vbm = band_edges_of(pristine)[0]
    out = {
        "energy": float(rec["energy"]),
        "energy_per_atom": float(rec["energy_per_atom"]),
        "fermi_level": float(rec["fermi_level"]),
        "homo": homo,
        "lumo": lumo,
        "E_1": e1,
        "normalized_homo": homo - p_vbm,  # not E_1-aligned: see the module docstring
        "normalized_lumo": lumo - p_vbm,
        "homo_lumo_gap": gap,
        "total_mag": np.nan,
    }
    if mu:
        host = config.host
        balance = 0.0
        try:
            for site, sp in config.defects:
                balance += mu[host.site_species[site]]  # removed atom returns to its reservoir
                if sp != VAC:
                    balance -= mu[sp]  # added atom taken from its reservoir
        except KeyError as exc:
            raise InputDataError(f"no chemical potential for element {exc}") from None
        ef = float(rec["energy"]) - float(pristine["energy"]) + balance
        out["formation_energy"] = ef
        out["formation_energy_per_site"] = ef / max(1, config.n_defects)
    return out
