"""What each exact defect composition can give: random placements scored by the campaign's surrogate.

For every composition the campaign allows (a count per allowed defect type, 1 to the campaign's defect
budget in all), ``--samples`` configurations with those defects placed uniformly at random are scored,
and the fraction inside every target window is reported, best first. With ``bo.defect_knobs:
composition`` llm-bo chooses the composition and the model the placement, so this ranks the
compositions llm-bo should find, and shows how far apart neighbouring compositions are (why
:mod:`hts.campaign.local` probes them on a few samples each). An analysis of the surrogate, not a
strategy: these samples are not counted by any benchmark.

    .venv/bin/python benchmarks/bench_composition_ceiling.py campaigns/mos2_midgap.yaml [--samples 200]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np


def composition_rates(campaign_file: Path, samples: int, seed: int) -> list[dict]:
    """``{"composition", "hit_rate", "unique_hits"}`` per composition, best first."""
    from hts.campaign.config import load_campaign
    from hts.campaign.objective import distances
    from hts.campaign.proposers import campaign_rules, max_defects
    from hts.campaign.runner import resolve_model
    from hts.canonical import canonical_hashes, canonicalize
    from hts.defects import PAD, ConfigBatch
    from hts.hosts import get_host
    from surrogate.model import SurrogateModel

    camp = load_campaign(campaign_file)
    host = get_host(camp.host.material, camp.host.supercell)
    path = resolve_model(camp.surrogate.model, "surrogate", campaign_file.parent)
    if path is None:
        raise SystemExit(f"{campaign_file} names no surrogate")
    model = SurrogateModel.load(path)
    allowed = set(campaign_rules(host, camp))
    rules = [r for r in host.rules if r.name in allowed]
    k_min, k_max = max(1, camp.defects.min_defects), max_defects(host, camp)
    rng = np.random.default_rng(seed)
    rows = []
    for comp in itertools.product(range(k_max + 1), repeat=len(rules)):
        k = sum(comp)
        if not k_min <= k <= k_max:
            continue
        sites = np.full((samples, k), PAD, dtype=np.int32)
        codes = np.zeros((samples, k), dtype=np.int8)
        col = 0
        for rule, count in zip(rules, comp, strict=True):
            if not count:
                continue
            # sites of one element are drawn for one rule only (two rules on one element share a pool)
            pool = host.sites_of(rule.element)
            taken = sites[:, :col]
            for i in range(samples):
                free = np.setdiff1d(pool, taken[i], assume_unique=False)
                sites[i, col : col + count] = rng.choice(free, count, replace=False)
            codes[:, col : col + count] = host.code_of(rule.new_species)
            col += count
        batch = ConfigBatch(host, sites, codes).sorted_rows()
        pred = model.predict(batch)
        d, _ = distances(pred.mean, list(pred.targets), camp.targets)
        hashes = canonical_hashes(canonicalize(batch))
        rows.append(
            {
                "composition": {r.name: c for r, c in zip(rules, comp, strict=True) if c},
                "hit_rate": float((d == 0).mean()),
                "unique_hits": len({h for h, x in zip(hashes, d, strict=True) if x == 0}),
            }
        )
    rows.sort(key=lambda r: -r["hit_rate"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("campaigns", nargs="+", type=Path)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "composition_ceiling.json")
    args = ap.parse_args()
    out = {}
    for cf in args.campaigns:
        rows = composition_rates(cf, args.samples, args.seed)
        out[cf.stem] = rows
        print(f"\n{cf.stem}: {len(rows)} compositions, {sum(r['hit_rate'] >= 0.3 for r in rows)} hit in >= 30 %")
        print("| composition | hit rate (random placement) | unique hits |\n| --- | --- | --- |")
        for r in rows[: args.top]:
            comp = ", ".join(f"{c} {name}" for name, c in r["composition"].items())
            print(f"| {comp} | {100 * r['hit_rate']:.1f} % | {r['unique_hits']} |")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
