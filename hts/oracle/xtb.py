"""GFN1-xTB (or GFN2-xTB) single points through tblite's Python API (no ASE).

The structure is computed as given: 3D periodic (the slab with its vacuum), Gamma point only,
unrelaxed. Caveat of Gamma-only supercells of hexagonal hosts: MoS2's band edges are at K, which
folds onto Gamma only when the supercell size is a multiple of 3, so the gap depends on the supercell
(GFN1, 2DMD cell: 1.63 eV at 3x3 and 6x6, 2.07 eV at 4x4, 1.78 eV at 8x8). It is a property of the
label, to be compared within one supercell and one method.

Definitions (eV, xTB's own energy scale):

- ``homo``/``lumo`` by Aufbau on the sorted orbital energies with the integer electron count ``N``
  (the rounded sum of the occupations): each restricted level holds two electrons, ``homo`` is the
  level that holds the N-th (last) electron, ``lumo`` the next level above it, so
  ``homo_lumo_gap = lumo - homo`` is never negative. For an even ``N`` with a clean gap this is the
  usual HOMO/LUMO. For an odd ``N`` (restricted open shell: the singly occupied level, e.g. C on B in
  h-BN) ``homo`` is that level and ``lumo`` the level above it. With partly filled (near-)degenerate
  defect levels (e.g. a vacancy in black phosphorus: six fractionally occupied orbitals within a few
  meV) both fall inside that manifold and the gap is its splitting, ~0. Alternatives rejected: the
  previous rule (a spin orbital is occupied above half filling, HOMO/LUMO the highest occupied / lowest
  unoccupied over both spin channels) gives 0 for every odd ``N`` and can give a negative gap when the
  two channels' smeared occupations cross inside a near-degenerate manifold (-0.005 eV on a defected
  P 6x6 cell); Aufbau over spin orbitals gives 0 for every odd ``N`` too. The occupation-based edges
  are still what fixes the Fermi level below. Spin-polarised orbital energies (shape ``(2, norb)``)
  are filled as spin orbitals, one electron each.
- ``n_fractional``: orbitals with a channel occupation in (0.005, 0.995), i.e. 0.01 < occ < 1.99 on
  tblite's summed 0..2 scale (partly filled defect levels); the closer ``homo``/``lumo`` sit to them,
  the less a small gap means.
- ``fermi_level``: tblite does not expose its Fermi level. Without fractional occupations it is the
  midpoint of the highest spin orbital occupied above half filling and the lowest one below it (the
  mid-gap of a closed shell; the singly occupied level of an odd ``N``); with them, the chemical
  potential of Fermi-Dirac occupations at the electronic temperature that reproduces the electron
  count (pinned at the partly filled level), found by bisection.
- ``e_1``: the lowest orbital energy (2DMD's ``E_1``).
- ``frontier``: the ``N_FRONTIER`` orbitals nearest the Fermi level with their occupations per
  channel; :func:`edges_from_frontier` re-derives ``homo``/``lumo`` from them alone (orbitals below
  the window are doubly occupied, so the window's electron count fixes the Aufbau position), which is
  how :mod:`hts.labelling` recomputes stored labels without recomputing structures.

SCF: tblite's Broyden mixer with damping 0.2 (2-3x fewer iterations than tblite's 0.4 on defected
cells, same energies). On non-convergence the calculation is repeated with the ``retries`` ladder:
stronger damping first, then a higher electronic temperature (which smears defect levels, so the
temperature used is recorded). A structure that never converges gives status ``failed`` with NaN
properties; no exception is raised for it.

Cells GFN1-xTB cannot compute here: GFN1's In 5d shell (Slater exponent 0.663 / bohr, an unoccupied
shell at -3.65 eV) and, less so, its Ga 4d shell (0.713) are so diffuse that two In atoms still
overlap by 2e-4 at 21.0 A, where tblite cuts every integral off (40 bohr, fixed; the accuracy setting
does not move it). The Gamma-point overlap of a periodic cell is a sum over lattice images; truncated
there it is no longer a Gram matrix and, in cells dense in In, not positive definite, so LAPACK's
``sygvd`` fails: "(sygvd) failed to solve eigenvalue problem". Measured with tblite 0.8.0: a single
In atom per hexagonal cell of a = 4.10 A has overlap eigenvalues down to -9.8e-4 with tblite's
cutoff (+3.2e-4 when the images are summed to 40 A: near-singular even then); the InSe unit cell
-2.2e-3. InSe fails at every supercell (1x1 to 6x6), for c = 20-40 A, with OpenBLAS or the bundled
BLAS, and up to a 10 % larger lattice constant; bct In and alpha-Ga fail too; GaSe (Ga 3.82 A apart,
In substitutions included) does not. GFN2-xTB's In/Ga d shells are compact (1.05 / bohr): InSe, In
and Ga metal converge. Such failures raise :class:`OracleError` with this explanation; the hosts
that need it use GFN2-xTB (:attr:`hts.hosts.HostSpec.oracle_method`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hts.errors import OracleError
from hts.oracle.base import OracleResult, ScfStatus

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

HARTREE_TO_EV = 27.211386245988
BOHR_TO_ANGSTROM = 0.529177210903
KB_HARTREE_PER_K = 3.166808578545117e-6
METHODS = ("GFN1-xTB", "GFN2-xTB", "IPEA1-xTB")
OCCUPIED_THRESHOLD = 0.5  # per spin orbital
FRACTIONAL_TOL = 0.005  # per spin orbital: fractional if tol < occ < 1 - tol
N_FRONTIER = 16  # orbitals around the Fermi level kept with every result (OracleResult.frontier)
MAX_Z = 86  # GFN parametrisations cover H..Rn
OVERLAP_HINT = (
    " (the generalised eigensolver failed: the Gamma-point overlap matrix is not positive definite. "
    "GFN1-xTB's In 5d / Ga 4d shells are so diffuse that their overlaps are cut off at tblite's 40-bohr "
    "integral range while still ~1e-4, which happens in cells dense in In or Ga: InSe, In or Ga metal. "
    "Use GFN2-xTB for such cells; see hts.hosts.HostSpec.oracle_method)"
)


@dataclass(frozen=True)
class ScfAttempt:
    """SCF settings of one attempt: Broyden damping, electronic temperature (K), iteration limit."""

    damping: float
    electronic_temperature_K: float
    max_iterations: int


def default_retries(damping: float, electronic_temperature_K: float, max_iterations: int) -> tuple[ScfAttempt, ...]:
    """The retry ladder after a first failure: damping / 4 at twice the iterations, then also >= 1000 K."""
    strong = max(0.02, damping / 4)
    return (
        ScfAttempt(strong, electronic_temperature_K, 2 * max_iterations),
        ScfAttempt(strong, max(1000.0, 3 * electronic_temperature_K), 2 * max_iterations),
    )


class XTBOracle:
    """Single points with tblite (GFN1-xTB by default); satisfies :class:`hts.oracle.base.Oracle`.

    ``retries`` is the sequence of :class:`ScfAttempt` tried after the first attempt fails
    (``None``: :func:`default_retries`; ``()``: no retry). ``fast_blas`` loads OpenBLAS into the
    process before tblite is first imported (:mod:`hts.oracle.blas`).
    """

    def __init__(
        self,
        method: str = "GFN1-xTB",
        electronic_temperature_K: float = 300.0,
        max_iterations: int = 250,
        damping: float = 0.2,
        retries: Sequence[ScfAttempt] | None = None,
        accuracy: float = 1.0,
        charge: float = 0.0,
        fast_blas: bool = True,
    ) -> None:
        if method not in METHODS:
            raise OracleError(f"unknown xTB method {method!r}; choose one of {', '.join(METHODS)}")
        if electronic_temperature_K <= 0 or max_iterations < 1 or not 0 < damping <= 1:
            raise OracleError(
                "electronic_temperature_K must be > 0, max_iterations >= 1 and 0 < damping <= 1; got "
                f"{electronic_temperature_K}, {max_iterations}, {damping}"
            )
        self.method = method
        self.name = f"tblite:{method}"
        self.electronic_temperature_K = float(electronic_temperature_K)
        self.max_iterations = int(max_iterations)
        self.damping = float(damping)
        self.accuracy = float(accuracy)
        self.charge = float(charge)
        self.fast_blas = fast_blas
        first = ScfAttempt(self.damping, self.electronic_temperature_K, self.max_iterations)
        ladder = default_retries(damping, electronic_temperature_K, max_iterations) if retries is None else retries
        self.attempts: tuple[ScfAttempt, ...] = (first, *ladder)

    def __repr__(self) -> str:
        return (
            f"XTBOracle(method={self.method!r}, electronic_temperature_K={self.electronic_temperature_K}, "
            f"max_iterations={self.max_iterations}, damping={self.damping}, attempts={len(self.attempts)})"
        )

    def settings(self) -> dict[str, Any]:
        """The settings that determine the numbers (for provenance records)."""
        return {
            "method": self.method,
            "electronic_temperature_K": self.electronic_temperature_K,
            "max_iterations": self.max_iterations,
            "damping": self.damping,
            "accuracy": self.accuracy,
            "charge": self.charge,
            "retries": [vars(a) for a in self.attempts[1:]],
            "periodic": "3D, Gamma point",
            "tblite_version": tblite_version(),
        }

    # -- the calculation -------------------------------------------------------------------------
    def compute(self, structure: Structure) -> OracleResult:
        """Single point on ``structure`` (Angstrom, periodic cell as given)."""
        t0 = time.perf_counter()
        try:
            res, library, attempt, n = self._run(structure)
        except _ScfFailedError as exc:
            log.warning("SCF failed for %s after %d attempts (%s)", structure.composition.formula, exc.n, exc)
            return OracleResult.failed(
                self.method, len(structure), exc.n, time.perf_counter() - t0, self.attempts[-1].electronic_temperature_K
            )
        status: ScfStatus = "converged" if n == 1 else "converged_after_retry"
        return self._result(res, library, len(structure), attempt, status, n, time.perf_counter() - t0)

    def energy_gradient(self, structure: Structure) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy (eV), gradient (eV/Angstrom, ``(n, 3)``) and virial (eV, ``(3, 3)``, dE/d strain).

        For relaxations (:mod:`hts.oracle.references`); raises :class:`OracleError` if the SCF fails.
        """
        try:
            res, _, _, _ = self._run(structure)
        except _ScfFailedError as exc:
            raise OracleError(f"SCF failed for {structure.composition.formula} after {exc.n} attempts: {exc}") from None
        energy = float(res.get("energy")) * HARTREE_TO_EV
        gradient = np.asarray(res.get("gradient"), dtype=float) * (HARTREE_TO_EV / BOHR_TO_ANGSTROM)
        virial = np.asarray(res.get("virial"), dtype=float) * HARTREE_TO_EV
        return energy, gradient, virial

    def _run(self, structure: Structure) -> tuple[Any, Any, ScfAttempt, int]:
        """Converged tblite result, the library module, the attempt that converged and its number."""
        numbers, positions, lattice = _arrays(structure)
        interface, library = _import_tblite(self.fast_blas)
        last_error = ""
        for n, attempt in enumerate(self.attempts, start=1):
            calc = interface.Calculator(
                self.method,
                numbers,
                positions / BOHR_TO_ANGSTROM,
                charge=self.charge,
                lattice=lattice / BOHR_TO_ANGSTROM,
                periodic=np.array([True, True, True]),
                color=False,
                logger=_tblite_log,
            )
            calc.set("verbosity", 0)
            calc.set("accuracy", self.accuracy)
            calc.set("max-iter", attempt.max_iterations)
            calc.set("mixer-damping", attempt.damping)
            calc.set("temperature", attempt.electronic_temperature_K * KB_HARTREE_PER_K)
            try:
                return calc.singlepoint(), library, attempt, n
            except Exception as exc:
                message = str(exc)
                if "not converged" not in message.lower():
                    hint = OVERLAP_HINT if "sygvd" in message or "potrf" in message else ""
                    raise OracleError(f"tblite failed on {structure.composition.formula}: {message}{hint}") from exc
                last_error = message
                log.info("SCF attempt %d/%d (%s) failed: %s", n, len(self.attempts), attempt, message)
        raise _ScfFailedError(last_error, len(self.attempts))

    def _result(
        self,
        res: Any,
        library: Any,
        n_atoms: int,
        attempt: ScfAttempt,
        status: ScfStatus,
        n_attempts: int,
        wall: float,
    ) -> OracleResult:
        energy = float(res.get("energy")) * HARTREE_TO_EV
        emo = np.asarray(res.get("orbital-energies"), dtype=float) * HARTREE_TO_EV
        occ = _channel_occupations(res, library)
        edges = band_edges(emo, occ, attempt.electronic_temperature_K)
        return OracleResult(
            energy=energy,
            energy_per_atom=energy / n_atoms,
            fermi_level=edges["fermi_level"],
            homo=edges["homo"],
            lumo=edges["lumo"],
            homo_lumo_gap=edges["lumo"] - edges["homo"],
            n_fractional=int(edges["n_fractional"]),
            scf_status=status,
            n_attempts=n_attempts,
            wall_time_s=wall,
            method=self.method,
            e_1=float(emo.min()),
            n_atoms=n_atoms,
            electronic_temperature_K=attempt.electronic_temperature_K,
            frontier=frontier_levels(emo, occ, edges["fermi_level"]),
        )


