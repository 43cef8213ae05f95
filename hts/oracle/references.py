"""Elemental chemical potentials at the oracle's level of theory, for formation energies.

``formation_energy = E_defect - E_pristine + sum(mu_removed) - sum(mu_added)`` needs each element's
energy per atom in a reference state computed with the same method and settings as the defects
(2DMD used PBE energies of the Materials Project ground states).

Protocol: the same as the labels, i.e. GFN1-xTB single points (300 K, 3D periodic, Gamma point) at
experimental / DFT-quality geometries, not relaxed with xTB (the 2DMD structures are labelled
unrelaxed, at their PBE geometry). Relaxing with GFN1-xTB is not an option for the metals: its bcc
Mo has no energy minimum within +-10 % of the experimental lattice constant (E(a) on the 54-atom
cell keeps falling to a ~ 3.55-3.75 A, +13-19 %, 0.85 eV/atom below the experimental lattice),
while bcc W's minimum is near 3.25 A (+2.7 %).

- Mo, W: bcc (the ground state) at a = 3.147 / 3.165 A. A metal sampled at Gamma only converges
  slowly and erratically with the cell (Mo, eV/atom: 54 atoms -58.393, 64 (primitive 4^3) -58.105,
  125 -58.523, 128 -58.372, 216 -58.417, 250 -58.454, 256 -58.426, 343 -58.395, 500 -58.437), so the
  energy is the mean over three differently shaped supercells of 216-256 atoms (``BCC_CELLS``;
  their spread is stored: 34 meV/atom for Mo, 118 for W, so expect ~+-20 / +-60 meV/atom). Metals
  use Fermi smearing at ``METAL_SMEARING_K`` for a robust SCF, with Gillan's zero-smearing
  extrapolation ``E0 = F - TS/2`` (tblite's energy is the Mermin free energy ``F = E - TS``); E0 at
  2000 K matches F at 300 K within ~2 meV/atom on the large cells. A +-3 % E(a) scan is stored too.
- S, Se: the X8 crown ring (D4d; S-S 2.05 A, 108 deg; Se-Se 2.34 A, 105.7 deg) in a 20 A cubic box
  (images do not interact: < 0.1 meV/atom against 30 A). GFN1-xTB, parametrised on molecules,
  describes the rings well: relaxing them moves the bonds to 2.044 / 2.301 A and lowers the energy
  by 0.5 / 12 meV/atom (stored as ``X8-relaxed``). The solid ground states (alpha-S8, a molecular
  crystal of these rings; trigonal Se, helical chains) are not used: GFN1-xTB describes the chain
  crystals badly (relaxed trigonal Se contracts a by 13 %, 3.80 vs 4.37 A, and a chain form of S
  comes out ~0.29 eV/atom below the S8 ring, against experiment, where the ring crystal is the
  ground state). Both chalcogens thus miss the same kind of term, the cohesion of the molecular
  solid (~0.1 eV/atom), which keeps S <-> Se substitution energies consistent. The relaxed chain
  crystals are computed and stored as ``candidates`` for the record.

The other hosts' elements (B, N, C, P with GFN1-xTB, the method of h-BN and black phosphorus; Ga,
In, S, Se with GFN2-xTB, the method of GaSe and InSe, :attr:`hts.hosts.HostSpec.oracle_method`):

- N: the N2 molecule at the experimental bond (1.0977 A) in a 20 A box (the standard state; solid
  alpha-N2 is a molecular crystal ~0.04 eV/atom below it, which xTB's D3 term would only partly
  describe). Checks stored: a 30 A box (< 1 meV/atom) and N2 relaxed (bond 1.0985 A, < 1 meV/atom).
- B: alpha-rhombohedral boron (B12 icosahedra, R-3m, experimental geometry), the usual reference for
  defects in h-BN (beta-B105 is nearly degenerate but has 105+ atoms with partial occupancies). An
  insulator (GFN1 gap 1.7-1.9 eV): the largest cell (648 atoms) is taken; 324 -> 648 atoms changes it
  by 0.2 meV/atom.
- C: graphite (AB, experimental a and c), the ground state 2DMD's Materials Project references use,
  computed like the metals (a semimetal sampled at Gamma): mean over 512/648/800-atom cells (spread
  6 meV/atom). Graphene at the same a is stored as a candidate: 47 meV/atom above graphite, close to
  graphite's measured interlayer binding (~50 meV/atom), which GFN1's D3 term provides.
- P: bulk black phosphorus (Cmce, experimental geometry), the stable allotrope at ambient conditions
  and the bulk of the P host's own layer (monolayer references would make the P vacancy energy the
  removal into a free layer). An insulator (GFN1 gap 0.83 eV): the largest cell is taken. In-plane
  the Gamma-only energy converges slowly (eV/atom: 4x2x3 cells, 192 atoms, -72.3659; 5x2x4, 320,
  -72.3803; 6x2x5, 480, -72.3808, 0.5 meV/atom from the previous), along the stacking axis fast
  (4x3x3 against 4x2x3: 0.5 meV/atom). The P host's pristine 6x6 layer (2DMD's PBE geometry) is
  stored as the candidate ``phosphorene`` (0.13 eV/atom above the bulk: interlayer binding plus the
  PBE monolayer's different geometry).
- Ga, In (GFN2-xTB): alpha-Ga (Cmce) and body-centred tetragonal In (I4/mmm), the ground states, at
  experimental geometries, computed like the bcc metals (mean over three cells of 144-400 atoms with
  their spread, smearing extrapolated to zero). GFN1-xTB cannot compute either (nor InSe): its diffuse
  Ga 4d / In 5d shells make the periodic overlap matrix indefinite (:mod:`hts.oracle.xtb`), which is
  why GaSe and InSe are labelled with GFN2-xTB.
- S, Se (GFN2-xTB): the crown X8 rings as above (the X8-relaxed form is stored; the chain crystals are
  not recomputed with GFN2).

The numbers, the method, the settings, the tblite version and a description of every structure are
stored in ``hts/data/xtb_references.json`` (one entry per method), read by
:func:`load_elemental_references`. Regenerate with
``python -m hts.oracle.references --elements Mo S W Se B N C P`` and
``python -m hts.oracle.references --method GFN2-xTB --elements S Se Ga In`` (the GFN1 metals take
10-30 minutes on 2 cores with the fast BLAS; graphite and the GFN2 metals about as long each).
Computing elements adds or replaces them in the file and leaves the others as they are; the settings
must match the stored ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.errors import OracleError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

    from hts.oracle.xtb import XTBOracle

log = logging.getLogger(__name__)

REFERENCES_RESOURCE = "xtb_references.json"
MOLECULE_BOX = 20.0  # Angstrom
METAL_SMEARING_K = 2000.0
# Supercells whose Gamma-only energies are averaged for bcc metals (kind, size): 250, 256 and 216 atoms.
BCC_CELLS: tuple[tuple[str, int], ...] = (("conventional", 5), ("fcc-shaped", 4), ("primitive", 6))
BCC_SCAN_SUPERCELL = 3  # conventional cells per axis for the lattice-constant scan (54 atoms)
# Experimental lattice constants (Angstrom), the starting points of the scans.
BCC_LATTICE = {"Mo": 3.147, "W": 3.165, "Cr": 2.91, "V": 3.03, "Nb": 3.30, "Ta": 3.30}
# Trigonal Se (P3_121): a, c (Angstrom) and the x of Wyckoff 3a (Cherin & Unger 1967).
TRIGONAL_SE = (4.366, 4.954, 0.2254)
# Crown X8 rings: bond length (Angstrom) and bond angle (degrees), experimental.
CROWN_RING = {"S": (2.05, 108.0), "Se": (2.34, 105.7)}
# Diatomic molecules: experimental bond length (Angstrom; N2: Huber & Herzberg, r_e = 1.0977 A).
DIATOMIC_BOND = {"N": 1.0977}


@dataclass(frozen=True)
class Crystal:
    """An elemental crystal at its experimental geometry (room temperature unless stated): its space group,
    its lattice (the pymatgen ``Lattice`` constructor and its parameters, Angstrom) and the Wyckoff sites
    of its conventional cell."""

    element: str
    group: str
    lattice: str
    params: tuple[float, ...]
    sites: list[list[float]]


CRYSTALS: dict[str, Crystal] = {
    # alpha-rhombohedral boron, B12 icosahedra (Will & Kiefer, Z. Anorg. Allg. Chem. 627, 2100 (2001)):
    # bonds 1.67 A between icosahedra, 1.75-1.81 A inside, 2.02 A three-centre.
    "alpha-B12": Crystal(
        "B", "R-3m", "hexagonal", (4.9179, 12.5805), [[0.11886, 0.88114, 0.89133], [0.19686, 0.80314, 0.02432]]
    ),
    # graphite, Bernal AB stacking (a = 2.464 A, c = 6.711 A): C-C 1.423 A, layers 3.355 A apart.
    "graphite": Crystal("C", "P6_3/mmc", "hexagonal", (2.464, 6.711), [[0.0, 0.0, 0.25], [1 / 3, 2 / 3, 0.25]]),
    # black phosphorus, orthorhombic Cmce (Brown & Rundqvist, Acta Cryst. 19, 684 (1965)): P-P 2.224 and
    # 2.244 A; its layer is the P host (phosphorene).
    "black-P": Crystal("P", "Cmce", "orthorhombic", (3.3136, 10.478, 4.3763), [[0.0, 0.10168, 0.08056]]),
    # alpha-Ga, Cmce (Sharma & Donohue, Z. Kristallogr. 117, 293 (1962)): the Ga2 pair 2.48 A, then 2.69-2.79 A.
    "alpha-Ga": Crystal("Ga", "Cmce", "orthorhombic", (4.5197, 7.6633, 4.5260), [[0.0, 0.1549, 0.0810]]),
    # indium, body-centred tetragonal I4/mmm (a = 3.2523 A, c = 4.9461 A): 4 neighbours at 3.25 A, 8 at 3.38 A.
    "bct-In": Crystal("In", "I4/mmm", "tetragonal", (3.2523, 4.9461), [[0.0, 0.0, 0.0]]),
}


@dataclass
class ReferenceEntry:
    """One element's reference: energy per atom (eV), the form chosen, and how it was obtained."""

    element: str
    energy_per_atom: float
    form: str
    description: str
    n_atoms: int
    candidates: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


