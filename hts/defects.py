"""Defect configurations: a host supercell plus a sparse map ``site -> new species | VAC``.

Everything else derives from a configuration: the pymatgen ``Structure`` and CIF, the text encodings
(``llm/``), the features (``surrogate/``) and the canonical hash (:mod:`hts.canonical`).

Two representations:

- :class:`DefectConfiguration`: one configuration, immutable, validated, hashable by its defects.
- :class:`ConfigBatch`: many configurations of one host as padded integer arrays (sites, codes),
  the form the hot paths (hashing, featurising) work on without Python objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hts.errors import DefectError, InputDataError
from hts.hosts import VAC, Host

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

PAD = -1
"""Padding value of :class:`ConfigBatch` site arrays."""


@dataclass(frozen=True)
class DefectConfiguration:
    """A defected supercell: ``host`` plus sorted ``defects`` ``((site, species), ...)``.

    ``species`` is the new element symbol of a substitution or ``VAC`` for a vacancy. Build with
    :meth:`from_mapping` (validates) or :meth:`pristine`.
    """

    host: Host
    defects: tuple[tuple[int, str], ...]

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, host: Host, defects: Mapping[int, str] | Iterable[tuple[int, str]]) -> DefectConfiguration:
        """Validated configuration from ``{site: species}`` or ``[(site, species), ...]``.

        Raises :class:`DefectError` naming the problem: a site out of range, a substitution the host's
        rules do not allow for that site's element, or two changes on one site.
        """
        items = list(defects.items()) if isinstance(defects, Mapping) else list(defects)
        seen: set[int] = set()
        out: list[tuple[int, str]] = []
        for raw_site, species in items:
            try:
                site = int(raw_site)
            except (TypeError, ValueError):
                raise DefectError(f"site index {raw_site!r} is not an integer") from None
            if not 0 <= site < host.n_sites:
                raise DefectError(f"site {site} is out of range for {host.key} (0..{host.n_sites - 1})")
            if site in seen:
                raise DefectError(f"site {site} is changed twice")
            seen.add(site)
            species = str(species)
            if host.rule_for(site, species) is None:
                allowed = [r.new_species for r in host.rules if r.element == host.site_species[site]]
                raise DefectError(
                    f"site {site} holds {host.site_species[site]} in {host.key}; it may become "
                    f"{' or '.join(allowed) or 'nothing'}, not {species!r}"
                )
            out.append((site, species))
        return cls(host, tuple(sorted(out)))

    @classmethod
    def pristine(cls, host: Host) -> DefectConfiguration:
        return cls(host, ())

    # -- views ----------------------------------------------------------------------------------
    @property
    def n_defects(self) -> int:
        return len(self.defects)

    @property
    def sites(self) -> np.ndarray:
        return np.array([s for s, _ in self.defects], dtype=np.int32)

    @property
    def codes(self) -> np.ndarray:
        return np.array([self.host.code_of(sp) for _, sp in self.defects], dtype=np.int8)

    def as_dict(self) -> dict[int, str]:
        return dict(self.defects)

    def species_list(self) -> list[str]:
        """Species of every pristine site after the defects (``VAC`` for vacancies), fixed order."""
        out = list(self.host.site_species)
        for site, sp in self.defects:
            out[site] = sp
        return out

    def rule_counts(self) -> Counter[str]:
        """Number of defects per rule name (``vac_S``, ``Mo->W``...)."""
        return Counter(
            self.host.rules[int(self.host.rule_index[s, self.host.code_of(sp)])].name for s, sp in self.defects
        )

    @property
    def concentration(self) -> float:
        """Fraction of sites changed."""
        return self.n_defects / self.host.n_sites

    def to_2dmd_defects(self) -> list[dict[str, str]]:
        """The 2DMD ``descriptors.csv`` ``defects`` list: one dict per point defect."""
        return [
            self.host.rules[int(self.host.rule_index[s, self.host.code_of(sp)])].as_2dmd() for s, sp in self.defects
        ]

    # -- structures -----------------------------------------------------------------------------
    def to_structure(self) -> Structure:
        """pymatgen ``Structure``: pristine order with substitutions applied and vacancies removed."""
        from pymatgen.core import Lattice, Structure

        species = self.species_list()
        keep = [i for i, sp in enumerate(species) if sp != VAC]
        return Structure(
            Lattice(self.host.lattice_matrix),
            [species[i] for i in keep],
            self.host.frac_coords[keep],
        )

    def to_cif(self) -> str:
        """P1 CIF text of :meth:`to_structure` (pymatgen ``CifWriter`` layout, written directly)."""
        from hts.cif import write_cif

        species = self.species_list()
        keep = [i for i, sp in enumerate(species) if sp != VAC]
        return write_cif(
            self.host.lattice_matrix, [species[i] for i in keep], self.host.frac_coords[keep], name=self.host.name
        )

    @classmethod
    def from_cif(cls, host: Host, text: str, tol: float = 0.5) -> DefectConfiguration:
        """Parse CIF text and match it against ``host`` (see :meth:`from_structure`)."""
        from hts.cif import read_cif

        cell = read_cif(text)
        _check_lattice(host, cell.abc, cell.angles)
        return cls.from_arrays(host, cell.frac_coords, cell.species, tol=tol)

    @classmethod
    def from_structure(cls, host: Host, structure: Structure, tol: float = 0.5) -> DefectConfiguration:
        """Match ``structure`` site by site against ``host``'s pristine supercell.

        The lattice parameters must match the host's; each atom is then assigned to the nearest
        pristine site (fractional coordinates, minimum image, within ``tol`` Angstrom); pristine
        sites with no atom are vacancies. Raises :class:`InputDataError` when the lattice or an atom
        does not match, or two atoms claim one site.
        """
        lat = structure.lattice
        _check_lattice(host, lat.abc, lat.angles)
        return cls.from_arrays(
            host, np.asarray(structure.frac_coords), [site.specie.symbol for site in structure], tol=tol
        )

    @classmethod
    def from_arrays(
        cls, host: Host, frac_coords: np.ndarray, species: Sequence[str], tol: float = 0.5
    ) -> DefectConfiguration:
        """Like :meth:`from_structure` from fractional coordinates (in the host's lattice) and symbols."""
        from scipy.spatial import cKDTree

        if len(frac_coords) == 0:
            raise InputDataError("structure has no atoms")
        if len(frac_coords) > host.n_sites:
            raise InputDataError(
                f"structure has {len(frac_coords)} atoms, more than the {host.n_sites} sites of {host.key}"
            )
        # Cartesian matching with in-plane periodicity: compare wrapped fractional coordinates in a
        # periodic box, then check the Cartesian distance of the match.
        box = np.array([1.0, 1.0, 1.0])
        tree = cKDTree(np.mod(host.frac_coords, 1.0) % 1.0, boxsize=box)
        _, idx = tree.query(np.mod(np.asarray(frac_coords, dtype=float), 1.0) % 1.0)
        d_frac = np.asarray(frac_coords) - host.frac_coords[idx]
        d_frac -= np.round(d_frac)
        d_cart = np.linalg.norm(d_frac @ host.lattice_matrix, axis=1)
        bad = np.flatnonzero(d_cart > tol)
        if bad.size:
            i = int(bad[0])
            raise InputDataError(
                f"{bad.size} atom(s) match no pristine site of {host.key} within {tol} A "
                f"(first: atom {i} {species[i]} at {np.round(frac_coords[i], 4).tolist()}, {d_cart[i]:.2f} A away)"
            )
        counts = np.bincount(idx, minlength=host.n_sites)
        if counts.max() > 1:
            raise InputDataError(f"two atoms sit on pristine site {int(np.argmax(counts))} of {host.key}")
        defects: dict[int, str] = {int(s): VAC for s in np.flatnonzero(counts == 0)}
        for atom, site in enumerate(idx):
            if species[atom] != host.site_species[site]:
                defects[int(site)] = species[atom]
        try:
            return cls.from_mapping(host, defects)
        except DefectError as exc:
            raise InputDataError(f"structure is not an allowed defect configuration: {exc}") from None

    # -- symmetry -------------------------------------------------------------------------------
    def canonical(self) -> DefectConfiguration:
        """The symmetry-canonical representative (see :mod:`hts.canonical`)."""
        from hts.canonical import canonicalize

        batch = canonicalize(ConfigBatch.from_configs([self]))
        return batch.to_configs()[0]

    def canonical_hash(self) -> str:
        """16-hex-digit hash, equal for configurations related by a symmetry of the pristine host."""
        from hts.canonical import canonical_hashes

        return format(int(canonical_hashes(ConfigBatch.from_configs([self]))[0]), "016x")

    def transformed(self, op: int) -> DefectConfiguration:
        """The configuration moved by symmetry operation ``op`` of the pristine supercell."""
        perm = self.host.symmetry_permutations[op]
        return DefectConfiguration(self.host, tuple(sorted((int(perm[s]), sp) for s, sp in self.defects)))

    def __str__(self) -> str:
        body = ", ".join(f"{s}:{sp}" for s, sp in self.defects) or "pristine"
        return f"{self.host.key}[{body}]"


def _check_lattice(host: Host, abc: Sequence[float], angles: Sequence[float]) -> None:
    from hts.cif import lattice_parameters

    habc, hang = lattice_parameters(host.lattice_matrix)
    if not (np.allclose(abc[:2], habc[:2], atol=0.05) and np.allclose(angles, hang, atol=0.5)):
        raise InputDataError(
            f"lattice a={abc[0]:.3f} b={abc[1]:.3f} gamma={angles[2]:.1f} does not match the {host.key} "
            f"pristine supercell (a={habc[0]:.3f} b={habc[1]:.3f} gamma={hang[2]:.1f})"
        )


@dataclass
class ConfigBatch:
    """Many configurations of one host as padded arrays.

    ``sites``: (N, K) int32, ``PAD`` (-1) where a row has fewer than K defects; ``codes``: (N, K) int8
    indices into ``host.species_codes`` (undefined where padded). Rows are sorted by site.
    """

    host: Host
    sites: np.ndarray
    codes: np.ndarray

    def __len__(self) -> int:
        return int(self.sites.shape[0])

    @property
    def mask(self) -> np.ndarray:
        return self.sites != PAD

    @property
    def n_defects(self) -> np.ndarray:
        return self.mask.sum(axis=1)

    def take(self, rows: np.ndarray | Sequence[int]) -> ConfigBatch:
        """The configurations at ``rows`` (indices or a boolean mask), as a new batch."""
        return ConfigBatch(self.host, self.sites[rows], self.codes[rows])

    @classmethod
    def empty(cls, host: Host) -> ConfigBatch:
        """A batch of no configurations."""
        return cls(host, np.zeros((0, 1), np.int32), np.zeros((0, 1), np.int8))

    @classmethod
    def concat(cls, host: Host, batches: Sequence[ConfigBatch]) -> ConfigBatch:
        """The rows of ``batches`` (all of ``host``) one after another, padded to a common width."""
        if any(b.host != host for b in batches):
            raise InputDataError(f"concatenating batches of hosts other than {host.key}")
        width = max([1, *(b.sites.shape[1] for b in batches)])
        sites = [np.pad(b.sites, ((0, 0), (0, width - b.sites.shape[1])), constant_values=PAD) for b in batches]
        codes = [np.pad(b.codes, ((0, 0), (0, width - b.codes.shape[1]))) for b in batches]
        if not sites:
            return cls.empty(host)
        return cls(host, np.concatenate(sites).astype(np.int32), np.concatenate(codes).astype(np.int8))

    @classmethod
    def from_configs(cls, configs: Sequence[DefectConfiguration]) -> ConfigBatch:
        if not configs:
            raise InputDataError("empty batch of configurations")
        host = configs[0].host
        k = max(1, max(c.n_defects for c in configs))
        sites = np.full((len(configs), k), PAD, dtype=np.int32)
        codes = np.zeros((len(configs), k), dtype=np.int8)
        for i, c in enumerate(configs):
            if c.host != host:
                raise InputDataError(f"batch mixes hosts {host.key} and {c.host.key}")
            n = c.n_defects
            if n:
                sites[i, :n] = c.sites
                codes[i, :n] = c.codes
        return cls(host, sites, codes)

    def to_configs(self) -> list[DefectConfiguration]:
        codes = self.host.species_codes
        out = []
        for srow, crow in zip(self.sites, self.codes, strict=True):
            m = srow != PAD
            out.append(
                DefectConfiguration(
                    self.host, tuple(sorted((int(s), codes[int(c)]) for s, c in zip(srow[m], crow[m], strict=True)))
                )
            )
        return out

    def sorted_rows(self) -> ConfigBatch:
        """Copy with each row sorted by site (padding last)."""
        key = np.where(self.mask, self.sites, np.iinfo(np.int32).max)
        order = np.argsort(key, axis=1, kind="stable")
        return ConfigBatch(
            self.host, np.take_along_axis(self.sites, order, 1), np.take_along_axis(self.codes, order, 1)
        )

    def validate(self) -> np.ndarray:
        """Boolean (N,) mask of rows that obey the host's rules (allowed species, distinct sites)."""
        m = self.mask
        in_range = (
            (self.sites >= 0) & (self.sites < self.host.n_sites) & (self.codes >= 0) & (self.codes < self.host.n_codes)
        ) | ~m
        s = np.clip(self.sites, 0, self.host.n_sites - 1)
        c = np.clip(self.codes.astype(np.int64), 0, self.host.n_codes - 1)
        allowed = self.host.allowed[s, c] | ~m
        # Padding gets distinct negative values so only real sites can collide.
        pad_fill = -np.arange(2, self.sites.shape[1] + 2)[None, :]
        srt = np.sort(np.where(m, self.sites, pad_fill), axis=1)
        distinct = ~(np.diff(srt, axis=1) == 0).any(axis=1)
        return in_range.all(axis=1) & allowed.all(axis=1) & distinct
