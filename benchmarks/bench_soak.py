"""Soak: a long campaign on the embedded default with resident memory sampled through the run.

The campaign (default: ``campaigns/mos2_midgap.yaml``, llm-bo or, with ``--strategy screen``, the
shipped campaigns' default; the shipped generator and surrogate, Dask LocalCluster with 2 workers)
runs with a large evaluation budget while a thread samples the resident set size (RSS) of the
campaign process and of its Dask worker processes every ``--every`` seconds. Reported: RSS after
warm-up (the first ``--warmup`` fraction of the evaluations) and at the end, the growth in per cent,
and the number of candidates scored by the surrogate. Goal: growth under 10 % after warm-up.

With ``--hours H`` the campaign runs for H hours of wall clock instead, with the oracle verifying
beside generation (``oracle.share`` 0.5) and ``refit_surrogate`` on; then also reported: oracle jobs
submitted and results stored (no verification repeated: every submitted candidate distinct from every
stored one before it), refits, the store's ``PRAGMA integrity_check``, and the RSS growth of every
process (main, each worker) after warm-up.

Run:
    .venv/bin/python benchmarks/bench_soak.py --evaluations 50000
    .venv/bin/python benchmarks/bench_soak.py --hours 2 --out benchmarks/results/soak_oracle.json
    .venv/bin/python benchmarks/bench_soak.py --hours 2 --strategy screen --out benchmarks/results/soak_screen.json
    .venv/bin/python benchmarks/bench_soak.py --strategy screen --evaluations 2500000 \
        --out benchmarks/results/soak_dask_logs_20.json
    .venv/bin/python benchmarks/bench_soak.py --strategy screen --evaluations 2500000 --dask-log-length 1000 \
        --out benchmarks/results/soak_dask_logs_1000.json    # Dask's default logs: the growth they caused
Writes benchmarks/results/soak.json (every sample) and benchmarks/results/soak.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def tree_rss(proc: object) -> tuple[int, int]:
    """RSS in bytes of ``proc`` itself and of all its descendants (Dask workers, nannies)."""
    own, kids = child_rss(proc)
    return own, sum(kids.values())


def child_rss(proc: object) -> tuple[int, dict[str, int]]:
    """RSS in bytes of ``proc`` and of each of its descendants by pid."""
    import psutil

    assert isinstance(proc, psutil.Process)
    own = proc.memory_info().rss
    kids: dict[str, int] = {}
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            kids[str(child.pid)] = child.memory_info().rss
    return own, kids


def main() -> None:
    import psutil

    ap = argparse.ArgumentParser()
    ap.add_argument("--campaign", type=Path, default=ROOT / "campaigns" / "mos2_midgap.yaml")
    ap.add_argument("--evaluations", type=int, default=50_000)
    ap.add_argument("--samples", type=int, default=256, help="samples per trial")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--warmup", type=float, default=0.1, help="fraction of the evaluations counted as warm-up")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak.json")
    ap.add_argument("--summarise", action="store_true", help="only recompute the summary and plot of --out")
    ap.add_argument(
        "--tracemalloc",
        type=float,
        default=None,
        metavar="MINUTES",
        help="trace the campaign process's Python allocations; report what grew between this many minutes "
        "in and the end, by source line (a diagnosis: tracing slows the run and its traces add to RSS)",
    )
    ap.add_argument(
        "--dask-log-length",
        type=int,
        default=None,
        metavar="N",
        help="entries in each of Dask's debugging logs instead of hts.cluster.DEBUG_LOG_LENGTH (a diagnosis: "
        "1000, Dask's default, shows the growth the bound removes)",
    )
    ap.add_argument("--no-refit", action="store_true", help="with --hours: the oracle without refits (a diagnosis)")
    ap.add_argument("--hours", type=float, default=None, help="wall-clock budget, with the oracle beside generation")
    ap.add_argument(
        "--strategy",
        choices=["llm-bo", "screen"],
        default="llm-bo",
        help="llm-bo: the most moving parts; screen: the default",
    )
    args = ap.parse_args()
    if args.summarise:
        old = json.loads(args.out.read_text())
        hours = "oracle_stored" in old  # a --hours run: windows in seconds
        end, key = (old["wall_s"], "t_s") if hours else (old["evaluations"], "evaluations")
        old.update(summarise(old["samples"], args.warmup * end, end, key=key))
        for stale in (
            "rss_after_warmup_MiB",
            "rss_end_MiB",
            "growth_main_pct",
            "growth_total_pct",
            "rss_main_floor_growth_pct",
            "rss_per_child_growth_pct",
            "rss_max_child_growth_pct",
        ):
            old.pop(stale, None)
        args.out.write_text(json.dumps(old, indent=1))
        print(json.dumps({k: v for k, v in old.items() if k != "samples"}, indent=2))
        plot(old["samples"], args.out.with_suffix(".png"), by_time=hours)
        return

    import hts.cluster
    from hts.campaign.runner import run_campaign

    if args.dask_log_length is not None:
        hts.cluster.DEBUG_LOG_LENGTH = args.dask_log_length

    data = yaml.safe_load(args.campaign.read_text())
    data["strategy"] = args.strategy
    trials = -(-args.evaluations // args.samples)
    data["budget"] = {
        "iterations": trials,
        "trials_per_iteration": 1,
        "samples_per_trial": args.samples,
        "max_evaluations": args.evaluations,
    }
    data["oracle"] = {"enabled": False}
    data.setdefault("dask", {})["enabled"] = True
    submitted: list[str] = []
    if args.hours:
        data["budget"] = {
            "iterations": 1000,
            "trials_per_iteration": 1,
            "samples_per_trial": args.samples,
            "wall_clock_hours": args.hours,
        }
        if args.strategy == "screen":  # stopped by the clock: far more configurations than it can score
            data["budget"]["max_evaluations"] = 10**9
        data["oracle"] = {"enabled": True, "top_k": 1, "share": 0.5, "refit_surrogate": not args.no_refit}
        from hts.campaign.verifier import Verifier

        submit = Verifier._submit

        def counted(self: Any, defects: Any, key: str) -> Any:
            submitted.append(key)
            return submit(self, defects, key)

        Verifier._submit = counted  # type: ignore[method-assign]

    samples: list[dict[str, float]] = []
    progress = {"evaluations": 0, "trials": 0}
    me = psutil.Process()
    done = threading.Event()
    t0 = time.perf_counter()
    traces: dict[str, Any] = {}
    if args.tracemalloc is not None:
        import tracemalloc

        tracemalloc.start(8)

    def sample() -> None:
        while not done.is_set():
            own, kids = child_rss(me)
            samples.append(
                {
                    "t_s": time.perf_counter() - t0,
                    **progress,
                    "rss_main": own,
                    "rss_workers": sum(kids.values()),
                    "rss_children": kids,
                }
            )
            if args.tracemalloc is not None and "start" not in traces and samples[-1]["t_s"] >= 60 * args.tracemalloc:
                traces["start"] = tracemalloc.take_snapshot()
            done.wait(args.every)

    def on_trial(info: dict) -> None:
        progress["evaluations"] = int(info["evaluations"])
        progress["trials"] = int(info["trials"])
        if progress["trials"] % 20 == 0:
            own, kids = tree_rss(me)
            print(
                f"{progress['trials']:5d} trials {progress['evaluations']:7d} evaluations "
                f"RSS main {own / 2**20:7.1f} MiB workers {kids / 2**20:7.1f} MiB",
                flush=True,
            )

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soak.yaml"
        path.write_text(yaml.safe_dump(data))
        summary, out = run_campaign(path, out=Path(tmp) / "run", progress=on_trial)
        oracle = oracle_figures(out, submitted) if args.hours else {}
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    grown = allocation_growth(traces.get("start"), tracemalloc.take_snapshot()) if args.tracemalloc is not None else []

    result = {
        "machine": platform.platform(),
        "campaign": args.campaign.name,
        "dask_log_length": hts.cluster.DEBUG_LOG_LENGTH,
        "evaluations": summary.evaluations,
        "candidates_scored": summary.candidates,
        "trials": summary.trials,
        "wall_s": round(wall, 1),
        **oracle,
        **(
            summarise(samples, args.warmup * wall, wall, key="t_s")
            if args.hours
            else summarise(samples, args.warmup * summary.evaluations, summary.evaluations)
        ),
        **({"tracemalloc_growth": grown} if args.tracemalloc is not None else {}),
        "samples": samples,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    plot(samples, args.out.with_suffix(".png"), by_time=bool(args.hours))


def allocation_growth(start: Any, end: Any, top: int = 25) -> list[dict[str, Any]]:
    """The source lines whose live Python allocations grew most from snapshot ``start`` to ``end``."""
    if start is None:
        return []
    stats = end.compare_to(start, "traceback")[:top]
    return [
        {
            "where": [f"{f.filename}:{f.lineno}" for f in st.traceback][-4:],
            "size_diff_MiB": round(st.size_diff / 2**20, 2),
            "count_diff": st.count_diff,
        }
        for st in stats
    ]


def oracle_figures(out: Path, submitted: list[str]) -> dict[str, Any]:
    """Oracle jobs submitted and stored, repeats, refits and the store's integrity after the soak."""
    from hts.campaign.results import CampaignResults, verification_course

    res = CampaignResults.open(out)
    try:
        oracle = res.store.oracle_frame()
        summary = res.summary()
        integrity = res.store.integrity_ok()
        course = verification_course(res.store.motifs_frame(oracle=True), res.oracle_results())
    finally:
        res.close()
    keys = [k for k in submitted if k.startswith("oracle-") and not k.startswith("oracle-reference")]
    hashes = [k.split("-")[1] for k in keys]
    return {
        "oracle_submitted": len(keys),
        "oracle_stored": len(oracle),
        "oracle_repeated": len(hashes) - len(set(hashes)),
        "oracle_failed": summary["oracle_failed"],
        "verified_motifs": summary["verified_motifs"],
        "confirmed_motifs": summary["confirmed_motifs"],
        "shortlist_precision": summary["shortlist_precision"],
        **course,
        "refits": len(list(out.glob("surrogate-refit-*"))),
        "integrity_ok": integrity,
    }


