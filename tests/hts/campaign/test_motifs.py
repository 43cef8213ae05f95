"""Motifs: a hit stripped of its spectators, canonical under the host's symmetry."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.motifs import describe_core, find_motifs, removal_order
from hts.defects import ConfigBatch, DefectConfiguration
from hts.hosts import VAC, get_host

MOS2 = get_host("MoS2", (4, 4, 1))  # Mo 0-15, lower S 16-31, upper S 32-47
S_SITES = [s for s in range(MOS2.n_sites) if MOS2.site_species[s] == "S"]


def _config(defects):
    return DefectConfiguration.from_mapping(MOS2, defects)


def _nearest_s_pair(far: bool) -> tuple[int, int]:
    d = MOS2.distance_matrix[16, S_SITES]
    others = [s for s, x in zip(S_SITES, d, strict=True) if s != 16]
    dist = MOS2.distance_matrix[16, others]
    return 16, others[int(np.argmax(dist) if far else np.argmin(dist))]


def vacancy_gap(batch: ConfigBatch) -> np.ndarray:
    """A toy surrogate: the gap falls by 0.8 eV with the first S vacancy, 0.1 eV more with a second
    one and 0.2 eV more when two are adjacent; isovalent substitutions change nothing."""
    gaps = []
    for c in batch.to_configs():
        vac = [s for s, sp in c.defects if sp == VAC and MOS2.site_species[s] == "S"]
        near = any(MOS2.distance_matrix[a, b] < 3.3 for i, a in enumerate(vac) for b in vac[i + 1 :])
        gaps.append(1.8 - 0.8 * bool(vac) - 0.1 * (len(vac) > 1) - 0.2 * near)
    return np.array(gaps)


def inside(lo: float, hi: float):
    return lambda batch: (vacancy_gap(batch) >= lo) & (vacancy_gap(batch) <= hi)


def test_decorated_vacancy_and_bare_core_are_one_motif():
    bare = _config([(16, VAC)])
    decorated = _config([(16, VAC), (3, "W"), (40, "Se"), (9, "W")])
    found = find_motifs(ConfigBatch.from_configs([bare, decorated]), inside(0.9, 1.1))
    hashes = found.hashes()
    assert hashes[0] == hashes[1]
    assert found.cores.to_configs()[1].defects == ((16, VAC),)
    assert sorted(found.spectators.to_configs()[1].defects) == [(3, "W"), (9, "W"), (40, "Se")]


def test_adjacent_and_distant_vacancy_pairs_are_two_motifs():
    near, far = _nearest_s_pair(False), _nearest_s_pair(True)
    batch = ConfigBatch.from_configs([_config([(s, VAC) for s in near]), _config([(s, VAC) for s in far])])
    # both pairs hit (0.7 and 0.9 eV), one vacancy alone does not (1.0 eV): two cores of two vacancies
    found = find_motifs(batch, inside(0.65, 0.95))
    assert [c.n_defects for c in found.cores.to_configs()] == [2, 2]
    assert len(set(found.hashes())) == 2
    # a window one vacancy reaches too: both reduce to the same single-vacancy motif
    found = find_motifs(batch, inside(0.65, 1.05))
    assert [c.n_defects for c in found.cores.to_configs()] == [1, 1]
    assert len(set(found.hashes())) == 1


def test_motif_hash_is_invariant_under_the_host_symmetry():
    rng = np.random.default_rng(0)
    base = _config([(16, VAC), (2, "W"), (45, "Se")])
    perms = MOS2.symmetry_permutations
    images = [base.transformed(int(g)) for g in rng.choice(len(perms), size=12, replace=False)]
    found = find_motifs(ConfigBatch.from_configs([base, *images]), inside(0.9, 1.1))
    assert len(set(found.hashes())) == 1


def test_removal_order_strips_substitutions_first_and_the_most_isolated_first():
    near_w = int(np.argmin(np.where(np.arange(MOS2.n_sites) < 16, MOS2.distance_matrix[16], np.inf)))
    far_w = int(np.argmax(np.where(np.arange(MOS2.n_sites) < 16, MOS2.distance_matrix[16], -np.inf)))
    config = _config([(16, VAC), (near_w, "W"), (far_w, "W")])
    batch = ConfigBatch.from_configs([config])
    sites = batch.sites[0][removal_order(batch)[0]]
    assert list(sites) == [far_w, near_w, 16]


def test_a_core_keeps_one_defect_even_when_the_pristine_host_would_be_inside():
    found = find_motifs(ConfigBatch.from_configs([_config([(3, "W"), (40, "Se")])]), inside(1.7, 1.9))
    assert found.cores.to_configs()[0].n_defects == 1


@pytest.mark.parametrize(
    ("defects", "words"),
    [
        ([(16, VAC)], "V_S"),
        ([(3, "W")], "W_Mo"),
        ([(0, VAC), (16, VAC), (32, VAC)], "V_Mo + 2 V_S (adjacent)"),
    ],
)
def test_core_in_words(defects, words):
    assert describe_core(MOS2, defects) == words


def test_distant_defects_are_described_apart():
    assert describe_core(MOS2, [(s, VAC) for s in _nearest_s_pair(True)]) == "2 V_S (apart)"


def test_isolated_defects_are_one_motif_wherever_they_sit():
    host = get_host("MoS2")  # 8x8: room for many placements of three isolated S vacancies
    s_sites = [s for s in range(host.n_sites) if host.site_species[s] == "S"]
    rng = np.random.default_rng(1)
    configs = []
    while len(configs) < 6:
        trio = [int(x) for x in rng.choice(s_sites, 3, replace=False)]
        if all(host.distance_matrix[a, b] > 6.0 for i, a in enumerate(trio) for b in trio[i + 1 :]):
            configs.append(DefectConfiguration.from_mapping(host, [(s, VAC) for s in trio]))
    found = find_motifs(ConfigBatch.from_configs(configs), lambda b: np.ones(len(b), bool))
    assert len(set(found.hashes())) == 1
    assert describe_core(host, list(configs[0].defects)) == "3 V_S (apart)"


def test_a_cluster_beside_an_isolated_defect_is_named_in_brackets():
    host = get_host("MoS2")
    s_sites = [s for s in range(host.n_sites) if host.site_species[s] == "S"]
    far = max(s_sites, key=lambda s: host.distance_matrix[0, s])
    words = describe_core(host, [(0, VAC), (64, VAC), (far, VAC)])
    assert words == "V_S + [V_Mo + V_S]"


def test_a_defect_needed_only_beside_others_is_stripped_once_they_are_gone():
    """Toy: a W spectator is 'needed' only while a second vacancy is present (the first sweep keeps it,
    tries it before the vacancy it depends on); the second sweep removes it."""

    def inside_(batch):
        out = []
        for c in batch.to_configs():
            vac = sum(sp == VAC for _, sp in c.defects)
            w = any(sp == "W" for _, sp in c.defects)
            out.append(vac == 1 or (vac == 2 and w))
        return np.array(out)

    config = _config([(16, VAC), (40, VAC), (3, "W")])
    found = find_motifs(ConfigBatch.from_configs([config]), inside_)
    assert found.cores.to_configs()[0].n_defects == 1
