"""Surrogate pseudo-labels: more conditional examples than the oracle has labelled (distillation).

With a few hundred oracle labels the instruction set is too small for the generator to learn how
properties map to defect patterns. A surrogate trained on those labels can label any number of
configurations cheaply; examples built from its predictions teach the generator the surrogate's
property landscape, which is the landscape the campaign loop optimises anyway. Such examples are
marked ``source = "surrogate"`` in the JSONL (oracle-labelled ones ``"label"``), and their number is
recorded in the dataset manifest, so a conditioning figure can always be told apart from one of a
generator trained on oracle labels only.

The structures pseudo-labelled are the dataset's unlabelled structures (its own mix of defect
types and concentrations) and, optionally, uniform random configurations under the host's rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hts.defects import DefectConfiguration
from hts.errors import ConfigError
from hts.hosts import Host
from llm.metrics import PredictFn


@dataclass
class PseudoLabelledSet:
    """Configurations with surrogate-predicted properties; fits :class:`llm.dataset.DatasetLike`."""

    host: Host
    ids: list[str]
    configs: list[DefectConfiguration]
    table: Any  # pandas DataFrame indexed by id, one column per predicted property


def unlabelled(
    ids: Sequence[str], configs: Sequence[DefectConfiguration], table: Any, columns: Sequence[str]
) -> tuple[list[str], list[DefectConfiguration]]:
    """The ids and configurations of ``table`` rows with no finite value in any of ``columns``."""
    present = [c for c in columns if c in table.columns]
    if not present:
        return list(ids), list(configs)
    vals = table.reindex(list(ids))[present].to_numpy(dtype=float)
    keep = ~np.isfinite(vals).any(axis=1)
    return [i for i, k in zip(ids, keep, strict=True) if k], [c for c, k in zip(configs, keep, strict=True) if k]


def pseudo_label(
    host: Host,
    ids: Sequence[str],
    configs: Sequence[DefectConfiguration],
    predict: PredictFn,
    properties: Sequence[str],
) -> PseudoLabelledSet:
    """Label ``configs`` with ``predict`` (property -> array of means), keeping ``properties`` it gives."""
    import pandas as pd

    if len(ids) != len(configs):
        raise ConfigError(f"{len(ids)} ids for {len(configs)} configurations")
    pred = predict(list(configs)) if configs else {}
    cols = {p: np.asarray(pred[p], dtype=float) for p in properties if p in pred}
    if configs and not cols:
        raise ConfigError(
            f"the surrogate predicts none of the properties {', '.join(properties)}; it predicts {', '.join(pred)}"
        )
    table = pd.DataFrame(cols, index=pd.Index(list(ids), name="_id"))
    return PseudoLabelledSet(host, list(ids), list(configs), table)
