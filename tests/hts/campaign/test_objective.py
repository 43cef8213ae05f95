"""The trial metric: new hits first, closeness to the windows as a tie-breaker."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.objective import ClosenessKernel, distances, hit_probability, score_sem, trial_score


def test_hits_outweigh_near_misses():
    near_misses = trial_score(np.full(64, 0.14), 64)  # every sample just outside a window
    some_hits = trial_score(np.array([0.0] * 8 + [20.0] * 56), 64)  # 1 in 8 a hit, the rest far off
    assert some_hits > near_misses > trial_score(np.full(64, 20.0), 64) >= 0.0
    assert trial_score(np.zeros(64), 64) == 1.1  # all hits: 1 + the full closeness term
    assert trial_score(np.zeros(0), 64) == 0.0 and trial_score(np.zeros(3), 0) == 0.0  # nothing new / nothing drawn


def test_closeness_tail_orders_trials_far_from_the_windows():
    """The mid-gap campaign's trials without a hit: no vacancy (d ~ 14), a Mo vacancy (d ~ 8), three S
    vacancies (d ~ 2). With the Gaussian core alone the first two score the same (~0); with the heavy
    tail each step towards the window scores more, the last step by more than the binomial error Ax
    is given for a trial of 64 samples without a hit."""
    tail = ClosenessKernel(width=3.0, tail=1.0)
    far, mo_vac, s_vacs = (trial_score(np.full(64, d), 64, tail) for d in (14.0, 8.0, 2.0))
    assert s_vacs - mo_vac > score_sem(0, 64) and mo_vac - far > 0.0
    core = ClosenessKernel()
    assert trial_score(np.full(64, 14.0), 64, core) == pytest.approx(trial_score(np.full(64, 8.0), 64, core), abs=1e-12)
    assert core(np.array([0.0]))[0] == tail(np.array([0.0]))[0] == 1.0
    assert ClosenessKernel(width=1.0, tail=1.0)(np.array([8.0]))[0] < tail(np.array([8.0]))[0]


def test_closeness_kernel_rejects_bad_settings():
    with pytest.raises(ValueError, match="width"):
        ClosenessKernel(width=0.0)
    with pytest.raises(ValueError, match="tail"):
        ClosenessKernel(tail=1.5)


def test_expected_hits_rank_centred_candidates_above_edge_ones():
    """bo.hit_term: expected. Two trials whose candidates are all predicted hits: the one whose gaps sit
    at the window's centre scores more than the one at its edge, and a near miss still scores more
    than a far miss. With the count of predicted hits the first two would tie."""
    from hts.campaign.config import Target

    targets = {"homo_lumo_gap": Target(value=1.0, tolerance=0.05)}
    std = np.full((64, 1), 0.03)

    def score(gap: float, hit_term: str) -> float:
        mean = np.full((64, 1), gap)
        d, _ = distances(mean, ["homo_lumo_gap"], targets)
        p = hit_probability(mean, std, ["homo_lumo_gap"], targets) if hit_term == "expected" else None
        return trial_score(d, 64, p_hit=p)

    assert score(1.0, "predicted") == score(1.049, "predicted")
    assert score(1.0, "expected") > score(1.049, "expected") > score(1.06, "expected") > score(1.5, "expected")
    # a probability, not a count: at most one per sample, about one half on the window's edge
    p = hit_probability(np.array([[1.0], [1.05]]), np.array([[0.03], [0.03]]), ["homo_lumo_gap"], targets)
    assert 0.9 < p[0] <= 1.0 and abs(p[1] - 0.5) < 0.01