def summarise(
    samples: list[dict[str, Any]], warm_from: float, end: float, window: float = 0.1, key: str = "evaluations"
) -> dict:
    """RSS after warm-up and at the end as medians over windows of ``window * end`` evaluations (or
    seconds, ``key="t_s"``), for the campaign process, the workers together and each process that lives
    through the run (``rss_by_process``: median, floor and peak by tenth of the run, and the growth of
    the median and of the floor from the first window after warm-up to the last).

    Single samples swing by ~100 MiB within a trial (generation buffers, Ax model fits) and an oracle
    worker's by ~300 MiB while an xTB job runs, so growth is measured between windows; the floor (a
    window's smallest sample) tells a leak, which raises it, from work in flight, which does not.
    Short-lived children (refits in a process of their own) are counted in ``transient_children``.
    """
    import numpy as np

    width = window * end
    ev = np.array([s[key] for s in samples])
    first = (ev >= warm_from) & (ev < warm_from + width)
    last = ev >= end - width
    out: dict[str, Any] = {f"window_{key}": [[warm_from, warm_from + width], [end - width, end]]}
    for name in ("rss_main", "rss_workers", "rss_total"):
        v = np.array([s["rss_main"] + s["rss_workers"] if name == "rss_total" else s[name] for s in samples]) / 2**20
        a, b = float(np.median(v[first])), float(np.median(v[last]))
        out[f"{name}_after_warmup_MiB"] = round(a, 1)
        out[f"{name}_end_MiB"] = round(b, 1)
        out[f"{name}_growth_pct"] = round(100 * (b / a - 1), 2)
    seen: dict[str, int] = {}
    for smp in samples:
        for pid in smp.get("rss_children", {}):
            seen[pid] = seen.get(pid, 0) + 1
    lasting = [pid for pid, n in seen.items() if n >= 0.9 * len(samples)]
    series = {"main": np.array([s["rss_main"] for s in samples], dtype=float) / 2**20}
    for pid in lasting:
        series[pid] = np.array([s.get("rss_children", {}).get(pid, np.nan) for s in samples], dtype=float) / 2**20
    out["rss_by_process"] = {name: by_tenth(v, ev, end, first, last) for name, v in series.items()}
    procs = out["rss_by_process"].values()
    out["rss_max_growth_pct"] = float(np.nanmax([p["median_growth_pct"] for p in procs] + [-np.inf]))
    out["rss_max_floor_growth_pct"] = float(np.nanmax([p["floor_growth_pct"] for p in procs] + [-np.inf]))
    transient = [pid for pid in seen if pid not in lasting]
    out["transient_children"] = len(transient)
    if transient:
        out["transient_peak_MiB"] = round(
            max(s["rss_children"].get(pid, 0) for s in samples for pid in transient) / 2**20, 1
        )
    out["peak_total_MiB"] = round(max(s["rss_main"] + s["rss_workers"] for s in samples) / 2**20, 1)
    return out


