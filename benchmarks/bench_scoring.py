"""Scoring throughput of the surrogate: featurise + predict, in-process (one core) and on Dask.

Usage::

    .venv/bin/python benchmarks/bench_scoring.py                       # trains a synthetic 8x8 model
    .venv/bin/python benchmarks/bench_scoring.py --model models/mos2   # or scores with a saved model
    .venv/bin/python benchmarks/bench_scoring.py --n 100000 --workers 2 --out bench_scoring.json

Without ``--model`` it fits the default surrogate (7 targets, 1000 trees of depth 6,
RMSE + posterior sampling) on synthetic labels of random 8x8 MoS2 configurations, so
the tree ensembles have the size of a real model; with ``--model`` it scores configurations of that
model's host. Configurations to score are random valid ones at low density (1-3 defects), high density
(5 defects up to 12.5 % of the sites: 24 in 8x8 MoS2, 16 in 8x8 h-BN) and a 50/50 mix.
Prints a table and writes JSON. CatBoost runs with ``thread_count=1``; Dask workers have one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hts.defects import PAD, ConfigBatch
from hts.hosts import Host, get_host
from surrogate import DEFAULT_TARGETS
from surrogate.features import make_featuriser
from surrogate.model import SurrogateModel, package_versions


def random_batch(host: Host, n: int, n_min: int, n_max: int, seed: int) -> ConfigBatch:
    """``n`` random valid configurations with ``n_min..n_max`` defects (vectorised; not de-duplicated)."""
    rng = np.random.default_rng(seed)
    k = n_max
    counts = rng.integers(n_min, n_max + 1, size=n)
    order = np.argsort(rng.random((n, host.n_sites)), axis=1)[:, :k].astype(np.int32)
    keys = rng.random((n, k, host.n_codes))
    allowed = host.allowed[order]  # (n, k, n_codes)
    codes = np.argmax(np.where(allowed, keys, -1.0), axis=2).astype(np.int8)
    live = np.arange(k)[None, :] < counts[:, None]
    sites = np.where(live, order, PAD)
    return ConfigBatch(host, sites, np.where(live, codes, 0).astype(np.int8)).sorted_rows()


def synthetic_labels(batch: ConfigBatch) -> dict[str, np.ndarray]:
    from surrogate.features.base import rule_types

    t = rule_types(batch)
    names = [r.name for r in batch.host.rules]
    cnt = {nm: (t == i).sum(axis=1) for i, nm in enumerate(names)}
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.03, size=len(batch))
    gap = 1.8 - 0.4 * cnt["vac_S"] - 0.6 * cnt["vac_Mo"] - 0.02 * cnt["Mo->W"] + noise
    homo = -5.0 + 0.1 * cnt["vac_S"] + noise
    fe = 2.5 * cnt["vac_S"] + 4.0 * cnt["vac_Mo"] + 0.3 * cnt["Mo->W"] + 0.2 * cnt["S->Se"] + noise
    n_def = np.maximum(1, batch.n_defects)
    return {
        "homo": homo,
        "lumo": homo + gap,
        "homo_lumo_gap": gap,
        "formation_energy": fe,
        "formation_energy_per_site": fe / n_def,
        "energy_per_atom": -7.0 + 0.05 * cnt["vac_S"] + 0.08 * cnt["vac_Mo"] + noise / 10,
        "fermi_level": homo + gap / 2,
    }


def best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Best CPU time of this process over ``repeat`` runs (one thread: the per-core cost).

    CPU time, not wall time: the machine is shared, and wall time of a single-threaded run on a
    loaded core measures the neighbours. Wall times are recorded next to it.
    """
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def best_wall(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _cpu_seconds() -> float:
    """CPU time (user + system) of the calling process; run on every worker via ``client.run``."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="saved model directory (default: train a synthetic one)")
    ap.add_argument("--n", type=int, default=100_000, help="configurations per scoring run")
    ap.add_argument("--train-rows", type=int, default=3000)
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2, help="Dask LocalCluster workers (0: skip Dask)")
    ap.add_argument("--chunk", type=int, default=25_000, help="rows per Dask task")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_scoring.json"))
    args = ap.parse_args()

    host = SurrogateModel.load(args.model).host if args.model else get_host("MoS2")
    n_high = max(5, int(0.125 * host.n_sites))  # 2DMD's highest density, 12.5 % of the sites
    tmp = tempfile.TemporaryDirectory()
    model_dir = args.model
    fit_s = None
    if model_dir is None:
        train = random_batch(host, args.train_rows, 1, 24, seed=1)
        t0 = time.perf_counter()
        model = SurrogateModel.fit(
            make_featuriser("sparse"),
            train,
            synthetic_labels(train),
            list(DEFAULT_TARGETS),
            params={"iterations": args.iterations},
            thread_count=2,
        )
        fit_s = time.perf_counter() - t0
        model_dir = model.save(Path(tmp.name) / "model")
    model = SurrogateModel.load(model_dir)
    n_trees = {t: model.models[t].tree_count_ for t in model.targets}

    sets = {
        "low (1-3 defects)": random_batch(host, args.n, 1, 3, seed=2),
        f"high (5-{n_high} defects)": random_batch(host, args.n, 5, n_high, seed=3),
    }
    lo, hi = sets["low (1-3 defects)"], sets[f"high (5-{n_high} defects)"]
    half = args.n // 2
    k = hi.sites.shape[1]
    lo_sites = np.full((half, k), PAD, dtype=np.int32)
    lo_sites[:, : lo.sites.shape[1]] = lo.sites[:half]
    lo_codes = np.zeros((half, k), dtype=np.int8)
    lo_codes[:, : lo.codes.shape[1]] = lo.codes[:half]
    sets["mixed 50/50"] = ConfigBatch(
        host, np.concatenate([lo_sites, hi.sites[half:]]), np.concatenate([lo_codes, hi.codes[half:]])
    )

    rows = []
    for name, batch in sets.items():
        t_feat = best_of(lambda b=batch: model.featuriser.transform(b), args.repeat)
        X = model.featuriser.transform(batch)
        t_pred = best_of(
            lambda x=X, b=batch: model.predict_features(x, uncertainty="total", thread_count=1, batch=b), args.repeat
        )
        t_all = best_of(lambda b=batch: model.predict(b, uncertainty="total", thread_count=1), args.repeat)
        t_data = best_of(lambda b=batch: model.predict(b, uncertainty="data", thread_count=1), args.repeat)
        w_all = best_wall(lambda b=batch: model.predict(b, uncertainty="total", thread_count=1), args.repeat)
        rows.append(
            {
                "set": name,
                "n": len(batch),
                "featurise_per_s": len(batch) / t_feat,
                "predict_per_s": len(batch) / t_pred,
                "score_per_s": len(batch) / t_all,
                "score_data_unc_per_s": len(batch) / t_data,
                "score_cpu_s": t_all,
                "score_wall_s": w_all,
                "score_wall_per_s": len(batch) / w_all,
            }
        )

    dask = None
    if args.workers > 0:
        from surrogate.scoring import DaskScorer

        batch = sets["mixed 50/50"]
        t_in = next(r["score_wall_s"] for r in rows if r["set"] == "mixed 50/50")
        with DaskScorer(model_dir, n_workers=args.workers, threads_per_worker=1, chunk_size=args.chunk) as scorer:
            scorer.warm_up()
            ref = model.predict(batch, thread_count=1)
            got = scorer.score(batch)
            assert np.allclose(got.mean, ref.mean) and np.allclose(got.std, ref.std), "Dask results differ"
            t_dask = best_wall(lambda: scorer.score(batch), args.repeat)
            # CPU accounting of one run: the workers' process CPU time plus the client's.
            before = scorer.client.run(_cpu_seconds)
            c0 = time.process_time()
            scorer.score(batch)
            t_dask_cpu = time.process_time() - c0
            after = scorer.client.run(_cpu_seconds)
            worker_cpu = sum(after[w] - before[w] for w in after)
        t_in_cpu = next(r["score_cpu_s"] for r in rows if r["set"] == "mixed 50/50")
        dask = {
            "workers": args.workers,
            "threads_per_worker": 1,
            "chunk": args.chunk,
            "n": len(batch),
            "in_process_s": t_in,
            "dask_s": t_dask,
            "client_cpu_s": t_dask_cpu,
            "workers_cpu_s": worker_cpu,
            "in_process_cpu_s": t_in_cpu,
            "cpu_overhead_pct": 100.0 * (worker_cpu + t_dask_cpu - t_in_cpu) / t_in_cpu,
            "overhead_pct": 100.0 * (t_dask - t_in) / t_in,
            "cpu_count": os.cpu_count(),
        }

    result = {
        "benchmark": f"surrogate scoring (sparse features, {host.key}, featurise + predict, total uncertainty)",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor()},
        "versions": package_versions(),
        "model": {"dir": str(args.model) if args.model else "synthetic", "trees": n_trees, "fit_s": fit_s},
        "in_process_one_thread": rows,
        "dask": dask,
        "load_avg_1min": os.getloadavg()[0],
    }
    print("Throughput per core (configurations per CPU-second, one thread; wall-clock in the last column)")
    header = (
        f"{'set':<22}{'n':>8}{'featurise/s':>14}{'predict/s':>12}{'score/s':>11}"
        f"{'score(data)/s':>15}{'score wall/s':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['set']:<22}{r['n']:>8}{r['featurise_per_s']:>14,.0f}{r['predict_per_s']:>12,.0f}"
            f"{r['score_per_s']:>11,.0f}{r['score_data_unc_per_s']:>15,.0f}{r['score_wall_per_s']:>14,.0f}"
        )
    if dask:
        print(
            f"\nDask LocalCluster({dask['workers']} workers x 1 thread), {dask['n']:,} mixed configurations: "
            f"{dask['dask_s']:.2f} s vs in-process {dask['in_process_s']:.2f} s "
            f"wall (overhead {dask['overhead_pct']:+.1f} %)\nCPU: workers {dask['workers_cpu_s']:.2f} s + client "
            f"{dask['client_cpu_s']:.2f} s vs in-process {dask['in_process_cpu_s']:.2f} s "
            f"(CPU overhead {dask['cpu_overhead_pct']:+.1f} %)"
        )
    print(f"(1-min load average during the run: {result['load_avg_1min']:.2f} on {os.cpu_count()} CPUs)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
