from __future__ import annotations

import numpy as np
import pytest

from hts.defects import ConfigBatch, DefectConfiguration
from hts.errors import DefectError, InputDataError
from tests.conftest import random_config


def test_validation_errors_name_the_problem(mos2):
    with pytest.raises(DefectError, match="site 192 is out of range"):
        DefectConfiguration.from_mapping(mos2, {192: "VAC"})
    with pytest.raises(DefectError, match="holds Mo .* may become W or VAC, not 'Se'"):
        DefectConfiguration.from_mapping(mos2, {0: "Se"})
    with pytest.raises(DefectError, match="site 3 is changed twice"):
        DefectConfiguration.from_mapping(mos2, [(3, "VAC"), (3, "W")])
    with pytest.raises(DefectError, match="not an integer"):
        DefectConfiguration.from_mapping(mos2, {"x": "VAC"})


def test_roundtrip_config_structure_cif_config(mos2, rng):
    from pymatgen.io.cif import CifParser

    for n in (0, 1, 3, 12, 24):
        c = random_config(mos2, rng, n)
        s = c.to_structure()
        assert len(s) == mos2.n_sites - sum(sp == "VAC" for _, sp in c.defects)
        assert DefectConfiguration.from_structure(mos2, s) == c
        cif = c.to_cif()
        assert DefectConfiguration.from_cif(mos2, cif) == c
        # pymatgen reads our CIF back to the same structure
        again = CifParser.from_str(cif).parse_structures(primitive=False)[0]
        assert DefectConfiguration.from_structure(mos2, again) == c


def test_pymatgen_written_cif_is_read(mos2, rng):
    from pymatgen.io.cif import CifWriter

    c = random_config(mos2, rng, 5)
    assert DefectConfiguration.from_cif(mos2, str(CifWriter(c.to_structure()))) == c


def test_from_structure_rejects_foreign_structures(mos2, mos2_small):
    small = DefectConfiguration.pristine(mos2_small).to_structure()
    with pytest.raises(InputDataError, match="does not match"):
        DefectConfiguration.from_structure(mos2, small)
    s = DefectConfiguration.pristine(mos2).to_structure()
    s.translate_sites([0], [0.02, 0.0, 0.0])  # 0.5 A off its site
    with pytest.raises(InputDataError, match="match no pristine site"):
        DefectConfiguration.from_structure(mos2, s, tol=0.3)


def test_rule_counts_and_2dmd_defects(mos2):
    c = DefectConfiguration.from_mapping(mos2, {0: "VAC", 1: "W", 64: "VAC", 65: "Se", 66: "Se"})
    assert c.rule_counts() == {"vac_Mo": 1, "Mo->W": 1, "vac_S": 1, "S->Se": 2}
    assert {"type": "substitution", "from": "S", "to": "Se"} in c.to_2dmd_defects()
    assert c.concentration == pytest.approx(5 / 192)


def test_batch_roundtrip_and_validate(mos2, rng):
    configs = [random_config(mos2, rng, n) for n in (0, 2, 7)]
    batch = ConfigBatch.from_configs(configs)
    assert batch.to_configs() == configs
    assert batch.validate().all()
    bad = ConfigBatch(mos2, batch.sites.copy(), batch.codes.copy())
    bad.sites[1, 1] = bad.sites[1, 0]  # same site twice
    bad.codes[2, 0] = mos2.code_of("Se") if mos2.site_species[bad.sites[2, 0]] == "Mo" else mos2.code_of("W")
    np.testing.assert_array_equal(bad.validate(), [True, False, False])
