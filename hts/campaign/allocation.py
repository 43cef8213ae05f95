"""How many of an iteration's exploration trials ``llm-bo`` gives to its exploited setting instead.

With ``bo.exploit_trials: 1`` of two trials per iteration, half of a campaign's budget goes on
exploring after a good setting is found. On the session-8 benchmark the exploited setting hit in
50-60 of 64 samples per trial while most of Ax's trials beside it hit in none: the campaign wants
hits, and each of those trials cost as many samples as a re-run of the setting that hits.

So, with ``bo.adaptive_exploit``, each remaining slot of an iteration is decided by a Thompson draw
between two arms, by their hit rates per sample: the exploited setting (its last
:data:`RECENT_EXPLOIT` runs) and exploration (the last :data:`RECENT` of Ax's and the local trials).
Both are recent rates because both drift: a hit is a *new* unique candidate, and re-running a narrow
composition uses its distinct hits up (on the mid-gap target, seed 2, an exploited setting fell from
25-33 hits per 64 samples in its first re-runs to 6-14 in its last ten). A slot goes to the
setting when its draw is higher. Exploration that hits as often keeps its slots; exploration that
does not loses them. Every ``bo.explore_every``-th iteration keeps its exploration trials whatever
the draws, so that Ax keeps learning and a better setting can still be found (the exploited setting
is always the incumbent's best, :mod:`hts.campaign.incumbent`).

Off by default. Measured (BENCHMARKS.md, session 9): more hits where the exploited setting keeps
hitting (formation energy 682 -> 837 per 1,000, the two HOMO/LUMO windows +4 % and +7 %), fewer on
the mid-gap target (401 -> 316): there Ax's trials hit in almost none of their samples until one
finds a much better setting, a value a comparison of immediate hit rates cannot see, so the draws
took the trials that would have found it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECENT = 8
"""Exploration trials (the most recent) whose hits estimate exploration's hit rate."""

RECENT_EXPLOIT = 2
"""Runs of the exploited setting (the most recent) whose hits estimate its hit rate."""


def extra_exploit_slots(
    exploit: tuple[int, int], explore: Sequence[tuple[int, int]], slots: int, rng: np.random.Generator
) -> int:
    """Of ``slots`` exploration slots, how many go to the exploited setting.

    ``exploit`` is the setting's recent ``(hits, samples)``; ``explore`` the ``(hits, samples)`` of recent
    exploration trials (only the last :data:`RECENT` count). One Thompson draw per slot from the
    Beta(1 + hits, 1 + misses) posterior of each arm's hit rate; no exploration yet: no slot moves.
    """
    recent = list(explore)[-RECENT:]
    if slots <= 0 or not recent:
        return 0
    h_e, n_e = exploit
    h_x, n_x = sum(h for h, _ in recent), sum(n for _, n in recent)
    p_exploit = rng.beta(1 + h_e, 1 + max(0, n_e - h_e), size=slots)
    p_explore = rng.beta(1 + h_x, 1 + max(0, n_x - h_x), size=slots)
    return int((p_exploit > p_explore).sum())
