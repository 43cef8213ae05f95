"""How far the defect knobs alone can take a campaign: uniform random placements under each knob
setting, scored by the campaign's surrogate.

``--by switches`` (default): every subset of the campaign's defect types and every defect budget
(``bo.defect_knobs: switches``). ``--by composition``: every exact composition, a count per allowed
type, 1 to the campaign's defect budget in all (``bo.defect_knobs: composition``, the default); it
ranks the compositions llm-bo should find and shows how far apart neighbouring compositions are (why
:mod:`hts.campaign.local` probes them on a few samples each).

The best row is what ``llm-bo`` could reach if its generator placed defects at random inside the
knob region it chose; anything above it must come from the generator placing defects better than
random (its prompt). Used to read the strategy benchmark (BENCHMARKS.md). An analysis of the
surrogate, not a strategy: these samples are not counted by any benchmark.

    .venv/bin/python benchmarks/research/bench_knob_ceiling.py campaigns/mos2_midgap.yaml [--samples 512]
    .venv/bin/python benchmarks/research/bench_knob_ceiling.py campaigns/mos2_midgap.yaml --by composition --samples 200
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _settings(campaign_file: Path, by: str, samples: int, rng: np.random.Generator) -> Iterator[tuple[dict, Any]]:
    """``(row label, random batch)`` for each knob setting of the campaign."""
    from hts.campaign.config import load_campaign
    from hts.campaign.proposers import RandomProposer, campaign_rules, knob_allowed, max_defects, rule_knob
    from hts.defects import PAD, ConfigBatch
    from hts.hosts import get_host

    camp = load_campaign(campaign_file)
    host = get_host(camp.host.material, camp.host.supercell)
    names = campaign_rules(host, camp)
    k_min, k_max = max(1, camp.defects.min_defects), max_defects(host, camp)
    if by == "switches":
        for bits in itertools.product([0, 1], repeat=len(names)):
            if not any(bits):
                continue
            knobs = {rule_knob(r): b for r, b in zip(names, bits, strict=True)}
            for k in range(k_min, k_max + 1):
                proposer = RandomProposer(host, camp)
                proposer.allowed = knob_allowed(host, proposer.allowed, knobs)
                proposer.sites = np.flatnonzero(proposer.allowed.any(axis=1))
                rules_on = [r for r, b in zip(names, bits, strict=True) if b]
                yield {"rules": rules_on, "max_defects": k}, proposer.propose({"max_defects": k}, samples, rng).batch
        return
    rules = [r for r in host.rules if r.name in set(names)]
    for comp in itertools.product(range(k_max + 1), repeat=len(rules)):
        k = sum(comp)
        if not k_min <= k <= k_max:
            continue
        sites = np.full((samples, k), PAD, dtype=np.int32)
        codes = np.zeros((samples, k), dtype=np.int8)
        col = 0
        for rule, count in zip(rules, comp, strict=True):
            if count:  # two rules on one element (a vacancy and a substitution) draw from one pool
                pool = host.sites_of(rule.element)
                for i in range(samples):
                    sites[i, col : col + count] = rng.choice(np.setdiff1d(pool, sites[i, :col]), count, replace=False)
                codes[:, col : col + count] = host.code_of(rule.new_species)
                col += count
        label = {"composition": {r.name: c for r, c in zip(rules, comp, strict=True) if c}}
        yield label, ConfigBatch(host, sites, codes).sorted_rows()


def ceiling(campaign_file: Path, samples: int, seed: int, by: str = "switches") -> list[dict]:
    """One row per knob setting (``--by``), with its unique hits per 1,000 random samples, best first."""
    from hts.campaign.config import load_campaign
    from hts.campaign.objective import distances
    from hts.campaign.runner import resolve_model
    from hts.canonical import canonical_hashes, canonicalize
    from surrogate.model import SurrogateModel

    camp = load_campaign(campaign_file)
    path = resolve_model(camp.surrogate.model, "surrogate", campaign_file.parent, host=camp.host.material)
    if path is None:
        raise SystemExit(f"{campaign_file} names no surrogate")
    model = SurrogateModel.load(path)
    rows = []
    for label, batch in _settings(campaign_file, by, samples, np.random.default_rng(seed)):
        pred = model.predict(batch)
        d, _ = distances(pred.mean, list(pred.targets), camp.targets)
        hashes = canonical_hashes(canonicalize(batch))
        unique_hits = len({h for h, dist in zip(hashes, d, strict=True) if dist == 0})
        rows.append({**label, "hits_per_1000": 1000.0 * unique_hits / samples})
    rows.sort(key=lambda r: -r["hits_per_1000"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("campaigns", nargs="+", type=Path)
    ap.add_argument("--by", choices=["switches", "composition"], default="switches")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="write every row as JSON here")
    args = ap.parse_args()
    out = {}
    for c in args.campaigns:
        rows = ceiling(c, args.samples, args.seed, args.by)
        out[c.stem] = rows
        print(f"\n{c.stem}: best of {len(rows)} knob settings (unique hits per 1,000 random samples)")
        for r in rows[: args.top]:
            if args.by == "composition":
                comp = ", ".join(f"{n} {name}" for name, n in r["composition"].items())
                print(f"  {r['hits_per_1000']:6.1f}  {comp}")
            else:
                print(f"  {r['hits_per_1000']:6.1f}  rules {', '.join(r['rules'])}; max_defects {r['max_defects']}")
        if args.by == "switches":
            everything = [r for r in rows if len(r["rules"]) == max(len(x["rules"]) for x in rows)]
            mean_all = np.mean([r["hits_per_1000"] for r in everything])
            print(f"  {mean_all:6.1f}  every rule on, averaged over the budgets (about what `random` gets)")
        else:
            print(f"  {sum(r['hits_per_1000'] >= 300 for r in rows)} of {len(rows)} compositions reach 300")
    print(json.dumps({k: v[: args.top] for k, v in out.items()}))
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
