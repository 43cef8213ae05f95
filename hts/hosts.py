"""Host materials: pristine supercells, their fixed site order, defect rules and symmetry.

The unit cells are the ones 2DMD built its structures from (``hts/data/unit_cells``, copied unchanged
from the 2DMD repository), so that real 2DMD CIFs match the pristine supercells here site for site.

Site order (fixed, documented, stable across runs and machines): for a supercell ``na x nb x 1`` of a
unit cell with sites ``u = 0 .. n_unit-1`` (in the order of the unit-cell CIF), the supercell site of
unit-cell site ``u`` in the cell translated by ``(i, j)`` has index ``u * na * nb + i * nb + j``.
For MoS2 8x8 that is: Mo 0-63, lower S 64-127, upper S 128-191. Fractional coordinates are wrapped
into [0, 1) in-plane; the out-of-plane coordinate is kept as in the unit cell.

Lattice constants (from the 2DMD unit cells, PBE-relaxed): MoS2 a = 3.1903 A, WSe2 a = 3.3271 A,
h-BN a = 2.5124 A, GaSe a = 3.8191 A, InSe a = 4.0965 A, black phosphorus a = 3.2999 A, b = 4.6009 A.
The c axis (vacuum) is 14.879 A (MoS2), 15.069 A (WSe2) and 20 A for the others.

Oracle method per host (:attr:`HostSpec.oracle_method`, the default of ``hts data label``): GFN1-xTB,
except GFN2-xTB for InSe and GaSe. InSe cannot be computed with GFN1-xTB in tblite at all: GFN1's
diffuse In 5d shell makes the Gamma-point overlap matrix of any cell dense in In non-positive-definite
(``(sygvd) failed to solve eigenvalue problem``; the cause and the measurements are in
:mod:`hts.oracle.xtb`). The InSe geometry is not at fault: In-Se 2.68 A, In-In 2.83 A and a = 4.096 A
match published values (PBE monolayer: a ~ 4.08-4.09 A, In-Se ~ 2.69 A, In-In ~ 2.82 A; bulk InSe, experiment:
a ~ 4.00 A, In-Se ~ 2.65 A, In-In ~ 2.79 A), and the failure persists for c = 20-40 A and 1x1 to 6x6
cells. GaSe itself computes with GFN1, but its elemental references cannot (alpha-Ga and bct In fail
the same way), so its formation energies need GFN2-xTB too; both group-13 selenides then share one
method and one set of Ga, In, S and Se chemical potentials.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Literal

import numpy as np

from hts.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

VAC = "VAC"
"""Species token of a vacancy, as in the study's prompt ("write VAC for a vacancy")."""


@dataclass(frozen=True)
class DefectRule:
    """One allowed point-defect type of a host: a vacancy of ``element`` or ``element -> to``."""

    kind: Literal["vacancy", "substitution"]
    element: str
    to: str | None = None

    @property
    def new_species(self) -> str:
        """Species the site holds after the defect (``VAC`` for a vacancy)."""
        return VAC if self.kind == "vacancy" else str(self.to)

    @property
    def name(self) -> str:
        """Short name: ``vac_S`` or ``S->Se``."""
        return f"vac_{self.element}" if self.kind == "vacancy" else f"{self.element}->{self.to}"

    def as_2dmd(self) -> dict[str, str]:
        """The rule as a 2DMD ``descriptors.csv`` dict."""
        if self.kind == "vacancy":
            return {"type": "vacancy", "element": self.element}
        return {"type": "substitution", "from": self.element, "to": str(self.to)}


@dataclass(frozen=True)
class HostSpec:
    """Static description of a host material as 2DMD defines it."""

    name: str
    unit_cell_file: str
    supercell: tuple[int, int, int]
    rules: tuple[DefectRule, ...]
    aliases: tuple[str, ...] = ()
    oracle_method: str = "GFN1-xTB"  # the xTB method its labels use (module docstring)


def _v(el: str) -> DefectRule:
    return DefectRule("vacancy", el)


def _s(el: str, to: str) -> DefectRule:
    return DefectRule("substitution", el, to)


# The defect rules of the 2DMD generation configs (the talk's slide has typos for GaSe/InSe).
HOST_SPECS: dict[str, HostSpec] = {
    "MoS2": HostSpec("MoS2", "MoS2.cif", (8, 8, 1), (_s("Mo", "W"), _s("S", "Se"), _v("Mo"), _v("S"))),
    "WSe2": HostSpec("WSe2", "WSe2.cif", (8, 8, 1), (_s("W", "Mo"), _s("Se", "S"), _v("W"), _v("Se"))),
    "BN": HostSpec("BN", "BN.cif", (8, 8, 1), (_s("B", "C"), _s("N", "C"), _v("B"), _v("N")), aliases=("h-BN", "hBN")),
    "GaSe": HostSpec(
        "GaSe", "GaSe.cif", (6, 6, 1), (_s("Ga", "In"), _s("Se", "S"), _v("Ga"), _v("Se")), oracle_method="GFN2-xTB"
    ),
    "InSe": HostSpec(
        "InSe", "InSe.cif", (6, 6, 1), (_s("In", "Ga"), _s("Se", "S"), _v("In"), _v("Se")), oracle_method="GFN2-xTB"
    ),
    "P": HostSpec("P", "P.cif", (6, 6, 1), (_s("P", "N"), _v("P")), aliases=("BP", "black-P", "phosphorene")),
}


