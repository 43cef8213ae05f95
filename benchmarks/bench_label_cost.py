"""Cost of labelling a host: one xTB single point on the pristine cell and on high-density defected cells.

What a labelling plan needs before hours of compute go into it: seconds per structure for a host, a
supercell and the host's xTB method (GFN2-xTB for InSe and GaSe, GFN1-xTB otherwise), on one thread as
``hts data label`` workers run. Defected cells are drawn like the bundled datasets' (``hts data generate
--density high``) at the given concentrations.

Run (one thread, as a labelling worker):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_label_cost.py --host GaSe --supercell 6x6 5x5 \\
        --out benchmarks/results/label_cost_gase.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np


def time_cells(host_name: str, supercell: str, concentrations: list[float], seed: int) -> list[dict[str, Any]]:
    """Seconds, atoms and band gap of the pristine cell and one defected cell per concentration."""
    from hts.generate import sample_high_density
    from hts.hosts import default_oracle_method, get_host
    from hts.oracle.xtb import XTBOracle

    host = get_host(host_name, (*(int(x) for x in supercell.split("x")), 1))
    oracle = XTBOracle(default_oracle_method(host.name))
    rng = np.random.default_rng(seed)
    cells = [("pristine", host.pristine_structure())]
    cells += [(f"{c:.1%}", sample_high_density(host, c, rng).to_structure()) for c in concentrations]
    rows = []
    for label, structure in cells:
        t0 = time.perf_counter()
        result = oracle.compute(structure)
        rows.append(
            {
                "host": host.key,
                "method": oracle.method,
                "cell": label,
                "atoms": len(structure),
                "seconds": round(time.perf_counter() - t0, 1),
                "gap_eV": getattr(result, "homo_lumo_gap", None),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", required=True)
    p.add_argument("--supercell", nargs="+", default=["6x6"])
    p.add_argument("--concentrations", nargs="+", type=float, default=[0.05, 0.125])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    rows = [r for sc in args.supercell for r in time_cells(args.host, sc, args.concentrations, args.seed)]
    if args.out is not None:
        machine = f"{platform.node()} {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
        args.out.write_text(json.dumps({"machine": machine, "load": os.getloadavg(), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
