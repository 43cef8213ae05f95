"""Shared fixtures: small hosts and reproducible random configurations."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from hts.defects import DefectConfiguration
from hts.hosts import Host, get_host

# Fuzz budgets: "ci" (the default) keeps the suite quick; "large" is the big budget of issue 7:
#   HTS_HYPOTHESIS_PROFILE=large .venv/bin/python -m pytest tests/fuzz tests/llm/test_encodings.py
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("large", max_examples=10_000, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HTS_HYPOTHESIS_PROFILE", "ci"))


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
