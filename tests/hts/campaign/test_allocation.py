"""Exploration slots weighed by value against cost (hts.campaign.allocation)."""

from __future__ import annotations

import pytest

from hts.campaign.allocation import RECENT, extra_exploit_slots, hit_rate

DRY = [(0, 64)] * RECENT  # exploration that hits in none of its samples


def test_a_setting_without_headroom_takes_every_slot():
    """64 of 64 twice: a better setting could win at most 1/130 per sample, exploring costs ~1."""
    assert extra_exploit_slots((128, 128), DRY, tried=0, slots=3, trials_left=30) == 3


def test_headroom_early_in_a_campaign_keeps_exploring():
    """A setting that hits in half its samples, 27 trials to go, 3 tried since it was found:
    value 0.5 x 26 / 5 = 2.6 > cost 0.49."""
    assert extra_exploit_slots((64, 128), DRY, tried=3, slots=1, trials_left=27) == 0


def test_near_the_end_the_same_setting_is_exploited():
    """The same rates with 3 trials left: value 0.5 x 2 / 5 = 0.2 < cost 0.49."""
    assert extra_exploit_slots((64, 128), DRY, tried=3, slots=1, trials_left=3) == 1


def test_every_fruitless_try_lowers_the_value_of_the_next():
    """Laplace's rule: with 20 trials left, the value falls under the cost once enough tries failed."""
    explores = [extra_exploit_slots((64, 128), DRY, tried=k, slots=1, trials_left=20) == 0 for k in range(30)]
    first_exploit = explores.index(False)
    assert all(explores[:first_exploit]) and not any(explores[first_exploit:])
    assert 10 < first_exploit < 25  # 0.5 x 19 / (k + 2) <= 0.49 from k = 18 on


def test_a_used_up_setting_gives_exploration_its_slots_back():
    """Only the setting's recent runs count: once its new hits run out it leaves headroom again."""
    assert extra_exploit_slots((6, 128), DRY, tried=10, slots=1, trials_left=10) == 0


def test_exploration_that_hits_as_often_keeps_its_slots():
    """No cost: exploring loses nothing."""
    assert extra_exploit_slots((40, 64), [(40, 64)] * RECENT, tried=50, slots=2, trials_left=4) == 0


def test_later_slots_of_an_iteration_are_worth_less():
    """Two slots: the first explores (value 0.5 x 9 / 2 = 2.25), the second is a further try
    with one trial less after it (0.5 x 8 / 3 = 1.33); with cost 0.49 both explore, and with 4 trials left
    only the first does (0.75 vs 0.33)."""
    assert extra_exploit_slots((64, 128), DRY, tried=0, slots=2, trials_left=10) == 0
    assert extra_exploit_slots((64, 128), DRY, tried=0, slots=2, trials_left=4) == 1


def test_only_recent_exploration_counts():
    """Exploration that used to hit but has stopped costs what it costs now."""
    old_then_dry = [(64, 64)] * 20 + DRY
    assert extra_exploit_slots((120, 128), old_then_dry, tried=2, slots=1, trials_left=4) == 1
    assert extra_exploit_slots((120, 128), [(64, 64)] * RECENT, tried=2, slots=1, trials_left=4) == 0


def test_nothing_moves_without_slots_or_without_exploration_yet():
    assert extra_exploit_slots((60, 64), [], tried=0, slots=3, trials_left=10) == 0
    assert extra_exploit_slots((60, 64), DRY, tried=0, slots=0, trials_left=10) == 0


def test_hit_rate_is_the_posterior_mean():
    assert hit_rate(0, 0) == pytest.approx(0.5)
    assert hit_rate(64, 64) == pytest.approx(65 / 66)
    assert hit_rate(0, 62) == pytest.approx(1 / 64)
