"""Shared fixtures: small hosts and reproducible random configurations."""

from __future__ import annotations

import numpy as np
import pytest

from hts.defects import DefectConfiguration
from hts.hosts import Host, get_host


def random_config(host: Host, rng: np.random.Generator, n: int) -> DefectConfiguration:
    """A random valid configuration with ``n`` defects."""
    sites = rng.choice(host.n_sites, size=n, replace=False)
    defects = {}
    for s in sites:
        options = np.flatnonzero(host.allowed[s])
        defects[int(s)] = host.species_codes[int(rng.choice(options))]
    return DefectConfiguration.from_mapping(host, defects)


@pytest.fixture
def mos2() -> Host:
    return get_host("MoS2")


@pytest.fixture
def mos2_small() -> Host:
    return get_host("MoS2", (4, 4, 1))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
