"""The scout trial: ``llm-bo``'s first trial lets the model choose the composition itself.

With ``bo.defect_knobs: composition`` the knob space holds one integer count per allowed defect
type (17 for MoS2 with every type allowed) next to the prompt values and the temperature. A few
Sobol trials cover such a space thinly, and each of them spends a whole trial's samples on one
composition. The model, asked for the targets (the ``llm-fixed`` setting: the target centres in the
prompt, temperature 1, the full defect budget, every allowed type), already proposes many
compositions at once, and the adapter's conditioning makes them better than uniform guesses.

So the scout trial samples with that setting, and its candidates are **grouped by composition**;
each group becomes one completed Ax trial (:meth:`ax.Client.attach_trial`) whose parameters are the
scout's prompt values and temperature with the group's counts, and whose score is the trial score
(:func:`hts.campaign.objective.trial_score`) of the group's new candidates over the group's samples,
with a binomial standard error, so that a group of one sample weighs less than a trial of 64. These
come on top of Ax's quasi-random (Sobol) start, not in place of it: when the model's idea of the
targets is off, the groups all lie in one region, and a run that counted them as its start never
left it (BENCHMARKS.md, "Research explorations": scout groups).

The scout's samples are split over :data:`SCOUT_PROMPTS` prompt settings (:func:`scout_segments`):
the target centres first, then values spread over the prompt knobs' ranges, and its groups are keyed
by prompt setting and composition.

With ``bo.defect_knobs: switches`` the scout setting is itself a point of the knob space (the full
budget, every switch on), and it is attached as a single trial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hts.campaign.objective import score_sem, trial_score
from hts.campaign.plan import Observation, split_samples
from hts.defects import PAD, ConfigBatch
from hts.hosts import Host

SCOUT_PROMPTS = 4
"""Prompt settings the scout's samples are split over: the target centres, then values spread over the
prompt knobs' ranges (:func:`scout_segments`)."""


def scout_knobs(space: Sequence[Any], fixed: Mapping[str, Any]) -> dict[str, int | float]:
    """The scout setting over ``space`` (:class:`hts.campaign.knobs.Knob` list) without its ``n_*`` counts.

    ``llm-fixed``'s values (``fixed``) where it has them, clipped to the knob's bounds; the full
    budget and every switch on; the middle of the range for any other knob (e.g. the prompt value of
    a property the generator was trained on but the campaign does not target).
    """
    out: dict[str, int | float] = {}
    for k in space:
        if k.name.startswith("n_"):
            continue
        if k.name.startswith("rule_") or k.name == "max_defects":
            value = k.high
        elif k.name in fixed:
            value = min(max(float(fixed[k.name]), k.low), k.high)
        else:
            value = 0.5 * (k.low + k.high)
        out[k.name] = round(value) if k.kind == "int" else float(value)
    return out


def scout_segments(
    space: Sequence[Any], scout: Mapping[str, int | float], n_prompts: int, n: int, rng: np.random.Generator
) -> list[tuple[dict[str, int | float], int]]:
    """How the scout trial's ``n`` samples are split: ``(knob setting, samples)`` for ``n_prompts``
    settings (fewer when ``n`` is smaller). The first is ``scout`` itself (``llm-fixed``'s prompt);
    the others spread the ``prompt_*`` knobs over their ranges (a Latin hypercube from ``rng``),
    everything else as in ``scout``.

    Why: the model's answer to a prompt is coarse where the labels cluster. The default adapter, asked
    for a 1.0 eV gap, proposes no vacancy at all (the 1.78 eV cluster of the xTB labels), and asked for
    0.9 eV, an S vacancy in 48 of 64 samples (the 0.94 eV cluster): the compositions that hit the
    mid-gap window. One prompt value shows BO only one of those answers.
    """
    prompt = [k for k in space if k.name.startswith("prompt_") and k.high > k.low]
    k = max(1, min(n_prompts, n)) if prompt else 1
    settings = [dict(scout)]
    if k > 1:
        strata = (np.stack([rng.permutation(k - 1) for _ in prompt], axis=1) + rng.random((k - 1, len(prompt)))) / (
            k - 1
        )
        for row in strata:
            setting = dict(scout)
            for knob, u in zip(prompt, row, strict=True):
                setting[knob.name] = float(knob.low + u * (knob.high - knob.low))
            settings.append(setting)
    return list(zip(settings, split_samples(n, k), strict=True))


Segment = tuple[dict[str, int | float], int, int]
"""A part of a trial drawn in parts (the scout, a local probe): (knob setting, samples drawn, valid
samples)."""


