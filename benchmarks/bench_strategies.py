"""Benchmark: random vs llm-fixed vs llm-bo on the same targets, seeds and evaluation budget.

For each target (a campaign file) and seed, the three strategies run through the same loop with the
same number of samples; reported per strategy: hits per 1,000 evaluations (unique new candidates
inside every target window per 1,000 valid samples scored), unique hits, evaluations to the first
hit, and how many distinct compositions (defects per type) the hits hold. Scoring is in-process (no
Dask) so the figures measure the strategies, not the cluster.

Run (after the embedded defaults are built, see README):
    .venv/bin/python benchmarks/bench_strategies.py --seeds 0 1 2 \
        --campaigns campaigns/mos2_midgap.yaml campaigns/mos2_homo_lumo_window.yaml \
                    campaigns/mos2_formation_energy.yaml
A strategy ``llm-bo+composition`` (``+switches``) runs llm-bo with ``bo.defect_knobs`` set so, and
``llm-bo+scout_trials=0,exploit_trials=0`` with those ``bo`` settings.
Prints a table and writes benchmarks/results/strategies.json. ``--merge A.json B.json`` combines the
runs of earlier invocations (with or without new ones) into one table; a run of a later file, or a
new run, replaces one of the same campaign, strategy and seed (``--strategies llm-bo --merge old.json``
re-runs only llm-bo). ``--rename OLD=NEW`` labels merged runs of strategy OLD as NEW.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def run_one(
    campaign_file: Path,
    strategy: str,
    seed: int,
    iterations: int | None,
    samples: int | None,
    keep: Path | None = None,
) -> dict:
    from hts.campaign.config import parse_campaign
    from hts.campaign.results import CampaignResults
    from hts.campaign.runner import run_campaign

    data = yaml.safe_load(campaign_file.read_text())
    base, _, variant = strategy.partition("+")  # "llm-bo+composition": llm-bo with bo.defect_knobs set
    data["strategy"] = base
    for item in filter(None, variant.split(",")):  # "switches", or bo settings: "scout_trials=0,exploit_trials=0"
        key, eq, value = item.partition("=")
        data.setdefault("bo", {}).update({key: yaml.safe_load(value)} if eq else {"defect_knobs": item})
    data["seed"] = seed
    data.setdefault("dask", {})["enabled"] = False
    data.setdefault("oracle", {})["enabled"] = False
    if iterations:
        data.setdefault("budget", {})["iterations"] = iterations
    if samples:
        data.setdefault("budget", {})["samples_per_trial"] = samples
    # Relative model paths in the campaign are resolved against its folder.
    for sec, key in (("surrogate", "model"), ("generator", "base_model"), ("generator", "adapter")):
        v = data.get(sec, {}).get(key)
        if v and v != "default" and not Path(v).is_absolute():
            data[sec][key] = str((campaign_file.parent / v).resolve())
    parse_campaign(yaml.safe_dump(data))  # validate early
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(yaml.safe_dump(data))
        t0 = time.perf_counter()
        _, out = run_campaign(path, out=Path(tmp) / "run")
        wall = time.perf_counter() - t0
        res = CampaignResults.open(out)
        trials = res.store.trials_frame()
        # distinct defect make-ups among the hits (hts status's count): many hits of one composition
        # are placements of the same defects, fewer leads for DFT than hits of many
        hit_compositions = int(res.summary()["hit_compositions"])
        res.close()
        if keep is not None:  # the campaign folder, for `hts status` / `hts report` / the trial table
            import shutil

            dest = keep / f"{campaign_file.stem}_{strategy}_seed{seed}".replace("/", "_")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(out, dest)
    evals = trials["n_valid"].cumsum().to_numpy()
    hits = trials["n_hits"].to_numpy()
    first = None
    if hits.sum():  # per sample: the evaluations of earlier trials plus the first hit's place in its trial
        t = int(np.argmax(hits > 0))
        before = int(evals[t - 1]) if t else 0
        pos = trials["extra"].iloc[t].get("first_hit_sample")
        first = before + int(pos) if pos is not None else int(evals[t])
    n_eval = int(evals[-1]) if len(evals) else 0
    return {
        "campaign": campaign_file.stem,
        "strategy": strategy,
        "hits_per_trial": [int(h) for h in hits],
        "seed": seed,
        "evaluations": n_eval,
        "generated": int(trials["n_generated"].sum()),
        "unique_hits": int(hits.sum()),
        "hit_compositions": hit_compositions,
        "hits_per_1000": 1000.0 * hits.sum() / max(1, n_eval),
        "evals_to_first_hit": first,
        "wall_s": round(wall, 1),
    }


def summarise(rows: list[dict], strategies: list[str]) -> dict:
    """Per strategy, per campaign: mean hits/1000, mean unique hits, median evals to 1st hit; overall:
    the mean of the campaigns' means (a campaign run on more seeds weighs the same as the others)."""

    def one(rs: list[dict]) -> dict:
        firsts = [r["evals_to_first_hit"] for r in rs if r["evals_to_first_hit"] is not None]
        comps = [r["hit_compositions"] for r in rs if "hit_compositions" in r]
        return {
            "hits_per_1000_mean": float(np.mean([r["hits_per_1000"] for r in rs])) if rs else float("nan"),
            "unique_hits_mean": float(np.mean([r["unique_hits"] for r in rs])) if rs else float("nan"),
            "evals_to_first_hit_median": float(np.median(firsts)) if firsts else None,
            "runs_with_a_hit": f"{len(firsts)}/{len(rs)}",
            "hit_compositions_mean": float(np.mean(comps)) if comps else None,  # result files without the count: none
        }

    campaigns = sorted({r["campaign"] for r in rows})
    out: dict = {"overall": {}}
    for c in campaigns:
        out[c] = {s: one([r for r in rows if r["strategy"] == s and r["campaign"] == c]) for s in strategies}
    for s in strategies:
        # the mean over campaigns of the per-campaign means: a campaign run on more seeds weighs the same
        overall = one([r for r in rows if r["strategy"] == s])
        per = [out[c][s] for c in campaigns if out[c][s]["runs_with_a_hit"] != "0/0"]
        if per:
            overall["hits_per_1000_mean"] = float(np.mean([p["hits_per_1000_mean"] for p in per]))
            overall["unique_hits_mean"] = float(np.mean([p["unique_hits_mean"] for p in per]))
            comps = [p["hit_compositions_mean"] for p in per]
            overall["hit_compositions_mean"] = float(np.mean(comps)) if None not in comps else None
        overall["campaigns"] = len(per)
        out["overall"][s] = overall
    return out


