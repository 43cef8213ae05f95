"""The oracle's residuals as a Gaussian process over descriptors (hts.campaign.learning)."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.learning import R0, VerifiedResiduals
from hts.hosts import get_host

HOST = get_host("MoS2", (4, 4, 1))  # Mo 0-15, S 16-47
ONE_VS = ["16:VAC", "29:VAC", "44:VAC"]  # one S vacancy: the same descriptors wherever it sits
DENSE = "0:VAC,1:VAC,2:VAC,16:VAC,17:VAC,18:VAC,3:W,4:W"  # nothing like one vacancy


def test_nothing_verified_changes_nothing():
    mean, std = np.array([[1.0]]), np.array([[0.02]])
    assert VerifiedResiduals(HOST).posterior(["16:VAC"], mean, std) == (mean, std)


def test_a_residual_moves_a_candidate_with_the_same_descriptors_by_r0_of_it():
    learn = VerifiedResiduals(HOST)
    learn.add(ONE_VS[0], [0.98], [0.02], [0.94])  # xTB 0.04 eV below the surrogate
    mean, std = learn.posterior([ONE_VS[1]], np.array([[0.98]]), np.array([[0.02]]))
    assert mean[0, 0] == pytest.approx(0.98 - R0 * 0.04)
    assert std[0, 0] == pytest.approx(0.02 * np.sqrt(1 - R0**2))


def test_two_agreeing_residuals_move_a_third_placement_further():
    learn = VerifiedResiduals(HOST)
    for d in ONE_VS[:2]:
        learn.add(d, [0.98], [0.02], [0.94])
    mean, _ = learn.posterior([ONE_VS[2]], np.array([[0.98]]), np.array([[0.02]]))
    assert mean[0, 0] == pytest.approx(0.98 - 2 * R0 / (1 + R0) * 0.04)


def test_a_different_make_up_barely_moves_and_unverifiable_results_are_left_out():
    learn = VerifiedResiduals(HOST)
    learn.add(ONE_VS[0], [0.98], [0.02], [0.94])
    learn.add(ONE_VS[1], [0.98], [0.02], [float("nan")])  # a failed SCF: no value
    assert len(learn) == 1
    mean, std = learn.posterior([DENSE, ONE_VS[2]], np.array([[0.5], [0.98]]), np.array([[0.1], [0.02]]))
    assert abs(mean[0, 0] - 0.5) < 0.01 * 0.04 and std[0, 0] == pytest.approx(0.1, rel=1e-4)
    assert mean[1, 0] == pytest.approx(0.98 - R0 * 0.04)
