"""Soak: a long campaign on the embedded default with resident memory sampled through the run.

The campaign (default: ``campaigns/mos2_midgap.yaml``, llm-bo, the shipped generator and
surrogate, Dask LocalCluster with 2 workers) runs with a large evaluation budget while a thread
samples the resident set size (RSS) of the campaign process and of its Dask worker processes every
``--every`` seconds. Reported: RSS after warm-up (the first ``--warmup`` fraction of the
evaluations) and at the end, the growth in per cent, and the number of candidates scored by the
surrogate. Goal: growth under 10 % after warm-up.

Run:
    .venv/bin/python benchmarks/bench_soak.py --evaluations 50000
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

import yaml

ROOT = Path(__file__).resolve().parents[1]


def tree_rss(proc: object) -> tuple[int, int]:
    """RSS in bytes of ``proc`` itself and of all its descendants (Dask workers, nannies)."""
    import psutil

    assert isinstance(proc, psutil.Process)
    own = proc.memory_info().rss
    kids = 0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            kids += child.memory_info().rss
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
    args = ap.parse_args()

    from hts.campaign.runner import run_campaign

    data = yaml.safe_load(args.campaign.read_text())
    trials = -(-args.evaluations // args.samples)
    data["budget"] = {
        "iterations": trials,
        "trials_per_iteration": 1,
        "samples_per_trial": args.samples,
        "max_evaluations": args.evaluations,
    }
    data["oracle"] = {"enabled": False}
    data.setdefault("dask", {})["enabled"] = True

    samples: list[dict[str, float]] = []
    progress = {"evaluations": 0, "trials": 0}
    me = psutil.Process()
    done = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not done.is_set():
            own, kids = tree_rss(me)
            samples.append({"t_s": time.perf_counter() - t0, **progress, "rss_main": own, "rss_workers": kids})
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
        summary, _ = run_campaign(path, out=Path(tmp) / "run", progress=on_trial)
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0

    def total(s: dict[str, float]) -> float:
        return s["rss_main"] + s["rss_workers"]

    warm = [s for s in samples if s["evaluations"] >= args.warmup * args.evaluations and s["rss_workers"] > 0]
    first, last = warm[0], warm[-1]
    result = {
        "machine": platform.platform(),
        "campaign": args.campaign.name,
        "evaluations": summary.evaluations,
        "candidates_scored": summary.candidates,
        "trials": summary.trials,
        "wall_s": round(wall, 1),
        "rss_after_warmup_MiB": {k: round(first[k] / 2**20, 1) for k in ("rss_main", "rss_workers")},
        "rss_end_MiB": {k: round(last[k] / 2**20, 1) for k in ("rss_main", "rss_workers")},
        "growth_main_pct": round(100 * (last["rss_main"] / first["rss_main"] - 1), 2),
        "growth_total_pct": round(100 * (total(last) / total(first) - 1), 2),
        "peak_total_MiB": round(max(total(s) for s in warm) / 2**20, 1),
        "samples": samples,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    plot(samples, args.out.with_suffix(".png"))


def plot(samples: list[dict[str, float]], path: Path) -> None:
    """RSS of the campaign process and of the workers against evaluations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = [s["evaluations"] for s in samples]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(ev, [s["rss_main"] / 2**20 for s in samples], label="campaign process")
    ax.plot(ev, [s["rss_workers"] / 2**20 for s in samples], label="Dask workers and nannies")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("Soak: resident memory through the run")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
