from __future__ import annotations

import numpy as np
import pytest

from hts.errors import ConfigError
from hts.hosts import VAC, get_host, list_hosts


def test_all_hosts_build_with_2dmd_supercells():
    expected = {"MoS2": 192, "WSe2": 192, "BN": 128, "GaSe": 144, "InSe": 144, "P": 144}
    for name in list_hosts():
        assert get_host(name).n_sites == expected[name]


def test_site_order_is_documented_mos2(mos2):
    assert set(mos2.site_species[:64]) == {"Mo"}
    assert set(mos2.site_species[64:]) == {"S"}
    # lower S layer first, then upper (unit-cell order); cell (i, j) -> index i*8 + j
    assert mos2.frac_coords[64, 2] < mos2.frac_coords[128, 2]
    np.testing.assert_allclose(mos2.frac_coords[1, :2] - mos2.frac_coords[0, :2], [0, 1 / 8], atol=1e-9)
    np.testing.assert_allclose(mos2.frac_coords[8, :2] - mos2.frac_coords[0, :2], [1 / 8, 0], atol=1e-9)


def test_lattice_matches_2dmd_unit_cell_times_supercell(mos2):
    a = np.linalg.norm(mos2.lattice_matrix[0])
    assert a == pytest.approx(8 * 3.19031570, abs=1e-6)


def test_defect_rules_follow_2dmd_configs():
    rules = {n: {r.name for r in get_host(n).rules} for n in list_hosts()}
    assert rules["MoS2"] == {"Mo->W", "S->Se", "vac_Mo", "vac_S"}
    assert rules["WSe2"] == {"W->Mo", "Se->S", "vac_W", "vac_Se"}
    assert rules["BN"] == {"B->C", "N->C", "vac_B", "vac_N"}
    assert rules["GaSe"] == {"Ga->In", "Se->S", "vac_Ga", "vac_Se"}
    assert rules["InSe"] == {"In->Ga", "Se->S", "vac_In", "vac_Se"}
    assert rules["P"] == {"P->N", "vac_P"}


def test_aliases_and_unknown_host():
    assert get_host("h-BN") is get_host("BN")
    assert get_host("bp") is get_host("P")
    with pytest.raises(ConfigError, match="unknown host material 'Graphene'"):
        get_host("Graphene")
    with pytest.raises(ConfigError, match="supercell"):
        get_host("MoS2", (8, 8, 2))


def test_symmetry_group_orders():
    # D3h (12 ops) x 64 translations for MoS2; planar BN: sigma_h acts trivially on sites -> 6 x 64;
    # black phosphorus D2h (8 ops) x 36.
    assert get_host("MoS2").symmetry_permutations.shape == (768, 192)
    assert get_host("BN").symmetry_permutations.shape == (384, 128)
    assert get_host("P").symmetry_permutations.shape == (288, 144)


def test_symmetry_operations_preserve_species_and_distances(mos2):
    perms = mos2.symmetry_permutations
    species = np.array(mos2.site_species)
    d = mos2.distance_matrix
    for p in perms[::37]:
        assert np.array_equal(species[p], species)
        np.testing.assert_allclose(d[np.ix_(p, p)], d, atol=1e-4)


def test_allowed_matrix(mos2):
    assert mos2.allowed[0, mos2.code_of("W")] and mos2.allowed[0, mos2.code_of(VAC)]
    assert not mos2.allowed[0, mos2.code_of("Se")]
    assert mos2.allowed[100, mos2.code_of("Se")] and not mos2.allowed[100, mos2.code_of("W")]


def test_oracle_method_and_elements_per_host():
    from hts.hosts import default_oracle_method, host_elements

    methods = {name: default_oracle_method(name) for name in list_hosts()}
    assert methods == {
        "MoS2": "GFN1-xTB",
        "WSe2": "GFN1-xTB",
        "BN": "GFN1-xTB",
        "GaSe": "GFN2-xTB",  # GFN1 cannot compute InSe, nor the Ga and In references (hts.oracle.xtb)
        "InSe": "GFN2-xTB",
        "P": "GFN1-xTB",
    }
    assert default_oracle_method("h-BN") == "GFN1-xTB"
    assert host_elements("InSe") == ("In", "Se", "Ga", "S") and host_elements("P") == ("P", "N")


def test_every_element_of_every_host_has_a_chemical_potential():
    """Formation energies need mu for each pristine element and each element a substitution adds,
    computed with the host's own oracle method (hts/data/xtb_references.json)."""
    from hts.hosts import default_oracle_method, host_elements
    from hts.oracle.references import load_elemental_references

    for name in list_hosts():
        mu = load_elemental_references(default_oracle_method(name))
        missing = set(host_elements(name)) - set(mu)
        assert not missing, f"{name} ({default_oracle_method(name)}): no chemical potential for {sorted(missing)}"
        assert all(np.isfinite(mu[el]) for el in host_elements(name))
