"""The per-configuration std: descriptors, cluster sizes, and a calibrated width that follows the error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from hts.defects import ConfigBatch, DefectConfiguration
from hts.hosts import VAC, get_host
from surrogate.error_model import ErrorModel, descriptor_names, descriptors, largest_cluster


@pytest.mark.parametrize(("k", "density"), [(9, 0.15), (16, 0.12), (16, 0.3)])
def test_largest_cluster_matches_connected_components(k: int, density: float) -> None:
    rng = np.random.default_rng(k)
    n = 300
    upper = np.triu(rng.random((n, k, k)) < density, 1)
    adjacent = upper | upper.transpose(0, 2, 1)
    member = rng.random((n, k)) < 0.7
    adjacent &= member[:, :, None] & member[:, None, :]
    got = largest_cluster(adjacent, member)
    for i in range(n):
        if not member[i].any():
            assert got[i] == 0
            continue
        _, label = connected_components(csr_matrix(adjacent[i]), directed=False)
        assert got[i] == np.bincount(label[member[i]]).max(), i


def test_descriptors_count_adjacent_vacancies_and_their_clusters() -> None:
    host = get_host("MoS2")
    s_sites = [int(i) for i in host.sites_of("S")]
    d = host.distance_matrix
    a = s_sites[0]
    near = min((s for s in s_sites if s != a), key=lambda s: d[a, s])
    far = max(s_sites, key=lambda s: d[a, s])
    config = DefectConfiguration.from_mapping(host, [(a, VAC), (near, VAC), (far, VAC)])
    row = dict(zip(descriptor_names(host), descriptors(ConfigBatch.from_configs([config]))[0], strict=True))
    assert row["n_defects"] == 3
    assert row["vacancy_pairs"] == 1 and row["largest_vacancy_cluster"] == 2


def test_error_model_is_wide_where_the_errors_are_and_covers_90_percent() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, size=(3000, 2)).astype(float)
    scale = 0.01 + 0.02 * x[:, 0]  # the error grows with the first descriptor only
    residual = np.abs(rng.normal(0.0, scale))
    model = ErrorModel.fit(x[:2000], residual[:2000], seed=0)
    std = model.std(x[2000:])
    low, high = x[2000:, 0] == 0, x[2000:, 0] == 5
    assert np.median(std[high]) > 5 * np.median(std[low])
    covered = residual[2000:] <= 1.645 * std
    assert 0.85 <= covered.mean() <= 0.95
    assert covered[low].mean() >= 0.8 and covered[high].mean() >= 0.8  # calibrated in each part, not only overall