def canonical_host_name(name: str) -> str:
    """Resolve a host name or alias (case-insensitive) to its 2DMD ``base`` name."""
    wanted = name.strip().lower()
    for spec in HOST_SPECS.values():
        if wanted == spec.name.lower() or wanted in (a.lower() for a in spec.aliases):
            return spec.name
    known = ", ".join(HOST_SPECS)
    raise ConfigError(f"unknown host material {name!r}; known hosts: {known} (aliases: h-BN, BP)")


def default_oracle_method(name: str) -> str:
    """The xTB method a host's labels use by default (``GFN1-xTB``; ``GFN2-xTB`` for InSe and GaSe)."""
    return HOST_SPECS[canonical_host_name(name)].oracle_method


def host_elements(name: str) -> tuple[str, ...]:
    """Every element a host's cells can hold: the pristine ones and those its substitution rules add."""
    spec = HOST_SPECS[canonical_host_name(name)]
    _, species, _ = _read_unit_cell(spec.unit_cell_file)
    added = [str(r.to) for r in spec.rules if r.kind == "substitution"]
    return tuple(dict.fromkeys([*species, *added]))


@dataclass(frozen=True, eq=False)
class Host:
    """A pristine supercell with its defect rules; build with :func:`get_host` (cached)."""

    spec: HostSpec
    supercell: tuple[int, int, int]
    lattice_matrix: np.ndarray  # (3, 3) Angstrom, rows are lattice vectors
    frac_coords: np.ndarray  # (n_sites, 3)
    site_species: tuple[str, ...]  # pristine species per site, in the fixed order
    species_codes: tuple[str, ...]  # the alphabet of new species (code index -> species)
    allowed: np.ndarray  # (n_sites, n_codes) bool: may site s take code c
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    # -- identity -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The 2DMD ``base`` name (``MoS2``, ``BN``, ``P``...)."""
        return self.spec.name

    @property
    def key(self) -> str:
        """``MoS2-8x8x1``: name and supercell, unique per host object."""
        return f"{self.name}-{'x'.join(map(str, self.supercell))}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Host) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Host({self.key}, {self.n_sites} sites)"

    # -- sizes and lookups ----------------------------------------------------------------------
    @property
    def rules(self) -> tuple[DefectRule, ...]:
        return self.spec.rules

    @property
    def n_sites(self) -> int:
        return len(self.site_species)

    @property
    def n_codes(self) -> int:
        return len(self.species_codes)

    @property
    def elements(self) -> tuple[str, ...]:
        """Pristine elements in order of first appearance."""
        return tuple(dict.fromkeys(self.site_species))

    @functools.cached_property
    def site_species_array(self) -> np.ndarray:
        return np.array(self.site_species)

    def sites_of(self, element: str) -> np.ndarray:
        """Indices of the pristine sites holding ``element``."""
        return np.flatnonzero(self.site_species_array == element)

    def code_of(self, species: str) -> int:
        """Code index of a new species (``VAC``, ``W``...); raises ``KeyError`` if unknown."""
        return self.species_codes.index(species)

    def rule_for(self, site: int, species: str) -> DefectRule | None:
        """The rule that turns ``site`` into ``species``, or ``None`` if no rule allows it."""
        el = self.site_species[site]
        for rule in self.rules:
            if rule.element == el and rule.new_species == species:
                return rule
        return None

    @functools.cached_property
    def rule_index(self) -> np.ndarray:
        """(n_sites, n_codes) int: index of the rule realising (site, code), -1 where forbidden."""
        out = np.full((self.n_sites, self.n_codes), -1, dtype=np.int16)
        for r, rule in enumerate(self.rules):
            out[self.site_species_array == rule.element, self.code_of(rule.new_species)] = r
        return out

    @property
    def cart_coords(self) -> np.ndarray:
        return self.frac_coords @ self.lattice_matrix

    # -- derived objects (cached) ---------------------------------------------------------------
    def pristine_structure(self) -> Structure:
        """The pristine supercell as a pymatgen ``Structure`` in the fixed site order."""
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice_matrix), list(self.site_species), self.frac_coords)

    @property
    def symmetry_permutations(self) -> np.ndarray:
        """(n_ops, n_sites) int32: site permutations of the pristine supercell's space group.

        Includes the lattice translations of the supercell and the point-group operations.
        """
        from hts.symmetry import supercell_permutations

        perms = self._cache.get("perms")
        if perms is None:
            perms = supercell_permutations(self)
            self._cache["perms"] = perms
        return perms  # type: ignore[return-value]

    @property
    def distance_matrix(self) -> np.ndarray:
        """(n_sites, n_sites) float32 minimum-image distances between pristine sites (Angstrom)."""
        d = self._cache.get("dist")
        if d is None:
            from hts.symmetry import minimum_image_distances

            d = minimum_image_distances(self.frac_coords, self.lattice_matrix)
            self._cache["dist"] = d
        return d  # type: ignore[return-value]