def by_tenth(v: Any, ev: Any, end: float, first: Any, last: Any) -> dict[str, Any]:
    """One process's RSS (MiB) by tenth of the run, and its growth between the two windows."""
    import numpy as np

    tenths = [(ev >= k * end / 10) & (ev < (k + 1) * end / 10) & np.isfinite(v) for k in range(10)]
    ok = np.isfinite(v)
    a, b = v[first & ok], v[last & ok]
    return {
        "median_by_tenth": [round(float(np.median(v[m])), 1) if m.any() else None for m in tenths],
        "floor_by_tenth": [round(float(v[m].min()), 1) if m.any() else None for m in tenths],
        "peak_by_tenth": [round(float(v[m].max()), 1) if m.any() else None for m in tenths],
        "median_growth_pct": growth_pct(a, b, np.median),
        "floor_growth_pct": growth_pct(a, b, np.min),
    }


def growth_pct(a: Any, b: Any, stat: Any) -> float:
    """Growth in per cent of ``stat`` from samples ``a`` to samples ``b`` (NaN where a window is empty)."""
    if len(a) == 0 or len(b) == 0 or float(stat(a)) <= 0:
        return float("nan")
    return round(100 * (float(stat(b)) / float(stat(a)) - 1), 2)


def plot(samples: list[dict[str, Any]], path: Path, by_time: bool = False) -> None:
    """RSS of the campaign process and of each child that lives through the run, against evaluations
    (or minutes, ``by_time``); short-lived children (refits) as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["t_s"] / 60 if by_time else s["evaluations"] for s in samples]
    seen: dict[str, int] = {}
    for smp in samples:
        for pid in smp.get("rss_children", {}):
            seen[pid] = seen.get(pid, 0) + 1
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(x, [s["rss_main"] / 2**20 for s in samples], label="campaign process")
    for pid, n in sorted(seen.items()):
        pts = [
            (xi, smp["rss_children"][pid] / 2**20)
            for xi, smp in zip(x, samples, strict=True)
            if pid in smp.get("rss_children", {})
        ]
        if n >= 0.9 * len(samples):
            ax.plot(*zip(*pts, strict=True), lw=0.8, label=f"child {pid}")
        else:
            ax.plot(*zip(*pts, strict=True), ".", ms=2, color="grey")
    ax.set_xlabel("minutes" if by_time else "evaluations")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("Soak: resident memory through the run (grey: short-lived children)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