# -- structures ------------------------------------------------------------------------------------
def bcc_structure(element: str, a: float, n: int, kind: str = "conventional") -> Structure:
    """bcc supercell of lattice constant ``a``.

    ``kind``: ``"conventional"`` (the cubic cell repeated ``n x n x n``, 2 n^3 atoms), ``"primitive"``
    (the rhombohedral primitive cell repeated, n^3 atoms) or ``"fcc-shaped"`` (superlattice vectors
    ``n a (0,1,1)``... , 4 n^3 atoms: the most isotropic Gamma-only sampling per atom).
    """
    from pymatgen.core import Lattice, Structure

    prim = np.array([[-1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]) * (a / 2)
    targets = {
        "conventional": np.eye(3) * a * n,
        "fcc-shaped": np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]) * a * n,
        "primitive": prim * n,
    }
    if kind not in targets:
        raise OracleError(f"unknown bcc supercell kind {kind!r}; choose one of {', '.join(targets)}")
    matrix = np.rint(targets[kind] @ np.linalg.inv(prim)).astype(int)
    s = Structure(Lattice(prim), [element], np.zeros((1, 3)))
    s.make_supercell(matrix)
    return s


def crown_ring(element: str, box: float = MOLECULE_BOX) -> Structure:
    """X8 crown ring (D4d) from its bond length and angle, centred in a cubic box."""
    from pymatgen.core import Lattice, Structure

    d, angle = CROWN_RING[element]
    d13 = d * math.sqrt(2.0 * (1.0 - math.cos(math.radians(angle))))  # 1-3 distance, same z
    radius = d13 / math.sqrt(2.0)
    h = math.sqrt(max(d * d - (2.0 * radius * math.sin(math.pi / 8)) ** 2, 0.0))
    coords = [
        [radius * math.cos(k * math.pi / 4), radius * math.sin(k * math.pi / 4), (h / 2) * (-1) ** k] for k in range(8)
    ]
    centre = np.array([box / 2] * 3)
    return Structure(Lattice.cubic(box), [element] * 8, np.array(coords) + centre, coords_are_cartesian=True)


