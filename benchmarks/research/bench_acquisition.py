"""Benchmark: the oracle's pool acquisition (hts.campaign.acquisition.select_for_oracle) on a
synthetic archive: N candidates, two targets (a band gap of 1.00 +- 0.05 eV and a formation energy
of 0-15 eV), G compositions, predicted means and stds drawn at random.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/research/bench_acquisition.py --n 20000 --groups 300 --k 5
Prints the wall time, the chosen rows and how many compositions they span.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hts.campaign.acquisition import select_for_oracle
from hts.campaign.config import Target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--groups", type=int, default=300)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    mean = np.c_[rng.normal(1.0, 0.1, args.n), rng.uniform(0, 15, args.n)]
    std = np.c_[rng.uniform(0.01, 0.08, args.n), rng.uniform(0.1, 0.5, args.n)]
    groups = rng.integers(0, args.groups, args.n).tolist()
    targets = {"homo_lumo_gap": Target(value=1.0, tolerance=0.05), "formation_energy": Target(range=[0.0, 15.0])}
    t0 = time.perf_counter()
    rows = select_for_oracle(mean, std, groups, targets, args.k)
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "n": args.n,
                "k": args.k,
                "wall_s": round(wall, 2),
                "rows": rows,
                "compositions": len({groups[i] for i in rows}),
            }
        )
    )


if __name__ == "__main__":
    main()
