"""Structure generation following the 2DMD rules.

Low density (MoS2 and WSe2, 8x8): the 17 defect types of the study, every symmetry-inequivalent
configuration of each (5,933 per host, the 2DMD count), or a seeded random sample of them.
With M the metal, X the chalcogen, M' and X' their substitutes (MoS2: Mo, S, W, Se):

========  ==========================  ========  ==========================
X1        vac X                       V4        vac M + X'
X2        2 vac X                     V5        vac M + 2 X'
X3        X'                          V6        vac M + vac X + X'
X4        2 X'                        S1        M'
X5        vac X + X'                  S2        M' + vac X
V1        vac M                       S3        M' + 2 vac X
V2        vac M + vac X               S4        M' + X'
V3        vac M + 2 vac X             S5        M' + 2 X'
                                      S6        M' + vac X + X'
========  ==========================  ========  ==========================

(X: chalcogen-only; V: metal vacancy plus up to two chalcogen defects; S: metal substitution plus up
to two chalcogen defects.) The enumeration reproduces 2DMD's counts per type exactly
(1, 19, 1, 19, 29; 1, 15, 743, 15, 743, 1415; and the same for S), a check of the canonical form.

High density (every host): total defect concentrations 2.5, 5, 7.5, 10 and 12.5 % of the sites, at
most 6.25 % per defect type, defect types and sites drawn at random (seeded, reproducible).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hts.canonical import canonical_hashes, canonicalize
from hts.defects import PAD, ConfigBatch, DefectConfiguration
from hts.errors import ConfigError
from hts.hosts import VAC, Host

HIGH_DENSITY_CONCENTRATIONS = (0.025, 0.05, 0.075, 0.10, 0.125)
MAX_PER_TYPE = 0.0625


@dataclass(frozen=True)
class LowDensityType:
    """One of the 17 low-density defect types: a name and its defects as (role, new-species role)."""

    name: str
    defects: tuple[tuple[str, str], ...]  # ("M"|"X", "vac"|"sub")


LOW_DENSITY_TYPES: tuple[LowDensityType, ...] = (
    LowDensityType("X1", (("X", "vac"),)),
    LowDensityType("X2", (("X", "vac"), ("X", "vac"))),
    LowDensityType("X3", (("X", "sub"),)),
    LowDensityType("X4", (("X", "sub"), ("X", "sub"))),
    LowDensityType("X5", (("X", "vac"), ("X", "sub"))),
    LowDensityType("V1", (("M", "vac"),)),
    LowDensityType("V2", (("M", "vac"), ("X", "vac"))),
    LowDensityType("V3", (("M", "vac"), ("X", "vac"), ("X", "vac"))),
    LowDensityType("V4", (("M", "vac"), ("X", "sub"))),
    LowDensityType("V5", (("M", "vac"), ("X", "sub"), ("X", "sub"))),
    LowDensityType("V6", (("M", "vac"), ("X", "vac"), ("X", "sub"))),
    LowDensityType("S1", (("M", "sub"),)),
    LowDensityType("S2", (("M", "sub"), ("X", "vac"))),
    LowDensityType("S3", (("M", "sub"), ("X", "vac"), ("X", "vac"))),
    LowDensityType("S4", (("M", "sub"), ("X", "sub"))),
    LowDensityType("S5", (("M", "sub"), ("X", "sub"), ("X", "sub"))),
    LowDensityType("S6", (("M", "sub"), ("X", "vac"), ("X", "sub"))),
)
LOW_DENSITY_HOSTS = {"MoS2": ("Mo", "S"), "WSe2": ("W", "Se")}


def _species_for(host: Host, element: str, role: str) -> str:
    if role == "vac":
        return VAC
    subs = [r.new_species for r in host.rules if r.element == element and r.kind == "substitution"]
    return subs[0]


def _enumerate_type(host: Host, ld: LowDensityType, metal: str, chalcogen: str) -> ConfigBatch:
    """All configurations of one type with the first defect pinned (all sites of one element are
    equivalent), canonicalised and de-duplicated, sorted by canonical hash."""
    elements = {"M": metal, "X": chalcogen}
    wanted = [(elements[r], _species_for(host, elements[r], kind)) for r, kind in ld.defects]
    first_el, first_sp = wanted[0]
    pinned = int(host.sites_of(first_el)[0])
    # Group the remaining defects by (element, species): identical defects use combinations.
    groups: dict[tuple[str, str], int] = {}
    for w in wanted[1:]:
        groups[w] = groups.get(w, 0) + 1
    choices = []
    for (el, _sp), n in groups.items():
        free = [int(s) for s in host.sites_of(el) if s != pinned]
        choices.append(list(itertools.combinations(free, n)))
    rows: list[list[tuple[int, str]]] = []
    keys = list(groups)
    for combo in itertools.product(*choices):
        used = [s for part in combo for s in part]
        if len(set(used)) != len(used):
            continue
        row = [(pinned, first_sp)]
        for el_sp, part in zip(keys, combo, strict=True):
            row.extend((s, el_sp[1]) for s in part)
        rows.append(row)
    k = len(wanted)
    sites = np.full((len(rows), k), PAD, dtype=np.int32)
    codes = np.zeros((len(rows), k), dtype=np.int8)
    for i, row in enumerate(rows):
        for j, (s, sp) in enumerate(row):
            sites[i, j] = s
            codes[i, j] = host.code_of(sp)
    batch = canonicalize(ConfigBatch(host, sites, codes).sorted_rows())
    hashes = canonical_hashes(batch)
    _, first = np.unique(hashes, return_index=True)  # sorted by hash: reproducible order
    return ConfigBatch(host, batch.sites[first], batch.codes[first])


def generate_low_density(
    host: Host, per_type: int | None = None, seed: int = 0, types: Sequence[str] | None = None
) -> tuple[list[DefectConfiguration], list[str]]:
    """Low-density configurations and their type names (all inequivalent ones, or ``per_type`` each)."""
    if host.name not in LOW_DENSITY_HOSTS:
        raise ConfigError(
            f"low-density generation follows 2DMD, which defines it for {', '.join(LOW_DENSITY_HOSTS)} only; "
            f"use --density high for {host.name}"
        )
    metal, chalcogen = LOW_DENSITY_HOSTS[host.name]
    rng = np.random.default_rng(seed)
    names = {t.name for t in LOW_DENSITY_TYPES}
    for t in types or ():
        if t not in names:
            raise ConfigError(f"unknown low-density type {t!r}; known: {', '.join(sorted(names))}")
    configs: list[DefectConfiguration] = []
    labels: list[str] = []
    for ld in LOW_DENSITY_TYPES:
        if types and ld.name not in types:
            continue
        batch = _enumerate_type(host, ld, metal, chalcogen)
        rows = np.arange(len(batch))
        if per_type is not None and per_type < len(batch):
            rows = np.sort(rng.choice(len(batch), size=per_type, replace=False))
        chosen = ConfigBatch(host, batch.sites[rows], batch.codes[rows]).to_configs()
        configs.extend(chosen)
        labels.extend([ld.name] * len(chosen))
    return configs, labels


def high_density_counts(host: Host, concentration: float) -> tuple[int, int]:
    """(total defects, cap per defect type) for a concentration, rounded to whole sites."""
    total = round(concentration * host.n_sites)
    cap = int(np.floor(MAX_PER_TYPE * host.n_sites + 1e-9))
    return total, cap


def sample_high_density(host: Host, concentration: float, rng: np.random.Generator) -> DefectConfiguration:
    """One random configuration at ``concentration`` with at most 6.25 % of sites per defect type."""
    total, cap = high_density_counts(host, concentration)
    n_rules = len(host.rules)
    if total > cap * n_rules:
        raise ConfigError(
            f"{concentration:.1%} of {host.n_sites} sites ({total} defects) exceeds {n_rules} types x {cap} per type"
        )
    free = {el: len(host.sites_of(el)) for el in host.elements}
    counts = np.zeros(n_rules, dtype=int)
    for _ in range(total):
        ok = [i for i, r in enumerate(host.rules) if counts[i] < cap and free[r.element] > 0]
        if not ok:
            raise ConfigError(f"cannot place {total} defects in {host.key} under the per-type cap")
        i = int(rng.choice(ok))
        counts[i] += 1
        free[host.rules[i].element] -= 1
    defects: dict[int, str] = {}
    for el in host.elements:
        wanted = [(host.rules[i].new_species, int(counts[i])) for i in range(n_rules) if host.rules[i].element == el]
        n = sum(c for _, c in wanted)
        if n == 0:
            continue
        sites = rng.choice(host.sites_of(el), size=n, replace=False)
        pos = 0
        for sp, c in wanted:
            for s in sites[pos : pos + c]:
                defects[int(s)] = sp
            pos += c
    return DefectConfiguration.from_mapping(host, defects)


def high_density_label(concentration: float) -> str:
    """Description of a high-density structure, e.g. ``high_7.5pct``."""
    return f"high_{concentration * 100:g}pct"


def generate_high_density(
    host: Host,
    per_concentration: int,
    seed: int = 0,
    concentrations: Sequence[float] = HIGH_DENSITY_CONCENTRATIONS,
) -> tuple[list[DefectConfiguration], list[str]]:
    """``per_concentration`` distinct (symmetry-inequivalent) random configurations per concentration."""
    rng = np.random.default_rng(seed)
    configs: list[DefectConfiguration] = []
    labels: list[str] = []
    seen: set[str] = set()
    for c in concentrations:
        if not 0 < c <= 0.25:
            raise ConfigError(f"concentration {c} must be in (0, 0.25]")
        made, tries = 0, 0
        while made < per_concentration:
            tries += 1
            if tries > 20 * per_concentration + 100:
                raise ConfigError(f"could not draw {per_concentration} distinct configurations at {c:.1%}")
            cfg = sample_high_density(host, c, rng)
            h = cfg.canonical_hash()
            if h in seen:
                continue
            seen.add(h)
            configs.append(cfg)
            labels.append(high_density_label(c))
            made += 1
    return configs, labels
