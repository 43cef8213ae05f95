"""Is a campaign's target reachable on its host, and does the surrogate find it? (for example campaigns)

A shipped example campaign must aim at something its host's labels show exists. For a campaign file,
its host's labelled dataset and surrogate this prints:

- how many labelled structures are inside every target window (by defect count);
- on the surrogate's held-out rows (its ``split.test_ids``): how many are inside by the labels, how
  many the surrogate predicts inside, and how many of those are inside (precision), with the mean hit
  probability of the predicted-inside ones under the surrogate's std.

    .venv/bin/python benchmarks/bench_reachable.py campaigns/bn_midgap_level.yaml --data datasets/bn_8x8_xtb \\
        --model models/surrogate-bn-sparse
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def inside_windows(values: np.ndarray, names: list[str], targets: Mapping[str, Any]) -> np.ndarray:
    """(N,) whether each row of ``values`` (N, len(names)) is inside every target window."""
    from hts.campaign.objective import distances

    _, excess = distances(values, names, targets)
    return np.asarray((excess <= 0).all(axis=1) & np.isfinite(values[:, [names.index(t) for t in targets]]).all(axis=1))


def main() -> None:
    from hts.campaign.acquisition import marginal_hit_probability
    from hts.campaign.config import load_campaign
    from surrogate.model import SurrogateModel
    from surrogate.training import load_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("campaign", type=Path)
    p.add_argument("--data", type=Path, required=True, help="the host's labelled dataset")
    p.add_argument("--model", type=Path, required=True, help="the host's surrogate")
    args = p.parse_args()
    campaign = load_campaign(args.campaign)
    ds = load_dataset(args.data)
    batch = ds.batch()
    names = list(campaign.targets)
    labels = ds.table[names].to_numpy(dtype=float)
    inside = inside_windows(labels, names, campaign.targets)
    n_defects = np.asarray(batch.mask.sum(axis=1))
    by_count = Counter(int(n) for n in n_defects[inside])
    labelled = np.isfinite(labels).all(axis=1)
    print(f"{args.data}: {inside.sum()} of {labelled.sum()} labelled structures inside every window")
    print("  by defect count: " + ", ".join(f"{k}: {v}" for k, v in sorted(by_count.items())))
    model = SurrogateModel.load(args.model)
    test = set(model.meta.get("split", {}).get("test_ids") or [])
    rows = np.array([i for i, sid in enumerate(ds.ids) if sid in test], dtype=np.intp)
    if rows.size == 0:
        print(f"{args.model} holds out no rows of {args.data}: no held-out figures")
        return
    pred = model.predict(batch.take(rows))
    mean = pred.mean[:, [pred.column(t) for t in names]]
    std = pred.std[:, [pred.column(t) for t in names]]
    said = inside_windows(mean, names, campaign.targets)
    truth = inside[rows]
    prob = marginal_hit_probability(mean, std, [campaign.targets[t].window for t in names])
    print(
        f"held out ({rows.size} rows): {truth.sum()} inside; the surrogate puts {said.sum()} inside, "
        f"{(said & truth).sum()} of them truly (found {(said & truth).sum()} of {truth.sum()}); mean hit "
        f"probability of those it puts inside {prob[said].mean() if said.any() else float('nan'):.2f}"
    )


if __name__ == "__main__":
    main()