def ratio_interval(rows: list[dict], num: str, den: str, draws: int, seed: int = 0) -> dict:
    """The overall hits-per-1,000 ratio of strategy ``num`` to ``den`` (mean over campaigns of the
    per-campaign means, as in :func:`summarise`), and its bootstrap: each draw resamples the seeds of
    every campaign and strategy with replacement. Returns the ratio, the 5/50/95 % points of the draws
    and the fraction of draws at or above each whole ratio up to 10."""
    campaigns = sorted({r["campaign"] for r in rows})

    def per(strategy: str) -> list[np.ndarray]:
        return [
            np.array([r["hits_per_1000"] for r in rows if r["strategy"] == strategy and r["campaign"] == c])
            for c in campaigns
        ]

    a, b = per(num), per(den)
    rng = np.random.default_rng(seed)
    boot = np.array(
        [
            np.mean([rng.choice(x, x.size).mean() for x in a]) / np.mean([rng.choice(x, x.size).mean() for x in b])
            for _ in range(draws)
        ]
    )
    return {
        "ratio": float(np.mean([x.mean() for x in a]) / np.mean([x.mean() for x in b])),
        "percentiles_5_50_95": [float(v) for v in np.percentile(boot, [5, 50, 95])],
        "share_of_draws_at_least": {k: float((boot >= k).mean()) for k in range(1, 11)},
    }


