"""Exploration for issue 6: unique hits per 1,000 uniform random samples when each defect type has a
maximum count (``--mode caps``: counts uniform in 0..cap per type, caps from {0, 1, 2, k_max}) or an exact
count (``--mode exact``: a few hand-picked compositions; ``--mode all``: every composition within the
campaign's defect bounds, printing how many of them hit at all), scored by the campaign's surrogate. Read
against ``bench_knob_ceiling.py`` (on/off switches only) to judge whether per-type count knobs are worth
building. Slow in ``caps`` mode (~250 settings x 512 samples).

    .venv/bin/python benchmarks/research/bench_count_caps.py campaigns/mos2_midgap.yaml --mode caps
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

EXACT = [
    {"vac_S": 1},
    {"vac_S": 1, "Mo->W": 1},
    {"vac_S": 1, "S->Se": 2},
    {"vac_S": 1, "S->Se": 3, "Mo->W": 1},
    {"vac_S": 1, "S->Se": 4, "Mo->W": 2},
    {"vac_S": 2},
    {"vac_S": 2, "S->Se": 2},
]


def main() -> None:
    from hts.campaign.config import load_campaign
    from hts.campaign.objective import distances
    from hts.campaign.proposers import campaign_rules, max_defects
    from hts.campaign.runner import resolve_model
    from hts.canonical import canonical_hashes, canonicalize
    from hts.defects import ConfigBatch, DefectConfiguration
    from hts.hosts import get_host
    from llm.sampling import rule_mask
    from surrogate.model import SurrogateModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("campaign", type=Path)
    ap.add_argument("--mode", choices=["caps", "exact", "all"], default="exact")
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    camp = load_campaign(args.campaign)
    host = get_host(camp.host.material, camp.host.supercell)
    path = resolve_model(camp.surrogate.model, "surrogate", args.campaign.parent, host=camp.host.material)
    if path is None:
        raise SystemExit(f"{args.campaign} names no surrogate")
    model = SurrogateModel.load(path)
    rules = campaign_rules(host, camp)
    index = {r.name: i for i, r in enumerate(host.rules)}
    masks = {r: rule_mask(host, [index[r]]) for r in rules}
    k_max = max_defects(host, camp)
    rng = np.random.default_rng(args.seed)

    def hits(draw_counts) -> tuple[float, dict[str, float]]:
        configs = []
        for _ in range(args.samples):
            defects: dict[int, str] = {}
            for rule, count in draw_counts().items():
                m = masks[rule]
                free = [s for s in np.flatnonzero(m.any(axis=1)) if int(s) not in defects]
                for s in rng.choice(free, size=count, replace=False):
                    defects[int(s)] = host.species_codes[int(np.flatnonzero(m[s])[0])]
            if defects and len(defects) <= k_max:
                configs.append(DefectConfiguration.from_mapping(host, defects))
        if not configs:
            return 0.0, {}
        batch = ConfigBatch.from_configs(configs)
        pred = model.predict(batch)
        d, _ = distances(pred.mean, list(pred.targets), camp.targets)
        hashes = canonical_hashes(canonicalize(batch))
        medians = {
            t: round(float(np.median(pred.mean[:, j])), 2) for j, t in enumerate(pred.targets) if t in camp.targets
        }
        return 1000.0 * len({h for h, x in zip(hashes, d, strict=True) if x == 0}) / args.samples, medians

    rows = []
    if args.mode == "exact":
        for comp in (c for c in EXACT if set(c) <= set(rules)):
            rows.append((*hits(lambda c=comp: c), comp))
    elif args.mode == "all":
        k_min = max(1, camp.defects.min_defects)
        for counts in itertools.product(range(k_max + 1), repeat=len(rules)):
            if k_min <= sum(counts) <= k_max:
                comp = {r: c for r, c in zip(rules, counts, strict=True) if c}
                rows.append((*hits(lambda c=comp: c), comp))
        print(f"{sum(r[0] > 0 for r in rows)} of {len(rows)} compositions give a hit")
    else:
        for caps in itertools.product([0, 1, 2, k_max], repeat=len(rules)):
            if any(caps):
                cap = dict(zip(rules, caps, strict=True))
                rows.append((*hits(lambda c=cap: {r: int(rng.integers(0, v + 1)) for r, v in c.items()}), cap))
    for h, medians, setting in sorted(rows, key=lambda r: -r[0])[:8]:
        print(f"{h:6.1f}  {setting}  median predicted {medians}")


if __name__ == "__main__":
    main()
