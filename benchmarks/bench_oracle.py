"""Benchmark: one GFN1-xTB single point on pristine 8x8 MoS2 (192 atoms), bundled vs fast BLAS.

Each variant runs in a fresh process (the BLAS a process binds to is fixed once tblite is loaded):

    .venv/bin/python benchmarks/bench_oracle.py [--variants bundled fast] [--repeat 1]

Prints a table and writes benchmarks/results/oracle.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time
from hts.hosts import get_host
from hts.oracle.xtb import XTBOracle
from hts.oracle.blas import blas_provider
fast = sys.argv[1] == "fast"
s = get_host("MoS2").pristine_structure()
o = XTBOracle(fast_blas=fast)
t = time.perf_counter()
r = o.compute(s)
print(json.dumps({"wall_s": time.perf_counter() - t, "gap": r.homo_lumo_gap, "status": r.scf_status,
                  "blas": blas_provider(), "cpu_s": time.process_time()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", nargs="+", default=["bundled", "fast"])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    rows = []
    for v in args.variants:
        for _ in range(args.repeat):
            env = {**os.environ}
            if v == "bundled":
                env["HTS_FAST_BLAS"] = "0"
            out = subprocess.run([sys.executable, "-c", CHILD, v], capture_output=True, text=True, env=env, check=True)
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            rec["variant"] = v
            rows.append(rec)
            print(
                f"{v:<8} {rec['wall_s']:8.1f} s  gap {rec['gap']:.3f} eV  {rec['status']}  blas={rec['blas']}",
                flush=True,
            )
    res = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "structure": "MoS2 8x8 pristine, 192 atoms",
        "rows": rows,
    }
    out_path = Path(__file__).parent / "results" / "oracle.json"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