def trigonal_chains(element: str, n: int, a: float | None = None, c: float | None = None) -> Structure:
    """Trigonal Se-type helical-chain crystal (P3_121, 3 atoms per cell) repeated ``n x n x n``."""
    from pymatgen.core import Lattice, Structure

    a0, c0, x = TRIGONAL_SE
    s = Structure(
        Lattice.hexagonal(a or a0, c or c0),
        [element] * 3,
        [[x, 0.0, 1.0 / 3.0], [0.0, x, 2.0 / 3.0], [-x, -x, 0.0]],
    )
    s.make_supercell([n, n, n])
    return s


def diatomic(element: str, box: float = MOLECULE_BOX) -> Structure:
    """X2 molecule at its experimental bond length (``DIATOMIC_BOND``), centred in a cubic box."""
    from pymatgen.core import Lattice, Structure

    d = DIATOMIC_BOND[element]
    centre = np.array([box / 2] * 3)
    coords = np.array([[0.0, 0.0, -d / 2], [0.0, 0.0, d / 2]]) + centre
    return Structure(Lattice.cubic(box), [element] * 2, coords, coords_are_cartesian=True)


def crystal(form: str) -> Structure:
    """Conventional cell of an elemental crystal of ``CRYSTALS`` at its experimental geometry."""
    from pymatgen.core import Lattice, Structure

    spec = CRYSTALS[form]
    lattice = getattr(Lattice, spec.lattice)(*spec.params)
    return Structure.from_spacegroup(spec.group, lattice, [spec.element] * len(spec.sites), spec.sites)


