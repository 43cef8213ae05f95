"""Resident memory of the campaign process and of each Dask worker while the scorer moves from one
refitted surrogate to the next (``DaskScorer.use_model``, what ``oracle.refit_surrogate`` does through a
night), with a chunk of configurations scored between switches, as in a campaign.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/research/bench_model_switch.py --switches 16
Prints one line per switch (RSS in MiB: campaign process, then each worker) and, last, a JSON summary
with the growth from after the first switch to the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import psutil

from hts.campaign.config import load_campaign
from hts.campaign.proposers import RandomProposer
from hts.cluster import dask_client
from hts.hosts import get_host
from surrogate.scoring import DaskScorer

ROOT = Path(__file__).resolve().parents[2]


def _rss_mib(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switches", type=int, default=16)
    ap.add_argument("--rows", type=int, default=50_000, help="configurations scored after each switch")
    args = ap.parse_args()
    model = ROOT / "models" / "surrogate-mos2-sparse"
    campaign = load_campaign(ROOT / "campaigns" / "mos2_midgap.yaml")
    proposer = RandomProposer(get_host("MoS2", (8, 8, 1)), campaign)
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        dask_client(None, 2, 1) as client,
        DaskScorer(model, client=client) as scorer,
    ):
        scorer.warm_up()
        workers = sorted(client.run(lambda: psutil.Process().pid).values())
        for i in range(args.switches):
            scorer.use_model(shutil.copytree(model, Path(tmp) / f"refit-{i}"))  # a new model each time
            for j in range(3):
                scorer.score(proposer.propose({}, args.rows, np.random.default_rng([i, j])).batch)
            rows.append([_rss_mib(p) for p in [psutil.Process().pid, *workers]])
            print(i, rows[-1], flush=True)
    first, last = np.array(rows[0]), np.array(rows[-1])
    growth = [round(float(x), 1) for x in 100 * (last - first) / first]
    print(
        json.dumps(
            {"switches": args.switches, "rss_after_first_MiB": rows[0], "rss_end_MiB": rows[-1], "growth_pct": growth}
        )
    )


if __name__ == "__main__":
    main()
