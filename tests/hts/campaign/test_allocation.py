"""Thompson allocation of exploration slots to the exploited setting (hts.campaign.allocation)."""

from __future__ import annotations

import numpy as np

from hts.campaign.allocation import RECENT, extra_exploit_slots


def test_a_setting_that_hits_takes_the_slots_of_exploration_that_does_not():
    rng = np.random.default_rng(0)
    # 58 of 64 per trial over ten re-runs, against Ax trials with a hit now and then
    assert extra_exploit_slots((580, 640), [(0, 64)] * 6 + [(2, 64)] * 2, 3, rng) == 3


def test_exploration_that_hits_as_often_keeps_about_half():
    rng = np.random.default_rng(1)
    moved = extra_exploit_slots((320, 640), [(32, 64)] * RECENT, 2000, rng)
    assert 800 < moved < 1200


def test_exploration_that_hits_more_keeps_its_slots():
    rng = np.random.default_rng(2)
    assert extra_exploit_slots((10, 640), [(40, 64)] * RECENT, 50, rng) == 0


def test_only_recent_exploration_counts():
    """Exploration that used to hit but has stopped loses its slots."""
    rng = np.random.default_rng(3)
    old_then_dry = [(64, 64)] * 20 + [(0, 64)] * RECENT
    assert extra_exploit_slots((500, 640), old_then_dry, 10, rng) == 10


def test_nothing_moves_without_slots_or_without_exploration_yet():
    rng = np.random.default_rng(4)
    assert extra_exploit_slots((60, 64), [], 3, rng) == 0
    assert extra_exploit_slots((60, 64), [(0, 64)], 0, rng) == 0