# -- helpers ---------------------------------------------------------------------------------------
class _ScfFailedError(Exception):
    """Every SCF attempt failed (internal; turned into a ``failed`` result or an OracleError)."""

    def __init__(self, message: str, n: int) -> None:
        super().__init__(message)
        self.n = n


def band_edges(emo: np.ndarray, occ: np.ndarray, electronic_temperature_K: float) -> dict[str, float]:
    """HOMO, LUMO, Fermi level (eV) and the number of fractionally occupied orbitals.

    ``emo``: orbital energies (eV), shape ``(norb,)`` or ``(2, norb)``; ``occ``: occupations per spin
    channel, shape ``(2, norb)``, each 0..1 (see the module docstring for the definitions).
    """
    occ = np.asarray(occ, dtype=float)
    emo = np.asarray(emo, dtype=float)
    energies = np.broadcast_to(emo, occ.shape)
    n_electrons = round(float(occ.sum()))
    homo, lumo = aufbau_edges(emo, n_electrons)
    fractional = (occ > FRACTIONAL_TOL) & (occ < 1.0 - FRACTIONAL_TOL)
    n_fractional = int(fractional.any(axis=0).sum()) if emo.ndim == 1 else int(fractional.sum())
    if n_fractional == 0:
        occupied = occ > OCCUPIED_THRESHOLD
        top = float(energies[occupied].max()) if occupied.any() else float("nan")
        bottom = float(energies[~occupied].min()) if (~occupied).any() else float("nan")
        fermi = 0.5 * (top + bottom)
    else:
        fermi = fermi_dirac_level(energies, float(occ.sum()), electronic_temperature_K)
    return {"homo": homo, "lumo": lumo, "fermi_level": fermi, "n_fractional": n_fractional}