def graphene(a: float = 2.464, vacuum: float = 20.0) -> Structure:
    """Graphene (the graphite layer at graphite's a) with ``vacuum`` along c."""
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.hexagonal(a, vacuum), ["C", "C"], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.5]])


# -- relaxation ------------------------------------------------------------------------------------
def relax(
    structure: Structure,
    oracle: XTBOracle,
    relax_cell: bool = False,
    gtol: float = 0.01,
    max_steps: int = 200,
) -> tuple[Structure, float]:
    """Relax positions (and the cell if asked) with L-BFGS on the oracle's energy and gradient.

    The cell is parametrised as ``L = L0 D`` (``D`` a general 3x3 deformation, scaled by the cell's
    length so its gradient is in eV/Angstrom like the forces); ``dE/dD = D^-T virial``. Returns the
    relaxed structure and its energy (eV). ``gtol`` is in eV/Angstrom.
    """
    from pymatgen.core import Lattice, Structure
    from scipy.optimize import minimize

    lat0 = np.array(structure.lattice.matrix)
    frac0 = np.array(structure.frac_coords)
    u0 = frac0 @ lat0  # Cartesian positions in the reference cell
    n = len(structure)
    scale = float(np.cbrt(abs(np.linalg.det(lat0))))
    species = [site.specie for site in structure]

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = x[: 3 * n].reshape(n, 3)
        d = x[3 * n :].reshape(3, 3) / scale if relax_cell else np.eye(3)
        return u, d

    def build(x: np.ndarray) -> Structure:
        u, d = unpack(x)
        lattice = lat0 @ d
        cart = u @ d  # r = f L0 D = u D
        return Structure(Lattice(lattice), species, cart, coords_are_cartesian=True)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        _, d = unpack(x)
        energy, grad, virial = oracle.energy_gradient(build(x))
        g_u = grad @ d.T
        if not relax_cell:
            return energy, g_u.ravel()
        g_d = np.linalg.inv(d).T @ virial / scale
        return energy, np.concatenate([g_u.ravel(), g_d.ravel()])

    x0 = u0.ravel() if not relax_cell else np.concatenate([u0.ravel(), (np.eye(3) * scale).ravel()])
    opt = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"gtol": gtol, "maxiter": max_steps, "ftol": 1e-12})
    if not opt.success:
        log.warning("relaxation of %s stopped: %s", structure.composition.reduced_formula, opt.message)
    return build(opt.x), float(opt.fun)


