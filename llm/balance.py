"""Balancing an instruction set over one property's range (resampling by value bins).

Defect datasets are lopsided: most MoS2 configurations with a vacancy have a band gap under 0.5 eV,
and few keep the pristine-like 1.8 eV. A generator trained on such a set learns the common values
well and the rare ones hardly at all, while a campaign may ask for any value in the range. Here the
training examples conditioned on ``property`` are put into equal-width bins over their range and each
non-empty bin is resampled to the same count (without replacement where it has more, with
replacement where it has fewer), so that the total stays the same. Examples that do not condition on
the property and the validation split are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from hts.errors import ConfigError
from llm.dataset import InstructionExample
from llm.properties import canonical_property


def balance_examples(
    examples: Sequence[InstructionExample], prop: str, bins: int = 10, seed: int = 0
) -> tuple[list[InstructionExample], dict[str, Any]]:
    """Resample the training examples conditioned on ``prop`` to a flat histogram over ``bins`` bins.

    Returns the new list (validation and other examples unchanged, in their order, then the resampled
    ones) and a summary for the manifest: the bin edges and the counts before and after.
    Repeated examples get ids ending in ``~r<k>``.
    """
    prop = canonical_property(prop)
    if bins < 2:
        raise ConfigError(f"balance bins must be >= 2, got {bins}")
    pick = [i for i, e in enumerate(examples) if e.split == "train" and prop in e.targets]
    if not pick:
        raise ConfigError(f"no training example conditions on {prop!r}: nothing to balance")
    values = np.array([examples[i].targets[prop] for i in pick], dtype=float)
    lo, hi = float(values.min()), float(values.max())
    edges = np.linspace(lo, hi, bins + 1) if hi > lo else np.array([lo, lo + 1.0])
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    before = np.bincount(which, minlength=len(edges) - 1)
    target = round(len(pick) / max(1, int((before > 0).sum())))
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for b in np.flatnonzero(before):
        members = np.flatnonzero(which == b)
        chosen.extend(rng.choice(members, size=target, replace=members.size < target).tolist())
    keep = set(pick)
    out = [e for i, e in enumerate(examples) if i not in keep]
    seen: dict[int, int] = {}
    for j in sorted(chosen):
        ex = examples[pick[j]]
        k = seen.get(j, 0)
        seen[j] = k + 1
        out.append(ex if k == 0 else replace(ex, id=f"{ex.id}~r{k}"))
    after = np.bincount(which[np.asarray(chosen, dtype=int)], minlength=len(edges) - 1)
    summary = {
        "property": prop,
        "edges": [round(float(x), 6) for x in edges],
        "before": before.tolist(),
        "after": after.tolist(),
    }
    return out, summary
