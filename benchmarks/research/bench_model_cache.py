"""Resident memory of a process that scores with one refitted surrogate after another (a campaign with
``oracle.refit_surrogate``), by how many models the per-process cache keeps (``surrogate.scoring.MAX_CACHED``).

Run (the default and the refitted models in REFITS, e.g. a campaign's ``surrogate-refit-*`` folders,
each copied three times so that every load is a new model, as after a refit):
    .venv/bin/python benchmarks/research/bench_model_cache.py --keep 2 --refits runs/x [--trim]
Prints the RSS in MiB after each model (``--trim``: ``malloc_trim`` after each).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import shutil
import tempfile
from pathlib import Path

import numpy as np
import psutil

import surrogate.scoring as scoring
from hts.defects import ConfigBatch, DefectConfiguration
from hts.hosts import get_host

ROOT = Path(__file__).resolve().parents[2]


def random_batch(n: int, seed: int = 0) -> ConfigBatch:
    """``n`` 8x8 MoS2 configurations of 1-6 S vacancies or Se substitutions."""
    host = get_host("MoS2", (8, 8, 1))
    rng = np.random.default_rng(seed)
    s_sites = [i for i, el in enumerate(host.site_species) if el == "S"]
    configs = []
    for _ in range(n):
        sites = rng.choice(s_sites, size=int(rng.integers(1, 7)), replace=False)
        defects = [(int(s), str(rng.choice(["VAC", "Se"]))) for s in sites]
        configs.append(DefectConfiguration.from_mapping(host, defects))
    return ConfigBatch.from_configs(configs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=int, default=scoring.MAX_CACHED, help="MAX_CACHED")
    ap.add_argument("--refits", type=Path, required=True, help="a folder with surrogate-refit-* models")
    ap.add_argument("--trim", action="store_true")
    args = ap.parse_args()
    scoring.MAX_CACHED = args.keep
    models = [ROOT / "models" / "surrogate-mos2-sparse", *sorted(args.refits.glob("surrogate-refit-*"))] * 3
    batch = random_batch(2000)
    proc = psutil.Process()
    rss = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, model in enumerate(models):
            copy = shutil.copytree(model, Path(tmp) / f"m{i}")
            scoring.score_batch(copy, batch)
            gc.collect()
            if args.trim:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            rss.append(round(proc.memory_info().rss / 2**20))
    print(f"MAX_CACHED {args.keep}{' trim' if args.trim else ''}: RSS MiB after each model {rss}")


if __name__ == "__main__":
    main()