def aufbau_edges(emo: np.ndarray, n_electrons: int) -> tuple[float, float]:
    """(HOMO, LUMO) in eV by Aufbau filling with ``n_electrons`` (module docstring; NaN where missing).

    ``emo`` of shape ``(norb,)``: restricted levels, two electrons each; ``(2, norb)``: spin orbitals,
    one electron each.
    """
    emo = np.asarray(emo, dtype=float)
    if emo.ndim == 1:
        levels, top = np.sort(emo), (n_electrons + 1) // 2 - 1
    else:
        levels, top = np.sort(emo.ravel()), n_electrons - 1
    homo = float(levels[top]) if 0 <= top < levels.size else float("nan")
    lumo = float(levels[top + 1]) if 0 <= top + 1 < levels.size else float("nan")
    return homo, lumo


def edges_from_frontier(frontier: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """(HOMO, LUMO) in eV re-derived from stored ``frontier`` rows ``(energy, occ alpha, occ beta)``.

    The orbitals below the window are doubly occupied, so the electrons inside it (the rounded sum of
    its occupations) fix where the Aufbau filling ends. ``None`` when there is no window or the HOMO or
    LUMO would lie outside it (then keep the stored values).
    """
    rows = np.asarray(frontier, dtype=float)
    if rows.ndim != 2 or rows.shape[0] < 2 or rows.shape[1] != 3 or not np.isfinite(rows).all():
        return None
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    top = (round(float(rows[:, 1:].sum())) + 1) // 2 - 1
    if top < 0 or top + 1 >= rows.shape[0]:
        return None
    return float(rows[top, 0]), float(rows[top + 1, 0])


def frontier_levels(
    emo: np.ndarray, occ: np.ndarray, fermi: float, n: int = N_FRONTIER
) -> tuple[tuple[float, float, float], ...]:
    """The ``n`` orbitals nearest ``fermi`` as ``(energy, occ alpha, occ beta)``, lowest energy first
    (restricted orbitals: one energy per orbital, ``emo`` of shape ``(norb,)``)."""
    energies = np.asarray(emo, dtype=float)
    if energies.ndim != 1 or not np.isfinite(fermi):
        return ()
    near = np.sort(np.argsort(np.abs(energies - fermi), kind="stable")[:n])
    return tuple((round(float(energies[i]), 5), round(float(occ[0, i]), 5), round(float(occ[1, i]), 5)) for i in near)


def fermi_dirac_level(energies: np.ndarray, n_electrons: float, electronic_temperature_K: float) -> float:
    """Chemical potential (eV) at which Fermi-Dirac occupations of the spin orbitals hold ``n_electrons``."""
    from scipy.special import expit

    kt = electronic_temperature_K * KB_HARTREE_PER_K * HARTREE_TO_EV
    lo, hi = float(energies.min()) - 1.0, float(energies.max()) + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(expit((mid - energies) / kt).sum()) < n_electrons:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-9:
            break
    return 0.5 * (lo + hi)


def _arrays(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atomic numbers, Cartesian positions and lattice (Angstrom) of an ordered structure."""
    if len(structure) == 0:
        raise OracleError("cannot compute an empty structure")
    if not structure.is_ordered:
        raise OracleError("the xTB oracle needs an ordered structure (one species per site, no partial occupancy)")
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int32)
    if numbers.max() > MAX_Z:
        raise OracleError(f"xTB covers elements up to Z={MAX_Z}; the structure has Z={int(numbers.max())}")
    return numbers, np.asarray(structure.cart_coords, dtype=float), np.asarray(structure.lattice.matrix, dtype=float)


def _channel_occupations(res: Any, library: Any) -> np.ndarray:
    """Occupations per spin channel, shape ``(2, norb)``, each 0..1.

    tblite's Python API sums the two channels of a restricted calculation; the C API gives them apart
    (they differ for an odd electron count). Falls back to half the sum if the C call is unavailable.
    """
    try:
        norb = int(library.get_number_of_orbitals(res._res))
        occ = np.zeros((2, norb))
        library.error_check(library.lib.tblite_get_result_orbital_occupations)(
            res._res, library.ffi.cast("double*", occ.ctypes.data)
        )
        return occ
    except (AttributeError, TypeError):  # pragma: no cover - other tblite versions
        total = np.asarray(res.get("orbital-occupations"), dtype=float)
        return total if total.ndim == 2 else np.vstack([total / 2, total / 2])


def _tblite_log(message: str) -> None:
    log.debug("tblite: %s", message.rstrip())


def _import_tblite(fast_blas: bool) -> tuple[Any, Any]:
    """``tblite.interface`` and ``tblite.library``, with the fast BLAS loaded first if asked."""
    if fast_blas:
        from hts.oracle.blas import activate_fast_blas

        activate_fast_blas()
    try:
        from tblite import interface, library
    except ImportError as exc:
        raise OracleError(
            "the xTB oracle needs the tblite package: pip install 'hts2d[xtb]' (or pip install tblite)"
        ) from exc
    return interface, library


def tblite_version() -> str:
    """Version of the installed tblite package (``"unknown"`` if it cannot be read)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tblite")
    except PackageNotFoundError:
        return "unknown"
