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


def test_closeness_is_one_inside_and_falls_off_within_a_few_half_widths():
    d = np.array([0.0, 1.0, 3.0, 14.0])
    c = closeness(d)
    assert c[0] == 1.0 and c[1] == pytest.approx(np.exp(-0.5)) and c[2] < 0.012 and c[3] < 1e-40
    # the shaping term of a trial without hits: a tenth of the closeness per sample
    assert trial_score(np.full(64, 1.0), 64) == pytest.approx(0.1 * np.exp(-0.5))
    assert score_sem(0, 64) > 0.0  # a trial without hits still has an error
