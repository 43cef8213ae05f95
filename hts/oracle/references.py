"""Elemental chemical potentials at the oracle's level of theory, for formation energies.

``formation_energy = E_defect - E_pristine + sum(mu_removed) - sum(mu_added)`` needs each element's
energy per atom in its reference state, computed with the same method and settings as the defects
(2DMD used PBE energies of the Materials Project ground states). Choices, all at the oracle's
settings (GFN1-xTB, 300 K, 3D periodic, Gamma point):

- Mo, W: bcc metal (the ground state). The lattice constant is the minimum of a parabola through
  E(a) on a 5-point scan (a 3x3x3 conventional cell, 54 atoms, is enough for the curvature); the
  energy is then computed at that lattice constant on a large conventional supercell, because a
  metal sampled at Gamma only converges slowly with cell size (see ``BCC_SUPERCELL``). To tame that
  convergence the metals use Fermi smearing at ``METAL_SMEARING_K`` and Gillan's zero-smearing
  extrapolation ``E0 = F - TS/2`` (tblite's energy is the Mermin free energy ``F = E - TS``); at 300 K
  the smearing correction of a metal is a few meV/atom, below the cell-size error.
- S: the S8 crown molecule (D4d), relaxed, in a cubic box (the ring is the building block of
  orthorhombic alpha-S, the ground state; the molecular crystal's cohesive energy, ~0.13 eV/atom
  experimentally, is not included: the isolated molecule is the "simplest justifiable form").
- Se: the lower of trigonal Se (helical chains, P3_121, the ground state; positions and cell
  relaxed) and the Se8 crown molecule in a box; the forms computed and their energies are stored.

Molecules are relaxed with the oracle's analytical gradients (L-BFGS) and their periodic box is
large enough (``MOLECULE_BOX``) that images do not interact. The numbers, the method, the settings,
the tblite version and a description of every structure are stored in
``hts/data/xtb_references.json`` (one entry per method), which :func:`load_elemental_references`
reads. Regenerate with ``python -m hts.oracle.references --elements Mo W S Se``.
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
BCC_SUPERCELL = 6  # conventional cells per axis for the final bcc energy (432 atoms)
BCC_SCAN_SUPERCELL = 3
# Experimental lattice constants (Angstrom), the starting points of the scans.
BCC_LATTICE = {"Mo": 3.147, "W": 3.165, "Cr": 2.91, "V": 3.03, "Nb": 3.30, "Ta": 3.30}
# Trigonal Se (P3_121): a, c (Angstrom) and the x of Wyckoff 3a (Cherin & Unger 1967).
TRIGONAL_SE = (4.366, 4.954, 0.2254)
# Crown X8 rings: bond length (Angstrom) and bond angle (degrees), experimental.
CROWN_RING = {"S": (2.05, 108.0), "Se": (2.34, 105.7)}


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
def bcc_structure(element: str, a: float, n: int) -> Structure:
    """Conventional bcc cell of lattice constant ``a`` repeated ``n x n x n`` (2 n^3 atoms)."""
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(a), [element, element], np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]))
    s.make_supercell([n, n, n])
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


def bcc_reference(element: str, oracle: XTBOracle, supercell: int = BCC_SUPERCELL) -> ReferenceEntry:
    """bcc metal: E(a) scan on a small cell, then E0 on a large cell at the minimum."""
    metal = _metal_oracle(oracle)
    a_exp = BCC_LATTICE[element]
    grid = a_exp * np.linspace(0.97, 1.03, 5)
    scan = [zero_smearing_energy(bcc_structure(element, a, BCC_SCAN_SUPERCELL), metal)[1] for a in grid]
    a_min, _ = _parabola_minimum(grid, np.array(scan))
    final = bcc_structure(element, a_min, supercell)
    free, e0 = zero_smearing_energy(final, metal)
    return ReferenceEntry(
        element=element,
        energy_per_atom=e0,
        form="bcc",
        description=(
            f"bcc, a = {a_min:.4f} A (GFN minimum of a 5-point scan on the {BCC_SCAN_SUPERCELL}^3 conventional "
            f"cell; experiment {a_exp} A), {supercell}x{supercell}x{supercell} conventional supercell "
            f"({len(final)} atoms), Fermi smearing {metal.electronic_temperature_K:.0f} K, E0 = F - TS/2"
        ),
        n_atoms=len(final),
        candidates={"bcc": e0},
        details={
            "lattice_constant": a_min,
            "scan_lattice_constants": grid.tolist(),
            "scan_energies_per_atom": scan,
            "free_energy_per_atom": free,
            "smearing_K": metal.electronic_temperature_K,
        },
    )


def molecule_reference(element: str, oracle: XTBOracle) -> tuple[float, Structure]:
    """Relaxed X8 crown ring in a box: energy per atom and the structure."""
    relaxed, energy = relax(crown_ring(element), oracle)
    return energy / len(relaxed), relaxed


def chain_reference(element: str, oracle: XTBOracle, n: int = 3) -> tuple[float, Structure]:
    """Relaxed (positions and cell) trigonal helical-chain crystal: energy per atom and structure."""
    relaxed, energy = relax(trigonal_chains(element, n), oracle, relax_cell=True)
    return energy / len(relaxed), relaxed


def chalcogen_reference(
    element: str, oracle: XTBOracle, chosen: str = "X8", also: Iterable[str] = ()
) -> ReferenceEntry:
    """Reference of a chalcogen in the ``chosen`` form; the forms in ``also`` are computed for the record.

    Forms: ``"X8"`` (crown molecule in a box) and ``"chains"`` (trigonal helical-chain crystal).
    """
    candidates: dict[str, float] = {}
    described: dict[str, str] = {}
    sizes: dict[str, int] = {}
    details: dict[str, Any] = {}
    for form in dict.fromkeys([chosen, *also]):
        if form == "X8":
            e, s = molecule_reference(element, oracle)
            described[form] = (
                f"{element}8 crown ring (D4d start), relaxed, in a {MOLECULE_BOX:.0f} A cubic box; "
                f"bond {_nearest_distances(s):.3f} A"
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


def _nearest_distances(structure: Structure) -> float:
    dm = np.array(structure.distance_matrix)
    np.fill_diagonal(dm, np.inf)
    return float(np.median(dm.min(axis=1)))


RECIPES: dict[str, Callable[[XTBOracle], ReferenceEntry]] = {
    "Mo": lambda o: bcc_reference("Mo", o),
    "W": lambda o: bcc_reference("W", o),
    "S": lambda o: chalcogen_reference("S", o, "X8", also=["chains"]),
    "Se": lambda o: chalcogen_reference("Se", o, "X8", also=["chains"]),
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
        doc["chemical_potentials"] = {**old.get("chemical_potentials", {}), **doc["chemical_potentials"]}
        doc["structures"] = {**old.get("structures", {}), **doc["structures"]}
    methods[oracle.method] = doc
    data["description"] = (
        "Elemental chemical potentials (eV/atom) at the xTB oracle's level of theory; "
        "see hts/oracle/references.py for the choices."
    )
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
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
    parser.add_argument("--elements", nargs="+", default=["Mo", "S", "W", "Se"])
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
