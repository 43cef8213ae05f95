"""How many of an iteration's exploration trials ``llm-bo`` gives to its exploited setting instead.

With ``bo.exploit_trials: 1`` of two trials per iteration, half of a campaign's budget goes on
exploring after a good setting is found. On the easier benchmark targets the exploited setting hits
in 64 of 64 samples while Ax's trials beside it mostly hit in none: exploring there can only lose
hits, because no setting can hit in more than every sample. On the mid-gap target the exploited
setting hits in 20-50 % of its samples and Ax's trials hit in almost none, until one finds a setting
with ~60 of 64: exploring there is what the campaign needs, although its immediate hit rate is lower.

So each remaining slot of an iteration weighs the *value* of one more
exploration trial against its *cost*, in hits per sample:

- cost: the exploited setting's hit rate minus exploration's, ``p_exploit - p_explore`` (posterior
  means, Beta(1 + hits, 1 + misses), of the setting's last :data:`RECENT_EXPLOIT` runs and of the
  last :data:`RECENT` exploration trials). Both are recent rates because a hit is a *new* unique
  candidate: re-running a narrow composition uses its distinct hits up.
- value: an upper bound on what the trial can win. If it finds a better setting, that setting can
  hit in at most every sample, and it would be exploited in every trial the campaign has left:
  ``(1 - p_exploit) x trials_left``. The chance that it finds one is Laplace's rule of succession
  over the exploration trials run since the exploited setting was found and did not beat it,
  ``1 / (tried + 2)``.

A slot explores while value > cost, and exploits from the first slot where it is not. The rule
explores early, while much budget is left and little has been tried; it stops exploring when the
exploited setting leaves no headroom (64 of 64) or the campaign is near its end; and it explores
again when the exploited setting's new hits run out. The value is an upper bound, so where the
rule errs it errs towards exploring.
"""

from __future__ import annotations

from collections.abc import Sequence

RECENT = 8
"""Exploration trials (the most recent) whose hits estimate exploration's hit rate."""

RECENT_EXPLOIT = 2
"""Runs of the exploited setting (the most recent) whose hits estimate its hit rate."""


def hit_rate(hits: int, samples: int) -> float:
    """Posterior mean hit rate per sample under a uniform prior: ``(1 + hits) / (2 + samples)``."""
    return (1 + hits) / (2 + max(samples, hits))


def extra_exploit_slots(
    exploit: tuple[int, int],
    explore: Sequence[tuple[int, int]],
    tried: int,
    slots: int,
    trials_left: int,
) -> int:
    """Of ``slots`` exploration slots, how many go to the exploited setting.

    ``exploit`` is the setting's recent ``(hits, samples)``; ``explore`` the ``(hits, samples)`` of
    exploration trials in order (only the last :data:`RECENT` count); ``tried`` the number of
    exploration trials since the setting was first run; ``trials_left`` the trials the campaign has
    left, these slots included. No exploration yet: no slot moves.
    """
    recent = list(explore)[-RECENT:]
    if slots <= 0 or not recent:
        return 0
    p_exploit = hit_rate(*exploit)
    p_explore = hit_rate(sum(h for h, _ in recent), sum(n for _, n in recent))
    cost = p_exploit - p_explore
    for j in range(slots):
        after = max(0, trials_left - j - 1)  # the trials left once this slot has run
        value = (1.0 - p_exploit) * after / (tried + j + 2)
        if value <= cost:
            return slots - j
    return 0
