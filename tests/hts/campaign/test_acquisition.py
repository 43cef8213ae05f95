"""Pool acquisition for oracle verification (hts.campaign.acquisition)."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.acquisition import marginal_hit_probability, select_for_oracle
from hts.campaign.config import Target


def _targets():
    return {"homo_lumo_gap": Target(value=1.0, tolerance=0.05)}


def test_marginal_probability_is_the_gaussian_mass_in_the_window():
    p = marginal_hit_probability(np.array([[1.0], [1.05], [2.0]]), np.array([[0.05], [1e-6], [0.05]]), [(0.95, 1.05)])
    assert p[0] == pytest.approx(0.6827, abs=1e-3)  # +-1 sigma
    assert p[1] == pytest.approx(0.5, abs=1e-3)  # on the edge, certain: half in
    assert p[2] == pytest.approx(0.0, abs=1e-9)


def test_sure_candidate_beats_a_central_but_uncertain_one():
    mean = np.array([[1.0], [1.02], [1.5]])
    std = np.array([[0.5], [0.01], [0.01]])
    assert select_for_oracle(mean, std, ["a", "b", "c"], _targets(), 1) == [1]


def test_a_second_candidate_of_one_motif_counts_only_if_the_first_fails():
    # three of motif A slightly ahead of one of motif B
    mean = np.array([[1.0], [1.0], [1.0], [1.0]])
    std = np.array([[0.040], [0.041], [0.042], [0.05]])
    assert select_for_oracle(mean, std, ["A", "C", "D", "B"], _targets(), 2, rho=0.0) == [0, 1]
    for rho in (0.0, 0.9):  # same motif: B's own chance beats A's second placement
        picked = select_for_oracle(mean, std, ["A", "A", "A", "B"], _targets(), 2, rho=rho)
        assert picked == [0, 3]


def test_a_verified_motif_is_worth_nothing_more():
    mean = np.array([[1.0], [1.0], [1.0]])
    std = np.array([[0.01], [0.02], [0.05]])
    assert select_for_oracle(mean, std, ["A", "B", "C"], _targets(), 1) == [0]
    assert select_for_oracle(mean, std, ["A", "B", "C"], _targets(), 1, credited={"A"}) == [1]
    assert select_for_oracle(mean, std, ["A", "B", "C"], _targets(), 2, credited={"A", "B"})[0] == 2


def test_small_pools_and_zero_k():
    mean, std = np.array([[1.0], [0.97]]), np.array([[0.01], [0.01]])
    assert select_for_oracle(mean, std, ["a", "b"], _targets(), 5) == [0, 1]
    assert select_for_oracle(mean, std, ["a", "b"], _targets(), 0) == []
    assert select_for_oracle(np.zeros((0, 1)), np.zeros((0, 1)), [], _targets(), 3) == []
