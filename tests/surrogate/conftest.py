"""Shared fixtures: a tiny 4x4 MoS2 dataset with synthetic labels and a small trained model."""

from __future__ import annotations

from pathlib import Path

import pytest

from hts.hosts import Host, get_host
from surrogate.model import SurrogateModel
from tests.surrogate.synthetic import SyntheticDataset, make_dataset

SMALL_PARAMS = {"iterations": 150, "depth": 4, "learning_rate": 0.1}
FIT_TARGETS = ["homo_lumo_gap", "formation_energy"]


@pytest.fixture(scope="session")
def host4() -> Host:
    return get_host("MoS2", (4, 4, 1))


@pytest.fixture(scope="session")
def dataset() -> SyntheticDataset:
    return make_dataset(per_concentration=40, seed=0)


@pytest.fixture(scope="session")
def trained(dataset: SyntheticDataset):  # type: ignore[no-untyped-def]
    """A sparse-feature TrainResult on a random split (2 targets, 150 shallow trees)."""
    from surrogate.training import train

    return train(dataset, "sparse", FIT_TARGETS, split="random", seed=0, params=SMALL_PARAMS, thread_count=1)


@pytest.fixture(scope="session")
def model_dir(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    return trained.model.save(tmp_path_factory.mktemp("models") / "sparse")


@pytest.fixture(scope="session")
def model(trained) -> SurrogateModel:  # type: ignore[no-untyped-def]
    return trained.model
