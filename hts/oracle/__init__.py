"""The physics oracle: GFN1-xTB (GFN2 selectable) single points via tblite, with a fast BLAS.

tblite, pymatgen and scipy are imported inside the functions that need them, never here.
"""

from __future__ import annotations

from hts.oracle.base import Oracle, OracleResult, ScfStatus
from hts.oracle.blas import (
    activate_fast_blas,
    fast_blas_env,
    has_fast_blas,
    reexec_with_fast_blas,
    spawn_with_fast_blas,
)
from hts.oracle.references import compute_elemental_references, load_elemental_references
from hts.oracle.xtb import ScfAttempt, XTBOracle

__all__ = [
    "Oracle",
    "OracleResult",
    "ScfAttempt",
    "ScfStatus",
    "XTBOracle",
    "activate_fast_blas",
    "compute_elemental_references",
    "fast_blas_env",
    "has_fast_blas",
    "load_elemental_references",
    "reexec_with_fast_blas",
    "spawn_with_fast_blas",
]
