"""The oracle interface: what a physics oracle returns and the Protocol every oracle satisfies.

Units: energies in eV, on the oracle's own energy scale (xTB orbital energies are not comparable with
VASP's: compare within one method only). A failed SCF is a result, not an exception: its status is
``"failed"`` and its properties are NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

ScfStatus = Literal["converged", "converged_after_retry", "failed"]
"""``converged`` at the first attempt, ``converged_after_retry`` (see ``n_attempts``), or ``failed``."""

NAN = math.nan


@dataclass(frozen=True)
class OracleResult:
    """Properties of one structure from one single-point calculation (eV unless stated).

    ``homo``/``lumo`` come from Aufbau filling with the integer electron count: the level holding the
    last electron and the next one above it, so ``homo_lumo_gap >= 0`` (see the oracle's docs);
    ``n_fractional`` counts the orbitals whose occupation is fractional (partly filled defect levels:
    the gap is then the splitting of that manifold, ~0). ``e_1`` is the
    lowest orbital energy (2DMD's ``E_1``, used to normalise HOMO/LUMO). ``electronic_temperature_K``
    is the smearing temperature of the attempt that produced the numbers. ``frontier`` holds the
    orbitals nearest the Fermi level as ``[energy, occupation alpha, occupation beta]`` rows (lowest
    first), so that band edges can be re-derived under another definition without recomputing.
    """

    energy: float
    energy_per_atom: float
    fermi_level: float
    homo: float
    lumo: float
    homo_lumo_gap: float
    n_fractional: int
    scf_status: ScfStatus
    n_attempts: int
    wall_time_s: float
    method: str
    e_1: float = NAN
    n_atoms: int = 0
    electronic_temperature_K: float = NAN
    frontier: tuple[tuple[float, float, float], ...] = ()

    @property
    def converged(self) -> bool:
        """True unless the SCF failed in every attempt."""
        return self.scf_status != "failed"

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` (JSON-serialisable builtins; NaN stays a float NaN)."""
        return asdict(self)

    @classmethod
    def failed(
        cls, method: str, n_atoms: int, n_attempts: int, wall_time_s: float, electronic_temperature_K: float = NAN
    ) -> OracleResult:
        """A result for an SCF that did not converge: every property NaN, ``n_fractional`` -1."""
        return cls(
            energy=NAN,
            energy_per_atom=NAN,
            fermi_level=NAN,
            homo=NAN,
            lumo=NAN,
            homo_lumo_gap=NAN,
            n_fractional=-1,
            scf_status="failed",
            n_attempts=n_attempts,
            wall_time_s=wall_time_s,
            method=method,
            e_1=NAN,
            n_atoms=n_atoms,
            electronic_temperature_K=electronic_temperature_K,
        )


@runtime_checkable
class Oracle(Protocol):
    """A physics oracle: labels one structure with energies and band-edge properties."""

    name: str

    def compute(self, structure: Structure) -> OracleResult:
        """Single point on ``structure``; never raises for SCF non-convergence (status ``failed``)."""
        ...
