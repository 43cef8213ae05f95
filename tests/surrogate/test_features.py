"""Featurisers: sparse values, invariances and input checks; SLICES strings against pymatgen."""

from __future__ import annotations

import numpy as np
import pytest

from hts.defects import PAD, ConfigBatch, DefectConfiguration
from hts.errors import ConfigError, InputDataError
from hts.hosts import Host
from surrogate.features import SlicesFeaturiser, SparseFeaturiser, make_featuriser
from surrogate.features.slices import decode, host_bonds, structure_to_slices
from tests.conftest import random_config


def _feat(f: SparseFeaturiser, host: Host, *configs: DefectConfiguration) -> dict[str, np.ndarray]:
    X = f.transform(ConfigBatch.from_configs(list(configs)))
    return dict(zip(f.feature_names(host), X.T, strict=True))


def test_sparse_values_by_hand(mos2: Host) -> None:
    f = SparseFeaturiser(n_dist=2, close_cutoff=3.5)
    # Mo 0 -> W, its S neighbours 64 (lower) and 128 (upper, same column) vacant.
    c = DefectConfiguration.from_mapping(mos2, {0: "W", 64: "VAC", 128: "VAC"})
    v = {k: float(x[0]) for k, x in _feat(f, mos2, c).items()}
    far = f.far(mos2)
    d_mos, d_ss = float(mos2.distance_matrix[0, 64]), float(mos2.distance_matrix[64, 128])
    assert v["n_defects"] == 3
    assert v["concentration"] == pytest.approx(3 / 192)
    assert (v["count[Mo->W]"], v["count[vac_S]"], v["count[vac_Mo]"], v["count[S->Se]"]) == (1, 2, 0, 0)
    assert (v["n_vacancies"], v["n_substitutions"]) == (2, 1)
    assert v["d0[Mo->W|vac_S]"] == pytest.approx(d_mos) and v["d1[Mo->W|vac_S]"] == pytest.approx(d_mos)
    assert v["d0[vac_S|vac_S]"] == pytest.approx(d_ss) and v["d1[vac_S|vac_S]"] == far
    assert v["d0[vac_Mo|vac_Mo]"] == far
    assert v["close[Mo->W|vac_S]"] == 2 and v["close[vac_S|vac_S]"] == 1
    assert v["nn_min[vac_S]"] == pytest.approx(d_mos) and v["nn_mean[Mo->W]"] == pytest.approx(d_mos)
    assert v["nn_min[vac_Mo]"] == far
    assert v["nn_max"] == pytest.approx(d_mos)
    assert far > float(mos2.distance_matrix.max())


def test_sparse_pristine_and_single_defect(mos2: Host) -> None:
    f = SparseFeaturiser()
    X = f.transform(
        ConfigBatch.from_configs(
            [DefectConfiguration.pristine(mos2), DefectConfiguration.from_mapping(mos2, {5: "VAC"})]
        )
    )
    names = f.feature_names(mos2)
    assert X.shape == (2, len(names)) and X.dtype == np.float32
    assert X[0, names.index("n_defects")] == 0 and X[1, names.index("count[vac_Mo]")] == 1
    assert X[1, names.index("nn_min")] == f.far(mos2)


def test_sparse_symmetry_invariant(mos2_small: Host, rng: np.random.Generator) -> None:
    f = SparseFeaturiser()
    configs = [random_config(mos2_small, rng, n) for n in (2, 4, 7)]
    n_ops = mos2_small.symmetry_permutations.shape[0]
    moved = [c.transformed(int(rng.integers(n_ops))) for c in configs]
    assert any(m != c for m, c in zip(moved, configs, strict=True))
    X = f.transform(ConfigBatch.from_configs(configs))
    Y = f.transform(ConfigBatch.from_configs(moved))
    np.testing.assert_allclose(X, Y, rtol=0, atol=1e-5)


