"""How far the rule and budget knobs alone can take a campaign: uniform random proposals under every
subset of the campaign's defect types and every defect budget, scored by the campaign's surrogate.

The best row is what ``llm-bo`` could reach if its generator placed defects at random inside the
knob region it chose; anything above it must come from the generator placing defects better than
random (its prompt). Used to read the strategy benchmark (BENCHMARKS.md).

    .venv/bin/python benchmarks/bench_knob_ceiling.py campaigns/mos2_midgap.yaml [--samples 512]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np


def ceiling(campaign_file: Path, samples: int, seed: int) -> list[dict]:
    from hts.campaign.config import load_campaign
    from hts.campaign.objective import distances
    from hts.campaign.proposers import RandomProposer, campaign_rules, knob_allowed, max_defects, rule_knob
    from hts.campaign.runner import resolve_model
    from hts.canonical import canonical_hashes, canonicalize
    from hts.hosts import get_host
    from surrogate.model import SurrogateModel

    camp = load_campaign(campaign_file)
    host = get_host(camp.host.material, camp.host.supercell)
    path = resolve_model(camp.surrogate.model, "surrogate", campaign_file.parent)
    if path is None:
        raise SystemExit(f"{campaign_file} names no surrogate")
    model = SurrogateModel.load(path)
    rules = campaign_rules(host, camp)
    rng = np.random.default_rng(seed)
    k_min = max(1, camp.defects.min_defects)
    rows = []
    for bits in itertools.product([0, 1], repeat=len(rules)):
        if not any(bits):
            continue
        knobs = {rule_knob(r): b for r, b in zip(rules, bits, strict=True)}
        for k in range(k_min, max_defects(host, camp) + 1):
            proposer = RandomProposer(host, camp)
            proposer.allowed = knob_allowed(host, proposer.allowed, knobs)
            proposer.sites = np.flatnonzero(proposer.allowed.any(axis=1))
            batch = proposer.propose({"max_defects": k}, samples, rng).batch
            pred = model.predict(batch)
            d, _ = distances(pred.mean, list(pred.targets), camp.targets)
            hashes = canonical_hashes(canonicalize(batch))
            unique_hits = len({h for h, dist in zip(hashes, d, strict=True) if dist == 0})
            rules_on = [r for r, b in zip(rules, bits, strict=True) if b]
            rows.append({"rules": rules_on, "max_defects": k, "hits_per_1000": 1000.0 * unique_hits / samples})
    rows.sort(key=lambda r: -r["hits_per_1000"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("campaigns", nargs="+", type=Path)
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args()
    out = {}
    for c in args.campaigns:
        rows = ceiling(c, args.samples, args.seed)
        out[c.stem] = rows
        everything = [r for r in rows if len(r["rules"]) == max(len(x["rules"]) for x in rows)]
        print(f"\n{c.stem}: best of {len(rows)} knob settings (unique hits per 1,000 random samples)")
        for r in rows[: args.top]:
            print(f"  {r['hits_per_1000']:6.1f}  rules {', '.join(r['rules'])}; max_defects {r['max_defects']}")
        mean_all = np.mean([r["hits_per_1000"] for r in everything])
        print(f"  {mean_all:6.1f}  every rule on, averaged over the budgets (about what `random` gets)")
    print(json.dumps({k: v[: args.top] for k, v in out.items()}))


if __name__ == "__main__":
    main()
