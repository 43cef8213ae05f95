"""Benchmark: what a checked open of a large campaign store costs (``PRAGMA integrity_check`` and the
row digests of :mod:`hts.campaign.integrity`), and what sealing adds to each trial's commit.

Run: nice .venv/bin/python benchmarks/bench_store_open.py [--trials 300 --per-trial 170]
Writes a store of ``trials x per_trial`` candidates (three predicted properties each, every fifth a hit
with its motif row, an Ax snapshot per trial growing by ``--ax-growth`` bytes a trial, as a long llm-bo
campaign's do) into a temporary folder, then times opens. Prints a table and writes
benchmarks/results/store_open.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hts.campaign import integrity
from hts.campaign.store import CampaignStore, CandidateRecord, TrialRecord, check_sqlite_file, sqlite_url


def write(path: Path, trials: int, per_trial: int, ax_growth: int) -> list[float]:
    """The store; the seconds each trial's commit took."""
    store = CampaignStore(sqlite_url(path))
    commits = []
    try:
        store.set_meta("campaign_yaml", "name: bench\n" * 20)
        for t in range(trials):
            cands = [
                CandidateRecord(
                    hash=f"{t:06x}{i:010x}",
                    defects=",".join(f"{(i * 7 + k * 13 + t) % 192}:VAC" for k in range(1 + i % 6)),
                    n_defects=1 + i % 6,
                    predictions={
                        "homo_lumo_gap": (0.5 + 1e-4 * i + 1e-7 * t, 0.05),
                        "formation_energy": (3.0 - 1e-4 * i, 0.2),
                        "fermi_level": (-4.1 + 1e-5 * t, 0.1),
                    },
                    distance=1e-3 * i + 1e-6 * t,
                    hit=i % 5 == 0,
                    motif=f"{t:06x}{i:010x}" if i % 5 == 0 else None,
                    core=f"{i % 192}:VAC" if i % 5 == 0 else None,
                    spectators="",
                )
                for i in range(per_trial)
            ]
            trial = TrialRecord(
                trial_id=t,
                iteration=t // 4,
                strategy="llm-bo",
                knobs={"temperature": 1.0, "n_defects": 3},
                n_generated=per_trial,
                n_valid=per_trial,
                n_new=per_trial,
                n_hits=sum(c.hit for c in cands),
                metrics={"score": 0.1},
                wall_time_s=1.0,
            )
            snapshot = json.dumps({"trial": t, "state": "x" * (ax_growth * (t + 1))})
            t0 = time.perf_counter()
            store.record_trial(trial, cands, snapshot)
            commits.append(time.perf_counter() - t0)
    finally:
        store.close()
    return commits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--per-trial", type=int, default=170)
    ap.add_argument("--ax-growth", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hts-bench-store-") as tmp:
        path = Path(tmp) / "campaign.sqlite"
        seal = integrity.seal
        integrity.seal = lambda *a, **k: None  # the same store unsealed: what a commit cost before
        unsealed = write(Path(tmp) / "unsealed.sqlite", args.trials, args.per_trial, args.ax_growth)
        integrity.seal = seal
        commits = write(path, args.trials, args.per_trial, args.ax_growth)
        size = path.stat().st_size

        def pragma(check: str) -> None:
            with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as con:
                assert con.execute(f"PRAGMA {check}").fetchone()[0] == "ok"

        steps: dict[str, Callable[[], object]] = {
            "quick_check": lambda: pragma("quick_check"),
            "integrity_check": lambda: pragma("integrity_check"),
            "check (integrity_check + digests)": lambda: check_sqlite_file(path),
            "checked open (status, export)": lambda: CampaignStore.open(sqlite_url(path)).close(),
        }
        timings: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, fn in steps.items():
                t0 = time.perf_counter()
                fn()
                timings[name].append(time.perf_counter() - t0)
        report = check_sqlite_file(path)
        store = CampaignStore.open(sqlite_url(path))
        n = store.n_candidates()
        store.close()
    best = {k: min(v) for k, v in timings.items()}
    commits.sort()
    unsealed.sort()
    result = {
        "machine": platform.node(),
        "candidates": n,
        "trials": args.trials,
        "store_bytes": size,
        "groups_checked": report.checked,
        "groups_unchecked": report.unchecked,
        "best_of_s": best,
        "median_s": {k: sorted(v)[len(v) // 2] for k, v in timings.items()},
        "commit_median_s": commits[len(commits) // 2],
        "commit_unsealed_median_s": unsealed[len(unsealed) // 2],
    }
    print(f"{n:,} candidates, {args.trials} trials, {size / 2**20:.0f} MiB; {report.checked} groups checked")
    for k in timings:
        print(f"  {k:34s} best {best[k]:.3f} s  median {result['median_s'][k]:.3f} s")
    print(
        f"  trial commit: sealed {result['commit_median_s'] * 1e3:.1f} ms, "
        f"unsealed {result['commit_unsealed_median_s'] * 1e3:.1f} ms (medians)"
    )
    out = Path(__file__).parent / "results" / "store_open.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