def test_sparse_padding_order_and_chunking(mos2: Host, rng: np.random.Generator) -> None:
    f = SparseFeaturiser()
    configs = [random_config(mos2, rng, n) for n in (1, 3, 12, 3, 24)]
    batch = ConfigBatch.from_configs(configs)
    ref = f.transform(batch)
    # Each row alone (no padding) gives the same features.
    alone = np.vstack([f.transform(ConfigBatch.from_configs([c])) for c in configs])
    np.testing.assert_array_equal(ref, alone)
    # Extra padding columns and shuffled columns within rows change nothing.
    k = batch.sites.shape[1]
    sites = np.full((len(batch), k + 3), PAD, dtype=np.int32)
    codes = np.zeros_like(sites, dtype=np.int8)
    sites[:, 3:], codes[:, 3:] = batch.sites, batch.codes
    np.testing.assert_array_equal(f.transform(ConfigBatch(mos2, sites, codes)), ref)


def test_sparse_rejects_bad_input(mos2: Host, mos2_small: Host) -> None:
    f = SparseFeaturiser()
    mo_site = int(mos2.sites_of("Mo")[0])
    se = mos2.code_of("Se")
    with pytest.raises(InputDataError, match="cannot become Se"):
        f.transform(ConfigBatch(mos2, np.array([[mo_site]], np.int32), np.array([[se]], np.int8)))
    with pytest.raises(InputDataError, match="species code"):
        f.transform(ConfigBatch(mos2, np.array([[3]], np.int32), np.array([[17]], np.int8)))
    with pytest.raises(InputDataError, match="outside"):
        f.transform(ConfigBatch(mos2_small, np.array([[100]], np.int32), np.array([[0]], np.int8)))
    with pytest.raises(ConfigError):
        SparseFeaturiser(n_dist=0)
    empty = f.transform(ConfigBatch(mos2, np.zeros((0, 1), np.int32), np.zeros((0, 1), np.int8)))
    assert empty.shape == (0, len(f.feature_names(mos2)))


def test_make_featuriser() -> None:
    assert make_featuriser("sparse", {"n_dist": 3}).settings == {"n_dist": 3, "close_cutoff": 3.5}
    assert make_featuriser("slices").settings["style"] == "compact"
    with pytest.raises(ConfigError, match="unknown featuriser"):
        make_featuriser("soap")
    with pytest.raises(ConfigError, match="bad settings"):
        make_featuriser("sparse", {"radius": 3})


def test_slices_matches_pymatgen_minimum_distance(mos2_small: Host) -> None:
    c = DefectConfiguration.from_mapping(mos2_small, {0: "W", 5: "VAC", 16: "VAC", 33: "Se"})
    fast = SlicesFeaturiser().strings(ConfigBatch.from_configs([c]))[0]
    ref = structure_to_slices(c.to_structure(), graph="mindist")
    assert fast == ref
    symbols, edges, images = decode(fast)
    assert len(symbols) == 46 and symbols[0] == "W" and symbols.count("Se") == 1
    # 4x4 MoS2 has 96 Mo-S bonds; the Mo vacancy (5) removes 6, the S vacancy (16, not bonded to 5) 3.
    assert len(edges) == 96 - 6 - 3
    assert (edges[:, 0] < edges[:, 1]).all() and set(np.unique(images)) <= {-1, 0, 1}


def test_slices_pristine_bonds_and_styles(mos2: Host, mos2_small: Host) -> None:
    edges, _images = host_bonds(mos2)
    assert len(edges) == 6 * 64  # every Mo has 6 S neighbours, nothing else bonds
    spaced = SlicesFeaturiser(style="spaced").strings(
        ConfigBatch.from_configs([DefectConfiguration.pristine(mos2_small)])
    )
    compact = SlicesFeaturiser().strings(ConfigBatch.from_configs([DefectConfiguration.pristine(mos2_small)]))
    assert decode(spaced[0])[1].tolist() == decode(compact[0])[1].tolist()
    assert " o o o" in spaced[0] and " ooo" in compact[0]
    frame = SlicesFeaturiser().transform(ConfigBatch.from_configs([DefectConfiguration.pristine(mos2_small)]))
    assert list(frame.columns) == ["slices"] and frame.iloc[0, 0] == compact[0]
    with pytest.raises(ConfigError):
        SlicesFeaturiser(style="dense")
