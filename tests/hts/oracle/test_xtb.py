"""Physics sanity of the GFN1-xTB oracle on 4x4 MoS2 (48 atoms), plus its helpers.

Reference figures (GFN1-xTB, tblite 0.8.0, 300 K, Gamma point, 2DMD unit cell, unrelaxed):
4x4 pristine gap 2.068 eV, S vacancy 0.916 eV, Mo vacancy 0.404 eV, Mo->W +0.017 eV, S->Se -0.008 eV;
8x8 pristine 1.780 eV. 4x4 is not a multiple of 3, so K (MoS2's band edges) does not fold onto Gamma
and the 4x4 gap is larger than the 8x8 one (3x3 and 6x6: 1.63 eV): hence the 0.4 eV tolerance
around 8x8's value. Per-atom energies of 4x4 and 8x4 differ by 4 meV/atom (a different Gamma-only
k-sampling of the same crystal), hence 10 meV/atom for extensivity.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from hts.oracle import Oracle, OracleResult, XTBOracle, fast_blas_env, has_fast_blas, load_elemental_references
from hts.oracle import blas as blas_mod
from hts.oracle.references import bcc_structure, crown_ring, relax, trigonal_chains
from hts.oracle.xtb import aufbau_edges, band_edges, edges_from_frontier, fermi_dirac_level

# find_spec, not importorskip: importing tblite here would bind it to its bundled BLAS before the
# oracle loads the fast one (hts.oracle.blas).
pytestmark = pytest.mark.skipif(importlib.util.find_spec("tblite") is None, reason="tblite not installed ([xtb] extra)")

GAP_8X8 = 1.86  # DESIGN.md's 8x8 figure; measured here 1.78 eV (see module docstring)
SHARED_CIF = Path(__file__).resolve().parents[4] / "shared" / "reference" / "2dmd" / "unit_cells" / "MoS2.cif"


def _unit_cell_path() -> str:
    """The 2DMD MoS2 unit cell: shared/ beside the repository, else the identical bundled copy."""
    if SHARED_CIF.is_file():
        return str(SHARED_CIF)
    return str(resources.files("hts.data").joinpath("unit_cells", "MoS2.cif"))


def _supercell(n: int, m: int):
    import warnings

    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fractional coordinates rounded to ideal values"
        s = Structure.from_file(_unit_cell_path())
    s.make_supercell([n, m, 1])
    return s


@pytest.fixture(scope="module")
def oracle() -> XTBOracle:
    return XTBOracle()


@pytest.fixture(scope="module")
def mos2_4x4():
    s = _supercell(4, 4)
    assert len(s) == 48 and s[0].species_string == "Mo" and s[16].species_string == "S"
    return s


@pytest.fixture(scope="module")
def pristine(oracle: XTBOracle, mos2_4x4) -> OracleResult:
    return oracle.compute(mos2_4x4)


@pytest.fixture(scope="module")
def s_vacancy(oracle: XTBOracle, mos2_4x4) -> OracleResult:
    s = mos2_4x4.copy()
    s.remove_sites([16])
    return oracle.compute(s)


# -- physics -----------------------------------------------------------------------------------------
def test_pristine_gap_positive_and_close_to_8x8(pristine: OracleResult):
    assert pristine.scf_status == "converged" and pristine.n_attempts == 1
    assert pristine.n_fractional == 0
    assert pristine.homo_lumo_gap > 0
    assert abs(pristine.homo_lumo_gap - GAP_8X8) < 0.4
    assert pristine.homo_lumo_gap == pytest.approx(2.068, abs=0.02)
    assert pristine.homo < pristine.fermi_level < pristine.lumo
    assert pristine.fermi_level == pytest.approx(0.5 * (pristine.homo + pristine.lumo))
    assert pristine.e_1 < pristine.homo
    assert pristine.n_atoms == 48
    assert pristine.energy_per_atom == pytest.approx(pristine.energy / 48)
    assert pristine.energy_per_atom == pytest.approx(-87.173, abs=0.01)


def test_s_vacancy_lowers_gap(pristine: OracleResult, s_vacancy: OracleResult):
    assert s_vacancy.converged and s_vacancy.n_atoms == 47
    assert 0 < s_vacancy.homo_lumo_gap < pristine.homo_lumo_gap - 0.5
    # removing an atom costs energy: E(vac) + E(S in MoS2) > E(pristine) with E(S) ~ E_pristine/atom
    assert s_vacancy.energy > pristine.energy


def test_w_substitution_changes_gap_much_less_than_s_vacancy(
    oracle: XTBOracle, mos2_4x4, pristine: OracleResult, s_vacancy: OracleResult
):
    s = mos2_4x4.copy()
    s.replace(0, "W")
    w = oracle.compute(s)
    assert w.converged
    d_w = abs(w.homo_lumo_gap - pristine.homo_lumo_gap)
    d_vac = abs(s_vacancy.homo_lumo_gap - pristine.homo_lumo_gap)
    assert d_w < 0.05
    assert d_w < 0.1 * d_vac


def test_energy_is_extensive(oracle: XTBOracle, pristine: OracleResult):
    double = oracle.compute(_supercell(8, 4))
    assert double.n_atoms == 96
    assert double.energy / pristine.energy == pytest.approx(2.0, abs=5e-4)
    assert abs(double.energy_per_atom - pristine.energy_per_atom) < 0.010


def test_scf_failure_is_a_status_not_an_exception():
    unit = _supercell(1, 1)
    res = XTBOracle(max_iterations=1).compute(unit)
    assert res.scf_status == "failed" and not res.converged
    assert res.n_attempts == 3  # first try + the two default retries
    for key in ("energy", "energy_per_atom", "fermi_level", "homo", "lumo", "homo_lumo_gap", "e_1"):
        assert math.isnan(getattr(res, key)), key
    assert res.n_atoms == 3 and res.wall_time_s > 0
    no_retry = XTBOracle(max_iterations=1, retries=()).compute(unit)
    assert no_retry.scf_status == "failed" and no_retry.n_attempts == 1


def test_retry_recovers(oracle: XTBOracle):
    from hts.oracle.xtb import ScfAttempt

    res = XTBOracle(max_iterations=2, retries=[ScfAttempt(0.2, 300.0, 250)]).compute(_supercell(2, 2))
    assert res.scf_status == "converged_after_retry" and res.n_attempts == 2
    assert res.energy_per_atom == pytest.approx(oracle.compute(_supercell(2, 2)).energy_per_atom, abs=1e-6)


def test_result_dict_and_protocol(pristine: OracleResult, oracle: XTBOracle):
    assert isinstance(oracle, Oracle)
    assert oracle.name == "tblite:GFN1-xTB"
    d = pristine.to_dict()
    for key in (
        "energy",
        "energy_per_atom",
        "fermi_level",
        "homo",
        "lumo",
        "homo_lumo_gap",
        "n_fractional",
        "scf_status",
        "n_attempts",
        "wall_time_s",
        "method",
        "e_1",
    ):
        assert key in d
    assert json.loads(json.dumps(d))["method"] == "GFN1-xTB"
    settings = oracle.settings()
    assert settings["method"] == "GFN1-xTB" and settings["electronic_temperature_K"] == 300.0


def test_bad_inputs_raise_oracle_error():
    from hts.errors import OracleError

    with pytest.raises(OracleError, match="unknown xTB method"):
        XTBOracle(method="GFN0")
    with pytest.raises(OracleError):
        XTBOracle(damping=0.0)


def test_inse_computes_with_its_host_method_not_gfn1():
    """InSe fails in GFN1-xTB at any size (its In 5d shell makes the Gamma-point overlap matrix
    indefinite under tblite's 40-bohr integral cutoff): the unit cell shows it. The host's method,
    GFN2-xTB, computes it; the failure is an OracleError that names the cause."""
    from hts.errors import OracleError
    from hts.hosts import default_oracle_method, get_host

    unit = get_host("InSe", (1, 1, 1)).pristine_structure()
    with pytest.raises(OracleError, match="overlap matrix is not positive definite"):
        XTBOracle(method="GFN1-xTB").compute(unit)
    res = XTBOracle(method=default_oracle_method("InSe")).compute(get_host("InSe", (2, 2, 1)).pristine_structure())
    assert res.converged and res.n_fractional == 0
    assert 1.0 < res.homo_lumo_gap < 2.5  # GFN2: 1.40 eV at 1x1 and 6x6 (PBE ~1.4-1.5 eV)


# -- band-edge bookkeeping (no tblite) ---------------------------------------------------------------
def test_band_edges_closed_shell():
    emo = np.array([-3.0, -2.0, -1.0, 1.0, 2.0])
    occ = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]], dtype=float)
    out = band_edges(emo, occ, 300.0)
    assert (out["homo"], out["lumo"], out["n_fractional"]) == (-1.0, 1.0, 0)
    assert out["fermi_level"] == 0.0


def test_band_edges_odd_electron_count_singly_occupied_level_is_homo():
    # C on B in h-BN: one more alpha than beta electron. The singly occupied level is the HOMO and the
    # next level the LUMO (the previous half-filling rule made both the SOMO: a gap of exactly 0).
    emo = np.array([-3.0, -2.0, -1.0, 1.0])
    occ = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=float)
    out = band_edges(emo, occ, 300.0)
    assert (out["homo"], out["lumo"], out["n_fractional"]) == (-1.0, 1.0, 0)
    assert out["fermi_level"] == -1.0  # pinned at the half-filled level, as before


def test_band_edges_crossing_spin_channels_never_give_a_negative_gap():
    # The defected black-phosphorus case: an odd electron count spread over near-degenerate levels,
    # the two channels smeared differently (levels and occupations of a real h-BN 8x8 label). The
    # old rule took the HOMO from the alpha channel above the LUMO from the beta one: -0.0026 eV.
    emo = np.array([-9.25053, -8.99711, -8.7781, -8.7488, -8.74616, -8.61415, -8.2593])
    occ = np.array(
        [
            [1.0, 0.99995, 0.82177, 0.59749, 0.57273, 0.00805, 0.0],
            [1.0, 0.9998, 0.51206, 0.25253, 0.23376, 0.00184, 0.0],
        ]
    )
    assert round(float(occ.sum())) == 7  # odd: the 7th electron sits in the 4th level
    out = band_edges(emo, occ, 300.0)
    assert out["homo"] == -8.7488 and out["lumo"] == -8.74616
    assert out["lumo"] - out["homo"] == pytest.approx(0.00264, abs=1e-5)
    assert out["n_fractional"] == 4
    rng = np.random.default_rng(0)
    for _ in range(200):  # any occupations: Aufbau on sorted levels is never negative
        e = np.sort(rng.normal(size=12))
        o = rng.uniform(size=(2, 12))
        res = band_edges(rng.permutation(e), o, 300.0)
        assert res["lumo"] >= res["homo"] or not np.isfinite(res["lumo"])


def test_aufbau_edges_and_frontier_rederivation():
    emo = np.array([-5.0, -4.0, -3.0, -2.0, 1.0, 2.0])
    assert aufbau_edges(emo, 8) == (-2.0, 1.0)  # closed shell
    assert aufbau_edges(emo, 7) == (-2.0, 1.0)  # odd: the singly occupied level and the next
    assert aufbau_edges(emo, 9) == (1.0, 2.0)
    assert aufbau_edges(np.vstack([emo, emo + 0.1]), 7) == pytest.approx((-2.0, -1.9))  # spin orbitals, one each
    homo, lumo = aufbau_edges(emo, 12)
    assert homo == 2.0 and math.isnan(lumo)
    # the window of stored frontier orbitals: levels below it are doubly occupied
    frontier = [(-3.0, 1.0, 1.0), (-2.0, 1.0, 0.0), (1.0, 0.0, 0.0), (2.0, 0.0, 0.0)]
    assert edges_from_frontier(frontier) == (-2.0, 1.0)
    assert edges_from_frontier(list(reversed(frontier))) == (-2.0, 1.0)
    assert edges_from_frontier([(-3.0, 1.0, 1.0), (-2.0, 1.0, 1.0)]) is None  # LUMO outside the window
    assert edges_from_frontier([]) is None


def test_band_edges_fractional_level_pins_fermi_level():
    emo = np.array([-3.0, -1.0, -1.0, -1.0, 2.0])
    f = 2.0 / 3.0
    occ = np.array([[1, f, f, f, 0], [1, f, f, f, 0]])
    out = band_edges(emo, occ, 300.0)
    assert out["n_fractional"] == 3
    assert out["homo"] == -1.0 and out["lumo"] == -1.0  # 4 electrons in a 3-fold level: gap 0
    assert out["fermi_level"] == pytest.approx(-1.0, abs=0.05)
    assert fermi_dirac_level(np.broadcast_to(emo, occ.shape), float(occ.sum()), 300.0) == pytest.approx(
        out["fermi_level"]
    )


def test_real_cells_band_edges_by_aufbau(oracle: XTBOracle):
    """Odd electron count (C on B, h-BN 4x4) and a partly filled defect manifold (two P vacancies,
    black phosphorus 3x3: 4 electrons over 3 levels within 0.06 eV, which the half-filling rule counted
    as 6, reporting a 0.52 eV gap). Both from ``frontier`` alone as the merge re-derives them."""
    from hts.defects import DefectConfiguration
    from hts.hosts import get_host

    bn = get_host("BN", (4, 4, 1))
    c_on_b = oracle.compute(DefectConfiguration.from_mapping(bn, ((0, "C"),)).to_structure())
    assert c_on_b.homo_lumo_gap > 1.0  # singly occupied donor level -> next level (was exactly 0)
    phos = get_host("P", (3, 3, 1))
    two_vac = oracle.compute(DefectConfiguration.from_mapping(phos, ((25, "VAC"), (19, "VAC"))).to_structure())
    assert two_vac.n_fractional >= 2
    assert 0.0 <= two_vac.homo_lumo_gap < 0.05
    for res in (c_on_b, two_vac):
        assert edges_from_frontier(res.frontier) == pytest.approx((res.homo, res.lumo), abs=1e-5)
        assert res.homo_lumo_gap == res.lumo - res.homo


# -- fast BLAS ---------------------------------------------------------------------------------------
def test_fast_blas_env_disabled(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    monkeypatch.setenv("HTS_FAST_BLAS", "off")
    blas_mod.find_fast_blas.cache_clear()
    try:
        assert not has_fast_blas()
        assert fast_blas_env() == {}
        assert "no fast BLAS" in caplog.text
    finally:
        monkeypatch.delenv("HTS_FAST_BLAS")
        blas_mod.find_fast_blas.cache_clear()


@pytest.mark.skipif(not has_fast_blas(), reason="no OpenBLAS installed (scripts/install_fast_blas.sh)")
def test_fast_blas_env_and_child_process(tmp_path: Path):
    env = fast_blas_env(threads=1)
    assert env["HTS_FAST_BLAS"] and env["OMP_NUM_THREADS"] == "1"
    assert "LD_PRELOAD" not in env and "LD_PRELOAD" in fast_blas_env(preload=True)
    code = (
        "from hts.oracle.xtb import XTBOracle\n"
        "from hts.oracle.references import crown_ring\n"
        "from hts.oracle.blas import blas_provider\n"
        "r = XTBOracle().compute(crown_ring('S'))\n"
        "print(r.scf_status, blas_provider())\n"
    )
    child_env = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True, text=True, check=True)
    status, provider = out.stdout.split()
    assert status == "converged" and "openblas" in provider


# -- elemental references ----------------------------------------------------------------------------
def test_stored_references_cover_mos2_and_wse2_elements():
    mu = load_elemental_references("GFN1-xTB")
    assert {"Mo", "S", "W", "Se"} <= set(mu)
    data = json.loads(resources.files("hts.data").joinpath("xtb_references.json").read_text())
    entry = data["methods"]["GFN1-xTB"]
    assert entry["settings"]["electronic_temperature_K"] == 300.0 and entry["tblite_version"]
    assert all(entry["structures"][el]["description"] for el in ("Mo", "S", "W", "Se"))


def test_reference_structures():
    assert len(bcc_structure("Mo", 3.147, 3)) == 54
    ring = crown_ring("S")
    d = np.array(ring.distance_matrix)
    np.fill_diagonal(d, np.inf)
    assert np.allclose(d.min(axis=1), 2.05, atol=1e-6)
    assert len(trigonal_chains("Se", 2)) == 24


def test_relax_s8_lowers_energy(oracle: XTBOracle):
    ring = crown_ring("S")
    e0 = oracle.compute(ring).energy
    relaxed, e1 = relax(ring, oracle, gtol=0.02)
    assert e1 <= e0 + 1e-6
    _, grad, _ = oracle.energy_gradient(relaxed)
    assert np.abs(grad).max() < 0.05
