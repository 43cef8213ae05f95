"""Tiny synthetic datasets with learnable labels for the surrogate tests (no xTB, no network)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hts.defects import ConfigBatch, DefectConfiguration
from hts.generate import generate_high_density
from hts.hosts import Host, get_host
from surrogate import DEFAULT_TARGETS

CONCENTRATIONS = (0.1, 0.15, 0.2, 0.25)  # 5, 7, 10 and 12 defects in a 4x4 cell
TARGETS = list(DEFAULT_TARGETS[:7])  # the synthetic labels below have no normalised HOMO/LUMO


def synthetic_labels(configs: list[DefectConfiguration], seed: int = 0, noise: float = 0.02) -> pd.DataFrame:
    """Labels that depend on defect counts and on the closest vacancy pair (so features matter)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in configs:
        counts = c.rule_counts()
        n_vs, n_vm = counts.get("vac_S", 0), counts.get("vac_Mo", 0)
        n_w, n_se = counts.get("Mo->W", 0), counts.get("S->Se", 0)
        vac = [s for s, sp in c.defects if sp == "VAC"]
        dmin = min((float(c.host.distance_matrix[a, b]) for a in vac for b in vac if a < b), default=10.0)
        gap = 1.8 - 0.4 * n_vs - 0.6 * n_vm - 0.02 * n_w + 0.3 * (dmin < 3.5) + rng.normal(0, noise)
        homo = -5.0 + 0.1 * n_vs + 0.05 * n_vm + rng.normal(0, noise)
        fe = 2.5 * n_vs + 4.0 * n_vm + 0.3 * n_w + 0.2 * n_se - 0.5 * (dmin < 3.5) + rng.normal(0, noise)
        n = max(1, c.n_defects)
        rows.append(
            {
                "homo": homo,
                "lumo": homo + gap,
                "homo_lumo_gap": gap,
                "formation_energy": fe,
                "formation_energy_per_site": fe / n,
                "energy_per_atom": -7.0 + 0.05 * n_vs + 0.08 * n_vm - 0.01 * n_se + rng.normal(0, noise / 10),
                "fermi_level": homo + gap / 2,
            }
        )
    return pd.DataFrame(rows)


@dataclass
class SyntheticDataset:
    """Duck-typed stand-in for :class:`hts.twodmd.DefectDataset`."""

    host: Host
    ids: list[str]
    configs: list[DefectConfiguration]
    descriptions: list[str]
    table: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self) -> ConfigBatch:
        return ConfigBatch.from_configs(self.configs)

    def subset(self, rows: list[int] | np.ndarray) -> SyntheticDataset:
        idx = [int(i) for i in rows]
        return SyntheticDataset(
            self.host,
            [self.ids[i] for i in idx],
            [self.configs[i] for i in idx],
            [self.descriptions[i] for i in idx],
            self.table.iloc[idx].copy(),
        )


def make_dataset(
    per_concentration: int = 40, seed: int = 0, supercell: tuple[int, int, int] = (4, 4, 1)
) -> SyntheticDataset:
    """A 4x4 MoS2 dataset: ``4 * per_concentration`` random configurations in 4 'defect types'."""
    host = get_host("MoS2", supercell)
    configs, descriptions = generate_high_density(host, per_concentration, seed=seed, concentrations=CONCENTRATIONS)
    ids = [f"s{i:05d}" for i in range(len(configs))]
    table = synthetic_labels(configs, seed=seed)
    table.index = pd.Index(ids, name="_id")
    return SyntheticDataset(host, ids, configs, descriptions, table)


def write_dataset(path: Path, ds: SyntheticDataset) -> Path:
    """Write ``ds`` in the 2DMD layout with the project's writer (ids re-derived from structures)."""
    from hts.twodmd import write_2dmd

    ids = write_2dmd(path, ds.configs, ds.descriptions)
    table = ds.table.copy()
    table.index = pd.Index(ids, name="_id")
    from hts.twodmd import write_tables

    desc_ids = pd.read_csv(path / "defects.csv.gz", dtype=str)["descriptor_id"].tolist()
    write_tables(path, ids, desc_ids, table)
    return path
