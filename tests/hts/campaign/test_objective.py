"""The trial metric: new hits first, closeness to the windows as a tie-breaker."""

from __future__ import annotations

import numpy as np
import pytest

from hts.campaign.objective import closeness, score_sem, trial_score


def test_hits_outweigh_near_misses():
    near_misses = trial_score(np.full(64, 0.14), 64)  # every sample just outside a window
    some_hits = trial_score(np.array([0.0] * 8 + [20.0] * 56), 64)  # 1 in 8 a hit, the rest far off
    assert some_hits > near_misses > trial_score(np.full(64, 20.0), 64) >= 0.0
    assert trial_score(np.zeros(64), 64) == 1.1  # all hits: 1 + the full closeness term
    assert trial_score(np.zeros(0), 64) == 0.0 and trial_score(np.zeros(3), 0) == 0.0  # nothing new / nothing drawn


def test_closeness_orders_trials_far_from_the_windows():
    """The mid-gap campaign's trials without a hit: no vacancy (d ~ 14), a Mo vacancy (d ~ 8), three S
    vacancies (d ~ 2). Each step towards the window must score more, and the gaps between them must be
    larger than the binomial error Ax is given for a trial of 64 samples without a hit."""
    far, mo_vac, s_vacs = (trial_score(np.full(64, d), 64) for d in (14.0, 8.0, 2.0))
    sem = score_sem(0, 64)
    assert s_vacs - mo_vac > sem and mo_vac - far > 0.0
    assert closeness(np.array([0.0]))[0] == 1.0
    assert trial_score(np.full(64, 8.0), 64, width=1.0) < trial_score(np.full(64, 8.0), 64, width=3.0)


def test_closeness_width_must_be_positive():
    with pytest.raises(ValueError, match="width"):
        closeness(np.zeros(2), width=0.0)