def _parabola_minimum(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    """Minimum (x, y) of the least-squares parabola through the points."""
    c2, c1, c0 = np.polyfit(xs, ys, 2)
    if c2 <= 0:
        raise OracleError("the energy scan has no minimum; widen the scan")
    x = -c1 / (2 * c2)
    return float(x), float(c0 + c1 * x + c2 * x * x)


def zero_smearing_energy(structure: Structure, oracle: XTBOracle) -> tuple[float, float]:
    """(free energy F, extrapolated E0 = F - TS/2), both eV/atom, for a (metallic) structure."""
    from hts.oracle.xtb import HARTREE_TO_EV, KB_HARTREE_PER_K, _channel_occupations

    res, library, attempt, _ = oracle._run(structure)
    free = float(res.get("energy")) * HARTREE_TO_EV
    occ = np.clip(_channel_occupations(res, library), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(occ > 0, occ * np.log(occ), 0.0) + np.where(occ < 1, (1 - occ) * np.log(1 - occ), 0.0)
    ts = attempt.electronic_temperature_K * KB_HARTREE_PER_K * HARTREE_TO_EV * float(terms.sum())  # = -TS
    n = len(structure)
    return free / n, (free - ts / 2) / n


# -- per-element recipes ---------------------------------------------------------------------------
def _metal_oracle(oracle: XTBOracle) -> XTBOracle:
    from hts.oracle.xtb import XTBOracle

    return XTBOracle(
        method=oracle.method,
        electronic_temperature_K=max(oracle.electronic_temperature_K, METAL_SMEARING_K),
        max_iterations=oracle.max_iterations,
        damping=oracle.damping,
        accuracy=oracle.accuracy,
        fast_blas=oracle.fast_blas,
    )


def bcc_reference(element: str, oracle: XTBOracle, cells: Iterable[tuple[str, int]] = BCC_CELLS) -> ReferenceEntry:
    """bcc metal at the experimental lattice constant: mean E0 over several large Gamma-only cells.

    A 5-point E(a) scan (+-3 %, 54-atom cell) is stored with it, to show where GFN's own minimum lies.
    """
    metal = _metal_oracle(oracle)
    a_exp = BCC_LATTICE[element]
    grid = a_exp * np.linspace(0.97, 1.03, 5)
    scan = [zero_smearing_energy(bcc_structure(element, a, BCC_SCAN_SUPERCELL), metal)[1] for a in grid]
    a_fit, _ = _parabola_minimum(grid, np.array(scan))
    per_cell: dict[str, dict[str, float]] = {}
    for kind, n in cells:
        s = bcc_structure(element, a_exp, n, kind)
        free, e0 = zero_smearing_energy(s, metal)
        per_cell[f"{kind} {n}"] = {"n_atoms": len(s), "free_energy_per_atom": free, "e0_per_atom": e0}
    e0s = np.array([v["e0_per_atom"] for v in per_cell.values()])
    sizes = ", ".join(f"{k} ({int(v['n_atoms'])} atoms)" for k, v in per_cell.items())
    inside = grid[0] <= a_fit <= grid[-1]
    return ReferenceEntry(
        element=element,
        energy_per_atom=float(e0s.mean()),
        form="bcc",
        description=(
            f"bcc at the experimental a = {a_exp} A, unrelaxed; energy = mean over the Gamma-only supercells "
            f"{sizes}; Fermi smearing {metal.electronic_temperature_K:.0f} K extrapolated to zero, E0 = F - TS/2"
        ),
        n_atoms=max(int(v["n_atoms"]) for v in per_cell.values()),
        candidates={"bcc": float(e0s.mean())},
        details={
            "lattice_constant": a_exp,
            "scan_lattice_constants": grid.tolist(),
            "scan_energies_per_atom": scan,
            "scan_parabola_minimum": a_fit if inside else None,
            "scan_note": "minimum inside the scan" if inside else "E(a) has no minimum within +-3 % of experiment",
            "cells": per_cell,
            "cell_spread_per_atom": float(e0s.max() - e0s.min()),
            "smearing_K": metal.electronic_temperature_K,
        },
    )


def molecule_reference(element: str, oracle: XTBOracle, relaxed: bool = False) -> tuple[float, Structure]:
    """X8 crown ring in a box (experimental geometry, or relaxed): energy per atom and the structure."""
    ring = crown_ring(element)
    if not relaxed:
        return oracle.compute(ring).energy_per_atom, ring
    ring, energy = relax(ring, oracle)
    return energy / len(ring), ring


def chain_reference(element: str, oracle: XTBOracle, n: int = 3) -> tuple[float, Structure]:
    """Relaxed (positions and cell) trigonal helical-chain crystal: energy per atom and structure."""
    relaxed, energy = relax(trigonal_chains(element, n), oracle, relax_cell=True)
    return energy / len(relaxed), relaxed


def chalcogen_reference(
    element: str, oracle: XTBOracle, chosen: str = "X8", also: Iterable[str] = ()
) -> ReferenceEntry:
    """Reference of a chalcogen in the ``chosen`` form; the forms in ``also`` are computed for the record.

    Forms: ``"X8"`` (crown molecule in a box, experimental geometry), ``"X8-relaxed"`` and ``"chains"``
    (trigonal helical-chain crystal, positions and cell relaxed).
    """
    candidates: dict[str, float] = {}
    described: dict[str, str] = {}
    sizes: dict[str, int] = {}
    details: dict[str, Any] = {}
    for form in dict.fromkeys([chosen, *also]):
        if form in ("X8", "X8-relaxed"):
            e, s = molecule_reference(element, oracle, relaxed=form == "X8-relaxed")
            how = "relaxed" if form == "X8-relaxed" else "experimental geometry (D4d, bond and angle)"
            described[form] = (
                f"{element}8 crown ring, {how}, in a {MOLECULE_BOX:.0f} A cubic box; bond {_nearest_distances(s):.3f} A"
            )
        elif form == "chains":
            e, s = chain_reference(element, oracle)
            a, c = s.lattice.a / 3, s.lattice.c / 3
            described[form] = (
                f"trigonal {element} (P3_121 helical chains), positions and cell relaxed on a 3x3x3 supercell "
                f"({len(s)} atoms): a = {a:.3f} A, c = {c:.3f} A, bond {_nearest_distances(s):.3f} A"
            )
            details["chains_lattice"] = {"a": a, "c": c}
        else:
            raise OracleError(f"unknown reference form {form!r} for {element}")
        candidates[form] = e
        sizes[form] = len(s)
    return ReferenceEntry(
        element=element,
        energy_per_atom=candidates[chosen],
        form=chosen,
        description=described[chosen],
        n_atoms=sizes[chosen],
        candidates=candidates,
        details={**details, "forms": described},
    )


def crystal_reference(
    form: str,
    oracle: XTBOracle,
    cells: Iterable[tuple[int, int, int]],
    metal: bool,
    candidates: dict[str, Callable[[XTBOracle], tuple[float, str]]] | None = None,
) -> ReferenceEntry:
    """Elemental crystal ``form`` (:data:`CRYSTALS`) at its experimental geometry, unrelaxed.

    ``cells``: supercells of the conventional cell. A metal (or semimetal) is computed like the bcc
    metals: Fermi smearing at ``METAL_SMEARING_K`` extrapolated to zero, energy = the mean over the
    cells, their spread stored. An insulator takes the largest cell at the oracle's temperature; the
    change from the second largest is stored as its convergence. ``candidates`` are other forms,
    computed for the record: name -> function returning (energy per atom, description).
    """
    element = CRYSTALS[form].element
    calc = _metal_oracle(oracle) if metal else oracle
    per_cell: dict[str, dict[str, float]] = {}
    for n in cells:
        s = crystal(form)
        s.make_supercell(list(n))
        label = "x".join(map(str, n))
        if metal:
            free, e0 = zero_smearing_energy(s, calc)
            per_cell[label] = {"n_atoms": len(s), "free_energy_per_atom": free, "e0_per_atom": e0}
        else:
            res = calc.compute(s)
            if not res.converged:
                raise OracleError(f"SCF failed for {form} {label} ({len(s)} atoms)")
            per_cell[label] = {
                "n_atoms": len(s),
                "energy_per_atom": res.energy_per_atom,
                "homo_lumo_gap": res.homo_lumo_gap,
            }
        log.info("%s %s (%d atoms): %s", form, label, len(s), per_cell[label])
    key = "e0_per_atom" if metal else "energy_per_atom"
    energies = np.array([v[key] for v in per_cell.values()])
    sizes = ", ".join(f"{k} ({int(v['n_atoms'])} atoms)" for k, v in per_cell.items())
    details: dict[str, Any] = {"cells": per_cell, "conventional_cell": _cell_summary(crystal(form))}
    if metal:
        value = float(energies.mean())
        how = (
            f"energy = mean over the Gamma-only supercells {sizes}; Fermi smearing "
            f"{calc.electronic_temperature_K:.0f} K extrapolated to zero, E0 = F - TS/2"
        )
        details.update(
            cell_spread_per_atom=float(energies.max() - energies.min()), smearing_K=calc.electronic_temperature_K
        )
    else:
        order = np.argsort([v["n_atoms"] for v in per_cell.values()])
        value = float(energies[order[-1]])
        how = f"energy of the largest Gamma-only supercell of {sizes}"
        if len(order) > 1:
            details["convergence_per_atom"] = float(energies[order[-1]] - energies[order[-2]])
    found = {form: value}
    forms = {form: f"{form} at its experimental geometry, unrelaxed; {how}"}
    for name, fn in (candidates or {}).items():
        found[name], forms[name] = fn(oracle)
    details["forms"] = forms
    return ReferenceEntry(
        element=element,
        energy_per_atom=value,
        form=form,
        description=forms[form],
        n_atoms=max(int(v["n_atoms"]) for v in per_cell.values()),
        candidates=found,
        details=details,
    )


def diatomic_reference(element: str, oracle: XTBOracle) -> ReferenceEntry:
    """X2 molecule in a box at the experimental bond length; relaxed and 30 A-box forms for the record."""
    mol = diatomic(element)
    e_exp = oracle.compute(mol).energy_per_atom
    relaxed, e_rel = relax(mol, oracle)
    e_box = oracle.compute(diatomic(element, box=30.0)).energy_per_atom
    d = DIATOMIC_BOND[element]
    forms = {
        f"{element}2": f"{element}2 molecule, experimental bond {d:.4f} A, in a {MOLECULE_BOX:.0f} A cubic box",
        f"{element}2-relaxed": f"{element}2 relaxed: bond {_nearest_distances(relaxed):.4f} A",
        f"{element}2-box30": f"{element}2 at the experimental bond in a 30 A box (images check)",
    }
    return ReferenceEntry(
        element=element,
        energy_per_atom=e_exp,
        form=f"{element}2",
        description=forms[f"{element}2"],
        n_atoms=2,
        candidates={f"{element}2": e_exp, f"{element}2-relaxed": e_rel / 2, f"{element}2-box30": e_box},
        details={"forms": forms, "box_check_per_atom": e_box - e_exp},
    )


def _graphene_candidate(oracle: XTBOracle) -> tuple[float, str]:
    s = graphene()
    s.make_supercell([9, 9, 1])
    _, e0 = zero_smearing_energy(s, _metal_oracle(oracle))
    return e0, "graphene 9x9 (162 atoms) at graphite's a, 20 A vacuum; smearing as for graphite"


def _phosphorene_candidate(oracle: XTBOracle) -> tuple[float, str]:
    from hts.hosts import get_host

    res = oracle.compute(get_host("P").pristine_structure())
    return res.energy_per_atom, "phosphorene: the P host's pristine 6x6 cell (2DMD geometry, 144 atoms)"


def _cell_summary(structure: Structure) -> dict[str, Any]:
    lat = structure.lattice
    return {
        "abc": [round(x, 5) for x in lat.abc],
        "angles": [round(x, 4) for x in lat.angles],
        "n_atoms": len(structure),
        "nearest_neighbour": round(_nearest_distances(structure), 4),
    }


def _nearest_distances(structure: Structure) -> float:
    dm = np.array(structure.distance_matrix)
    np.fill_diagonal(dm, np.inf)
    return float(np.median(dm.min(axis=1)))


def _chalcogen_forms(oracle: XTBOracle) -> list[str]:
    # the chain crystals are relaxed with the cell: kept for the GFN1 record only (GFN2's SCF is slower)
    return ["X8-relaxed", "chains"] if oracle.method == "GFN1-xTB" else ["X8-relaxed"]


RECIPES: dict[str, Callable[[XTBOracle], ReferenceEntry]] = {
    "Mo": lambda o: bcc_reference("Mo", o),
    "W": lambda o: bcc_reference("W", o),
    "S": lambda o: chalcogen_reference("S", o, "X8", also=_chalcogen_forms(o)),
    "Se": lambda o: chalcogen_reference("Se", o, "X8", also=_chalcogen_forms(o)),
    "N": lambda o: diatomic_reference("N", o),
    "B": lambda o: crystal_reference("alpha-B12", o, [(2, 2, 1), (3, 3, 1), (3, 3, 2)], metal=False),
    "C": lambda o: crystal_reference(
        "graphite", o, [(8, 8, 2), (9, 9, 2), (10, 10, 2)], metal=True, candidates={"graphene": _graphene_candidate}
    ),
    "P": lambda o: crystal_reference(
        "black-P", o, [(4, 2, 3), (5, 2, 4), (6, 2, 5)], metal=False, candidates={"phosphorene": _phosphorene_candidate}
    ),
    "Ga": lambda o: crystal_reference("alpha-Ga", o, [(3, 2, 3), (4, 2, 4), (4, 3, 4)], metal=True),
    "In": lambda o: crystal_reference("bct-In", o, [(5, 5, 3), (6, 6, 4), (7, 7, 4)], metal=True),
}


# -- public API ------------------------------------------------------------------------------------
def compute_reference_entries(elements: Iterable[str], oracle: XTBOracle) -> dict[str, ReferenceEntry]:
    """Full :class:`ReferenceEntry` records (energies and provenance) for ``elements``."""
    out: dict[str, ReferenceEntry] = {}
    for el in elements:
        if el not in RECIPES:
            raise OracleError(f"no reference recipe for {el}; available: {', '.join(RECIPES)}")
        t0 = time.perf_counter()
        entry = RECIPES[el](oracle)
        entry.details["wall_time_s"] = round(time.perf_counter() - t0, 1)
        log.info("%s: %.5f eV/atom (%s) in %.0f s", el, entry.energy_per_atom, entry.form, entry.details["wall_time_s"])
        out[el] = entry
    return out


def compute_elemental_references(elements: Iterable[str], oracle: XTBOracle) -> dict[str, float]:
    """Chemical potentials (eV/atom) of ``elements`` at ``oracle``'s level of theory."""
    return {el: e.energy_per_atom for el, e in compute_reference_entries(elements, oracle).items()}


def references_document(entries: dict[str, ReferenceEntry], oracle: XTBOracle) -> dict[str, Any]:
    """The JSON entry of one method: chemical potentials plus settings and structure descriptions."""
    return {
        "chemical_potentials": {el: e.energy_per_atom for el, e in entries.items()},
        "units": "eV/atom",
        "method": oracle.method,
        "settings": oracle.settings(),
        "tblite_version": oracle.settings()["tblite_version"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "structures": {el: asdict(e) for el, e in entries.items()},
    }


def write_references(path: Path, entries: dict[str, ReferenceEntry], oracle: XTBOracle) -> dict[str, Any]:
    """Merge one method's references into the JSON file at ``path`` (other methods are kept)."""
    data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    methods = data.setdefault("methods", {})
    doc = references_document(entries, oracle)
    old = methods.get(oracle.method, {})
    if old:  # keep elements computed earlier with the same settings
        before = {k: v for k, v in old.get("settings", {}).items() if k != "tblite_version"}
        now = {k: v for k, v in doc["settings"].items() if k != "tblite_version"}
        if before and before != now:
            raise OracleError(
                f"{path} holds {oracle.method} references computed with {before}; this run uses {now}. "
                "Recompute every element with one setting (or write to another --out)."
            )
        doc["chemical_potentials"] = {**old.get("chemical_potentials", {}), **doc["chemical_potentials"]}
        doc["structures"] = {**old.get("structures", {}), **doc["structures"]}
        doc["created"] = old.get("created", doc["created"])
    for el in entries:
        doc["structures"][el]["details"]["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    methods[oracle.method] = doc
    data["description"] = (
        "Elemental chemical potentials (eV/atom) at the xTB oracle's level of theory; "
        "see hts/oracle/references.py for the choices."
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)  # atomic: labelling jobs read this file while it is rewritten
    return data


def load_elemental_references(method: str = "GFN1-xTB", path: Path | None = None) -> dict[str, float]:
    """Stored chemical potentials (eV/atom) for ``method`` (from ``hts/data/xtb_references.json``)."""
    if path is None:
        text = resources.files("hts.data").joinpath(REFERENCES_RESOURCE).read_text()
    else:
        text = Path(path).read_text()
    data = json.loads(text)
    entry = data.get("methods", {}).get(method)
    if entry is None:
        raise OracleError(
            f"no stored elemental references for {method}; compute them with "
            f"'python -m hts.oracle.references --method {method}'"
        )
    return {k: float(v) for k, v in entry["chemical_potentials"].items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m hts.oracle.references``: compute and store elemental references."""
    from hts.oracle.xtb import XTBOracle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", nargs="+", default=["Mo", "S", "W", "Se"], help=f"any of {', '.join(RECIPES)}")
    parser.add_argument("--method", default="GFN1-xTB")
    parser.add_argument("--temperature", type=float, default=300.0, help="electronic temperature (K)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: hts/data/xtb_references.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    oracle = XTBOracle(method=args.method, electronic_temperature_K=args.temperature)
    out = args.out or Path(str(resources.files("hts.data").joinpath(REFERENCES_RESOURCE)))
    entries = compute_reference_entries(args.elements, oracle)
    write_references(out, entries, oracle)
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
