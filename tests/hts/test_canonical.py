from __future__ import annotations

import numpy as np

from hts.canonical import canonical_hashes, canonicalize, plain_hashes
from hts.defects import ConfigBatch, DefectConfiguration
from tests.conftest import random_config


def test_hash_invariant_under_random_symmetry_operations(mos2, rng):
    n_ops = mos2.symmetry_permutations.shape[0]
    for n in (1, 2, 3, 8, 24):
        c = random_config(mos2, rng, n)
        h = c.canonical_hash()
        for op in rng.choice(n_ops, size=10, replace=False):
            moved = c.transformed(int(op))
            assert moved.canonical_hash() == h
            assert moved.canonical() == c.canonical()


def test_inequivalent_configurations_differ(mos2):
    # A vacancy pair at nearest-neighbour vs. next-nearest distance: not related by symmetry.
    s = mos2.sites_of("S")
    d = mos2.distance_matrix[s[0], s]
    order = np.argsort(d)
    near, far = int(s[order[1]]), int(s[order[-1]])
    a = DefectConfiguration.from_mapping(mos2, {int(s[0]): "VAC", near: "VAC"})
    b = DefectConfiguration.from_mapping(mos2, {int(s[0]): "VAC", far: "VAC"})
    assert a.canonical_hash() != b.canonical_hash()
    # Same sites, different species: different candidates.
    c = DefectConfiguration.from_mapping(mos2, {int(s[0]): "VAC", near: "Se"})
    assert c.canonical_hash() != a.canonical_hash()


def test_orbit_counts_reproduce_2dmd_enumeration(mos2):
    """2DMD lists 19 inequivalent S-vacancy pairs and 15 Mo+S vacancy pairs in 8x8 MoS2."""
    s = mos2.sites_of("S")
    pairs = [(int(a), int(b)) for i, a in enumerate(s) for b in s[i + 1 :]]
    sites = np.array(pairs, dtype=np.int32)
    codes = np.full_like(sites, mos2.code_of("VAC"), dtype=np.int8)
    assert len(np.unique(canonical_hashes(ConfigBatch(mos2, sites, codes)))) == 19
    mo_s = np.array([(0, int(b)) for b in s], dtype=np.int32)
    codes = np.full_like(mo_s, mos2.code_of("VAC"), dtype=np.int8)
    assert len(np.unique(canonical_hashes(ConfigBatch(mos2, mo_s, codes)))) == 15


def test_canonicalize_batch_matches_single(mos2, rng):
    configs = [random_config(mos2, rng, n) for n in (1, 4, 9)]
    batch = canonicalize(ConfigBatch.from_configs(configs))
    assert batch.to_configs() == [c.canonical() for c in configs]
    # The canonical representative has the minimal plain hash of the orbit.
    np.testing.assert_array_equal(plain_hashes(batch), canonical_hashes(ConfigBatch.from_configs(configs)))


def test_padding_does_not_change_hash(mos2, rng):
    c = random_config(mos2, rng, 3)
    b1 = ConfigBatch.from_configs([c])
    b2 = ConfigBatch(mos2, np.pad(b1.sites, ((0, 0), (0, 5)), constant_values=-1), np.pad(b1.codes, ((0, 0), (0, 5))))
    assert canonical_hashes(b1)[0] == canonical_hashes(b2)[0]