def _read_unit_cell(filename: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Lattice, species and fractional coordinates of a bundled 2DMD unit cell (no pymatgen)."""
    text = resources.files("hts.data").joinpath("unit_cells", filename).read_text()
    cell: dict[str, float] = {}
    species: list[str] = []
    coords: list[list[float]] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0].startswith("_cell_length_") or parts[0].startswith("_cell_angle_"):
            cell[parts[0]] = float(parts[1])
        elif len(parts) == 7 and parts[0].isalpha() and parts[0][0].isupper():
            species.append(parts[0])
            coords.append([float(x) for x in parts[3:6]])
    a, b, c = (cell[f"_cell_length_{k}"] for k in "abc")
    al, be, ga = (np.radians(cell[f"_cell_angle_{k}"]) for k in ("alpha", "beta", "gamma"))
    # The same convention as pymatgen's Lattice.from_parameters (a along x, b in the xy plane).
    va = [a, 0.0, 0.0]
    vb = [b * np.cos(ga), b * np.sin(ga), 0.0]
    cx = c * np.cos(be)
    cy = c * (np.cos(al) - np.cos(be) * np.cos(ga)) / np.sin(ga)
    vc = [cx, cy, np.sqrt(max(c * c - cx * cx - cy * cy, 0.0))]
    lattice = np.array([va, vb, vc])
    lattice[np.abs(lattice) < 1e-12] = 0.0
    return lattice, species, np.array(coords)


def get_host(name: str, supercell: tuple[int, ...] | list[int] | None = None) -> Host:
    """The host material ``name`` (or alias) as a supercell, the 2DMD supercell by default.

    Hosts are cached: the same name and supercell always give the same object.
    """
    spec = HOST_SPECS[canonical_host_name(name)]
    try:
        sc = tuple(int(x) for x in (supercell or spec.supercell))
    except (TypeError, ValueError):
        raise ConfigError(f"supercell must be three integers (na, nb, 1), got {supercell!r}") from None
    if len(sc) != 3 or sc[2] != 1 or sc[0] < 1 or sc[1] < 1 or sc[0] * sc[1] > 400:
        raise ConfigError(f"supercell must be (na, nb, 1) with 1 <= na*nb <= 400 for a monolayer, got {supercell!r}")
    return _build_host(spec.name, sc[0], sc[1])


@functools.lru_cache(maxsize=32)
def _build_host(name: str, na: int, nb: int) -> Host:
    spec = HOST_SPECS[name]
    lattice, species, frac = _read_unit_cell(spec.unit_cell_file)
    ii, jj = np.meshgrid(np.arange(na), np.arange(nb), indexing="ij")
    shifts = np.stack([ii.ravel(), jj.ravel(), np.zeros(na * nb)], axis=1)  # index i*nb + j
    all_frac = []
    all_species: list[str] = []
    for u, el in enumerate(species):
        f = (frac[u][None, :] + shifts) / np.array([na, nb, 1.0])
        f[:, :2] = np.mod(np.round(f[:, :2], 10), 1.0)
        all_frac.append(f)
        all_species.extend([el] * (na * nb))
    super_lattice = lattice * np.array([[na], [nb], [1]])
    codes = tuple(dict.fromkeys(r.new_species for r in spec.rules))
    site_species = tuple(all_species)
    allowed = np.zeros((len(site_species), len(codes)), dtype=bool)
    arr = np.array(site_species)
    for rule in spec.rules:
        allowed[arr == rule.element, codes.index(rule.new_species)] = True
    return Host(
        spec=spec,
        supercell=(na, nb, 1),
        lattice_matrix=super_lattice,
        frac_coords=np.concatenate(all_frac),
        site_species=site_species,
        species_codes=codes,
        allowed=allowed,
    )


def host_from_key(key: str) -> Host:
    """The host of a key such as ``MoS2-8x8x1`` (:attr:`Host.key`)."""
    name, _, cell = key.rpartition("-")
    try:
        supercell = tuple(int(x) for x in cell.split("x"))
    except ValueError:
        raise ConfigError(f"not a host key: {key!r} (expected e.g. MoS2-8x8x1)") from None
    return get_host(name, supercell)


def list_hosts() -> list[str]:
    """Names of the supported host materials."""
    return list(HOST_SPECS)
