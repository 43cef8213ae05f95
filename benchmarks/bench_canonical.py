"""Benchmark: canonical hashing of random 8x8 MoS2 configurations on one core.

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_canonical.py [--n 10000]
Prints a table and writes benchmarks/results/canonical.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from hts.canonical import canonical_hashes, canonicalize
from hts.defects import PAD, ConfigBatch
from hts.hosts import get_host


def random_batch(host, n: int, rng: np.random.Generator, k_max: int = 24) -> ConfigBatch:
    """n random valid configurations with 1..k_max defects (uniform), as padded arrays."""
    sites = np.full((n, k_max), PAD, dtype=np.int32)
    codes = np.zeros((n, k_max), dtype=np.int8)
    ks = rng.integers(1, k_max + 1, size=n)
    for i, k in enumerate(ks):
        s = rng.choice(host.n_sites, size=k, replace=False)
        sites[i, :k] = np.sort(s)
        for j, site in enumerate(sites[i, :k]):
            codes[i, j] = rng.choice(np.flatnonzero(host.allowed[site]))
    return ConfigBatch(host, sites, codes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    host = get_host("MoS2")
    t = time.perf_counter()
    _ = host.symmetry_permutations
    setup = time.perf_counter() - t
    batch = random_batch(host, args.n, np.random.default_rng(0))
    canonical_hashes(ConfigBatch(host, batch.sites[:10], batch.codes[:10]))  # build the tables once
    times_h, times_c = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        canonical_hashes(batch)
        times_h.append(time.perf_counter() - t)
        t = time.perf_counter()
        canonicalize(batch)
        times_c.append(time.perf_counter() - t)
    res = {
        "n_configs": args.n,
        "defects_per_config": "uniform 1..24",
        "symmetry_ops": int(host.symmetry_permutations.shape[0]),
        "symmetry_setup_s": round(setup, 3),
        "canonical_hashes_s_best": round(min(times_h), 3),
        "canonicalize_s_best": round(min(times_c), 3),
        "configs_per_s": round(args.n / min(times_h)),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible",
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    print(f"{'quantity':<28}{'value':>14}")
    for k, v in res.items():
        print(f"{k:<28}{v!s:>14}")
    out = Path(__file__).parent / "results" / "canonical.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