def propose_segments(
    proposer: Any,
    host: Host,
    parts: Sequence[tuple[Mapping[str, int | float], int]],
    rng: np.random.Generator,
) -> tuple[Any, list[Segment]]:
    """Draw a trial in parts, ``(knob setting, samples)`` each, with ``proposer``
    (:class:`hts.campaign.proposers.Proposer`): one proposal of all the valid samples, part after
    part, its statistics averaged over the parts by samples drawn, and the segments for
    :func:`segmented_observations`."""
    from hts.campaign.proposers import Proposal

    drawn_parts = [(dict(s), proposer.propose(s, m, rng)) for s, m in parts]
    drawn = sum(p.n_generated for _, p in drawn_parts)
    stats = {
        k: sum(p.stats.get(k, 0.0) * p.n_generated for _, p in drawn_parts) / max(1, drawn)
        for k in drawn_parts[0][1].stats
    }
    proposal = Proposal(ConfigBatch.concat(host, [p.batch for _, p in drawn_parts]), drawn, stats)
    return proposal, [(s, p.n_generated, len(p.batch)) for s, p in drawn_parts]


def composition_matrix(host: Host, batch: ConfigBatch) -> np.ndarray:
    """(N, n_rules) int: defects of each type (the host's rule order) per row of ``batch``."""
    n_rules = len(host.rules)
    if len(batch) == 0:
        return np.zeros((0, n_rules), dtype=np.int64)
    mask = batch.sites != PAD
    rule = host.rule_index[np.where(mask, batch.sites, 0), batch.codes.astype(np.int64)]
    rule = np.where(mask, rule, n_rules)  # padding counts into a spare column, dropped below
    rows = np.repeat(np.arange(len(batch)), rule.shape[1])
    out = np.zeros((len(batch), n_rules + 1), dtype=np.int64)
    np.add.at(out, (rows, rule.ravel()), 1)
    return out[:, :n_rules]


def scout_observations(
    host: Host,
    space: Sequence[Any],
    knobs: Mapping[str, int | float],
    batch: ConfigBatch,
    n_generated: int,
    new_rows: Sequence[int],
    new_distances: np.ndarray,
) -> list[Observation]:
    """The scout trial's observations for Ax (see the module docstring).

    ``batch``: the trial's valid samples; ``new_rows``: the rows of ``batch`` that were new (not
    duplicates, not in the archive) and ``new_distances`` their distances, in the same order.
    """
    count_knobs = {k.name: k for k in space if k.name.startswith("n_")}
    if not count_knobs:  # switches: the scout setting is a point of the space
        n_hits = int((new_distances == 0.0).sum())
        score = trial_score(new_distances, n_generated)
        return [Observation(dict(knobs), score, score_sem(n_hits, n_generated), n_generated, n_hits)]
    from hts.campaign.proposers import count_knob

    comp = composition_matrix(host, batch)
    names = [count_knob(r.name) for r in host.rules]
    keys, group_of = np.unique(comp, axis=0, return_inverse=True)
    group_of = np.asarray(group_of).ravel()
    new_group = group_of[np.asarray(new_rows, dtype=np.int64)] if len(new_rows) else np.zeros(0, np.int64)
    out = []
    for g, counts in enumerate(keys):
        params: dict[str, int | float] = dict(knobs)
        outside = False
        for name, c in zip(names, counts, strict=True):
            if name in count_knobs:
                params[name] = int(c)
            elif c:  # a type outside the knob space (not allowed): cannot be described, skip the group
                outside = True
        if outside:
            continue
        n = int((group_of == g).sum())
        d = new_distances[new_group == g]
        hits = int((d == 0.0).sum())
        out.append(Observation(params, trial_score(d, n), score_sem(hits, n), n, hits))
    return out


def segmented_observations(
    host: Host,
    space: Sequence[Any],
    segments: Sequence[Segment],
    batch: ConfigBatch,
    new_rows: Sequence[int],
    new_distances: np.ndarray,
) -> list[Observation]:
    """:func:`scout_observations` of a scout trial drawn in ``segments``: ``(knob setting, samples
    drawn, valid samples)`` each, whose valid samples lie one after another in ``batch``."""
    rows = np.asarray(new_rows, dtype=np.int64)
    out: list[Observation] = []
    start = 0
    for knobs, n_generated, n_valid in segments:
        sel = (rows >= start) & (rows < start + n_valid)
        out += scout_observations(
            host,
            space,
            knobs,
            batch.take(np.arange(start, start + n_valid)),
            n_generated,
            list(rows[sel] - start),
            new_distances[sel],
        )
        start += n_valid
    return out