def print_table(summary: dict, strategies: list[str]) -> None:
    head = ["campaign", "strategy", "hits / 1,000 evaluations", "unique hits", "evaluations to 1st hit (median)"]
    print("\n| " + " | ".join([*head, "runs with a hit", "compositions among the hits"]) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for camp, per in summary.items():
        for strat in strategies:
            s = per[strat]
            if s["runs_with_a_hit"] == "0/0" or (camp == "overall" and s.get("campaigns", 0) < len(summary) - 1):
                continue  # not run on this campaign (or, overall, not on every campaign)
            first = f"{s['evals_to_first_hit_median']:.0f}" if s["evals_to_first_hit_median"] is not None else "none"
            print(
                f"| {camp} | {strat} | {s['hits_per_1000_mean']:.1f} | {s['unique_hits_mean']:.1f} | {first} "
                f"| {s['runs_with_a_hit']} | {_number(s.get('hit_compositions_mean'))} |"
            )


def _number(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaigns", nargs="+", type=Path, default=[])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=["random", "llm-fixed", "llm-bo"])
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--merge", nargs="+", type=Path, default=[], help="result JSON files of earlier invocations")
    ap.add_argument(
        "--rename",
        nargs="+",
        default=[],
        metavar="OLD=NEW",
        help="label merged runs of strategy OLD as NEW (e.g. a variant that has become the default)",
    )
    ap.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="DRAWS",
        help="also bootstrap llm-bo's overall ratio to each baseline over seeds (e.g. 20000 draws)",
    )
    ap.add_argument("--keep", type=Path, default=None, help="copy each run's campaign folder here")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "strategies.json")
    args = ap.parse_args()
    merged: dict[tuple, dict] = {}  # a later file's run replaces an earlier one of the same campaign, strategy, seed
    renames = dict(item.rsplit("=", 1) for item in args.rename)  # the variant itself may hold "="
    for path in args.merge:
        for r in json.loads(path.read_text())["runs"]:
            r["strategy"] = renames.get(r["strategy"], r["strategy"])
            merged.pop((r["campaign"], r["strategy"], r["seed"]), None)
            merged[(r["campaign"], r["strategy"], r["seed"])] = r
    rows = list(merged.values())
    for cf in args.campaigns:
        for seed in args.seeds:
            for strat in args.strategies:
                r = run_one(cf, strat, seed, args.iterations, args.samples, args.keep)
                print(json.dumps(r), flush=True)
                # a new run replaces a merged one of the same campaign, strategy and seed
                rows = [x for x in rows if (x["campaign"], x["strategy"], x["seed"]) != (r["campaign"], strat, seed)]
                rows.append(r)
    order = ["random", "llm-fixed", "llm-bo"]
    strategies = sorted(
        {*args.strategies, *(r["strategy"] for r in rows)},
        key=lambda s: (s not in order, order.index(s) if s in order else 0, s),
    )
    summary = summarise(rows, strategies)
    print_table(summary, strategies)
    if args.bootstrap and "llm-bo" in strategies:
        for base in ("random", "llm-fixed"):
            if base in strategies:
                got = ratio_interval(rows, "llm-bo", base, args.bootstrap)
                summary["overall"]["llm-bo"][f"ratio_to_{base}"] = got
                lo, mid, hi = got["percentiles_5_50_95"]
                share = got["share_of_draws_at_least"]
                print(
                    f"llm-bo / {base}: {got['ratio']:.2f}x; bootstrap over seeds 5/50/95 %: "
                    f"{lo:.2f}/{mid:.2f}/{hi:.2f}x; draws >= 2x: {share[2]:.0%}, >= 10x: {share[10]:.0%}"
                )
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "runs": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    from hts.hashseed import fix_hash_seed

    fix_hash_seed()  # runs repeat exactly per seed (hts.hashseed)
    main()
