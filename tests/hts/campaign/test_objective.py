"""The trial metric: new hits first, closeness to the windows as a tie-breaker."""

from __future__ import annotations

import numpy as np

from hts.campaign.objective import trial_score


def test_hits_outweigh_near_misses():
    near_misses = trial_score(np.full(64, 0.14), 64)  # every sample just outside a window
    some_hits = trial_score(np.array([0.0] * 8 + [20.0] * 56), 64)  # 1 in 8 a hit, the rest far off
    assert some_hits > near_misses > trial_score(np.full(64, 20.0), 64) >= 0.0
    assert trial_score(np.zeros(64), 64) == 1.1  # all hits: 1 + the full closeness term
    assert trial_score(np.zeros(0), 64) == 0.0 and trial_score(np.zeros(3), 0) == 0.0  # nothing new / nothing drawn
