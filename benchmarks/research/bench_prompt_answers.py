"""What the generator proposes for each prompt value, with no composition imposed (the scout's view).

For each requested band gap, draws ``--samples`` samples with the campaign's generator at temperature 1
and the full defect budget (the ``llm-fixed`` setting with the prompt value changed) and prints how
many hold an S vacancy, exactly one S vacancy and no Mo vacancy (the make-up of every mid-gap hit),
and a Mo vacancy, and how many distinct compositions there are. The reason ``bo.scout_prompts``
spreads the scout's prompts (BENCHMARKS.md, "Research explorations").

    .venv/bin/python benchmarks/research/bench_prompt_answers.py campaigns/mos2_midgap.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    from hts.campaign.config import load_campaign
    from hts.campaign.proposers import max_defects
    from hts.campaign.runner import make_proposer
    from hts.campaign.scout import composition_matrix
    from hts.hosts import get_host

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("campaign", type=Path)
    ap.add_argument("--gaps", nargs="+", type=float, default=[0.2, 0.45, 0.7, 0.9, 1.0, 1.2, 1.5])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    camp = load_campaign(args.campaign)
    host = get_host(camp.host.material, camp.host.supercell)
    proposer = make_proposer(camp, host, args.campaign.parent)
    rules = [r.name for r in host.rules]
    vs, vm = rules.index(f"vac_{host.elements[1]}"), rules.index(f"vac_{host.elements[0]}")
    print(
        f"| requested gap (eV) | with {rules[vs]} | one {rules[vs]}, no {rules[vm]} | with {rules[vm]} | compositions |"
    )
    print("| --- | --- | --- | --- | --- |")
    for gap in args.gaps:
        knobs = {"prompt_homo_lumo_gap": gap, "temperature": 1.0, "max_defects": max_defects(host, camp)}
        comp = composition_matrix(host, proposer.propose(knobs, args.samples, np.random.default_rng(args.seed)).batch)
        one = int(((comp[:, vs] == 1) & (comp[:, vm] == 0)).sum())
        distinct = len({tuple(row) for row in comp})
        print(f"| {gap} | {int((comp[:, vs] > 0).sum())} | {one} | {int((comp[:, vm] > 0).sum())} | {distinct} |")


if __name__ == "__main__":
    main()
