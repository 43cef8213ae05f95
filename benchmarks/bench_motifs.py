"""Benchmark: what a DFT group receives, per strategy, at equal wall-clock per run.

For each target (a campaign file), seed and strategy, one campaign runs in its own process for the
same wall-clock budget (``budget.wall_clock_hours``; iterations and evaluations unbounded), scoring
in-process on one thread (no Dask, ``OMP_NUM_THREADS=1``), without the oracle. Reported per run:
distinct motifs among the surrogate hits (:mod:`hts.campaign.motifs`), distinct compositions, unique
hits, evaluations, hits per 1,000 evaluations, the process's CPU seconds, and motifs per CPU-hour.

Strategies: ``screen`` (uniform random configurations scored in chunks of 50,000: what a user would
try first), ``random`` (the same, 64 per trial through the loop), ``llm-fixed`` (the study's one-shot
prompting), ``llm-bo`` (as shipped), and ``llm-bo+random-placement``: llm-bo with the model's answer
to every composition request (Ax, exploitation and local trials) replaced by a uniform random
placement of that composition on the allowed sites; the scout, which asks the model for its own
compositions, still uses the model. This variant is a benchmark ablation, not a user option. Research
variants (``--strategies llm-bo+refine random+refine``): the strategy with every sample refined by a
surrogate-screened local search (:mod:`hts.campaign.refine`); with ``--oracle``, ``screen+refit``: the
surrogate refitted on the oracle's labels as they come (``oracle.refit_surrogate``).

With ``--oracle`` the host's xTB verifies beside generation (``oracle.share`` 0.5: one worker process of
its own next to the one scoring thread) and each run also reports verified candidates, verified and
confirmed motifs, the shortlist precision and the fraction of oracle calls on a motif not verified before.

Run (after the embedded defaults are built, see README):
    .venv/bin/python benchmarks/bench_motifs.py --seconds 60 --seeds 0 1 2 --jobs 2 \\
        --campaigns campaigns/mos2_*.yaml --out benchmarks/results/motifs.json
Prints a table (means over seeds) and writes the runs and the table as JSON. ``--merge A.json ...``
re-prints earlier results (a later run of the same campaign, strategy and seed replaces an earlier one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml

STRATEGIES = ("screen", "random", "llm-fixed", "llm-bo", "llm-bo+random-placement")
RESEARCH = ("llm-bo+refine", "random+refine")  # hts.campaign.refine: local search around each sample
RESEARCH += ("screen+refit",)  # with --oracle: oracle.refit_surrogate on
ROOT = Path(__file__).resolve().parents[1]


class RandomPlacementProposer:
    """Places each requested composition uniformly at random on the allowed sites; asks the wrapped
    LLM proposer whenever a trial requests no composition (the scout)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.host = llm.host
        self.allowed = llm.allowed
        self.prompt_properties = llm.prompt_properties
        self.prompt_ranges = llm.prompt_ranges

    def propose(self, knobs: Mapping[str, Any], n: int, rng: np.random.Generator) -> Any:
        from hts.campaign.proposers import Proposal, knob_composition
        from hts.defects import ConfigBatch, DefectConfiguration

        composition = knob_composition(self.host, knobs)
        if composition is None:
            return self.llm.propose(knobs, n, rng)
        if not self.llm.k_min <= sum(composition.values()) <= self.llm.k_max:
            return Proposal(ConfigBatch.empty(self.host), 0, {})
        rules = {r.name: r for r in self.host.rules}
        configs = []
        for _ in range(n):
            taken: set[int] = set()
            defects = []
            for name, count in composition.items():
                rule = rules[name]
                code = self.host.code_of(rule.new_species)
                sites = [s for s in np.flatnonzero(self.allowed[:, code]) if s not in taken]
                sites = [s for s in sites if self.host.site_species[s] == rule.element]
                chosen = rng.choice(sites, size=count, replace=False) if count else []
                taken.update(int(s) for s in chosen)
                defects += [(int(s), rule.new_species) for s in chosen]
            configs.append(DefectConfiguration.from_mapping(self.host, defects))
        batch = ConfigBatch.from_configs(configs) if configs else ConfigBatch.empty(self.host)
        return Proposal(batch, n, {})


def campaign_for(campaign_file: Path, strategy: str, seed: int, seconds: float, oracle: bool = False) -> dict[str, Any]:
    """The campaign of one run: the file's targets and rules, the strategy, seed and time budget; with
    ``oracle`` the host's xTB verifying beside generation on one worker process of its own."""
    data = yaml.safe_load(campaign_file.read_text())
    data["strategy"] = strategy.partition("+")[0]
    data["seed"] = seed
    data["dask"] = {"enabled": False, "workers": 2}
    data["oracle"] = {"enabled": True, "share": 0.5, "top_k": 1} if oracle else {"enabled": False}
    if oracle and strategy.endswith("+refit"):
        data["oracle"]["refit_surrogate"] = True
    budget = data.setdefault("budget", {})
    budget["wall_clock_hours"] = seconds / 3600
    budget.pop("max_evaluations", None)
    if strategy.partition("+")[0] == "screen":
        budget["max_evaluations"] = 1_000_000_000
    else:
        budget["iterations"] = 1_000 // max(1, int(budget.get("trials_per_iteration", 2)))
    return data


def run_one(campaign_file: Path, strategy: str, seed: int, seconds: float, oracle: bool = False) -> dict[str, Any]:
    """One run, in this process (the child of :func:`run_in_child`)."""
    import hts.campaign.runner as runner
    from hts.campaign.results import CampaignResults, verification_course

    if strategy.endswith("+random-placement"):
        make = runner.make_proposer
        runner.make_proposer = lambda c, h, b=None: RandomPlacementProposer(make(c, h, b))  # type: ignore[assignment]
    if strategy.endswith("+refine"):
        from hts.campaign.refine import RefiningProposer

        loop = runner.run_loop

        def refined_loop(campaign: Any, host: Any, store: Any, proposer: Any, scorer: Any, **kw: Any) -> Any:
            return loop(campaign, host, store, RefiningProposer(proposer, host, campaign, scorer), scorer, **kw)

        runner.run_loop = refined_loop  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(yaml.safe_dump(campaign_for(campaign_file, strategy, seed, seconds, oracle)))
        t0, c0 = time.perf_counter(), time.process_time()
        summary, out = runner.run_campaign(path, out=Path(tmp) / "run")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        res = CampaignResults.open(out)
        try:
            s = res.summary()
            course = verification_course(res.store.motifs_frame(oracle=True), res.oracle_results()) if oracle else {}
            picks = oracle_picks(res) if oracle else []
        finally:
            res.close()
    verified = (
        {
            k: s[k]
            for k in (
                "verified",
                "confirmed",
                "verified_motifs",
                "confirmed_motifs",
                "shortlist_precision",
                "oracle_failed",
            )
        }
        if oracle
        else {}
    )
    return {
        "campaign": campaign_file.stem,
        "strategy": strategy,
        "seed": seed,
        "budget_s": seconds,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "evaluations": s["evaluations"],
        "unique_hits": s["hits"],
        "motifs": s["hit_motifs"],
        "compositions": s["hit_compositions"],
        "hits_per_1000": 1000.0 * s["hits"] / max(1, s["evaluations"]),
        "motifs_per_cpu_hour": 3600.0 * s["hit_motifs"] / max(cpu, 1e-9),
        "trials": summary.trials,
        **verified,
        **course,
        **({"oracle_picks": picks} if oracle else {}),
    }


def oracle_picks(res: Any) -> list[dict[str, Any]]:
    """Every verified candidate: its defects, motif, the surrogate's mean and std and xTB's value per
    target, and xTB's verdict (what the shortlist precision is made of; the defects let a later model
    be scored offline on the candidates a campaign actually picked)."""
    ranked = res.ranked()
    if "oracle_status" not in ranked:
        return []
    names = list(res.campaign.targets)
    cols = ["hash", "defects", "motif", "oracle_created", "oracle_status", "oracle_hit"]
    cols += [f"{k}_{n}" for n in names for k in ("pred", "std", "oracle") if f"{k}_{n}" in ranked]
    rows = ranked.loc[ranked["oracle_status"].notna(), [c for c in cols if c in ranked]]
    return json.loads(rows.to_json(orient="records"))


def run_in_child(campaign_file: Path, strategy: str, seed: int, seconds: float, oracle: bool = False) -> dict[str, Any]:
    """One run in a fresh process on one thread (the figures do not depend on what ran before)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, __file__, "--child", str(campaign_file), strategy, str(seed), str(seconds), str(int(oracle))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{campaign_file.stem} {strategy} seed {seed} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


COLUMNS = ("motifs", "compositions", "unique_hits", "hits_per_1000", "motifs_per_cpu_hour", "evaluations")


def table(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Means over seeds: ``{campaign: {strategy: {column: mean}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in runs:
        out.setdefault(r["campaign"], {}).setdefault(r["strategy"], {}).setdefault("_n", 0)
    for camp, by_strategy in out.items():
        for strat in by_strategy:
            rs = [r for r in runs if r["campaign"] == camp and r["strategy"] == strat]
            by_strategy[strat] = {c: float(np.mean([r[c] for r in rs])) for c in COLUMNS} | {"runs": len(rs)}
    return out


def print_table(summary: dict[str, dict[str, dict[str, float]]]) -> None:
    head = f"{'campaign':<22}{'strategy':<26}{'motifs':>8}{'comps':>7}{'hits':>8}{'hits/1k':>9}{'motifs/CPU-h':>14}"
    print(head)
    for camp, by_strategy in summary.items():
        for strat, m in by_strategy.items():
            print(
                f"{camp:<22}{strat:<26}{m['motifs']:>8.1f}{m['compositions']:>7.1f}{m['unique_hits']:>8.0f}"
                f"{m['hits_per_1000']:>9.1f}{m['motifs_per_cpu_hour']:>14.0f}"
            )


VERIFIED = ("verified", "verified_motifs", "confirmed_motifs", "shortlist_precision", "new_motif_calls")


def print_verification(runs: list[dict[str, Any]]) -> None:
    """Per run with the oracle: verified candidates and motifs, confirmed motifs, shortlist precision,
    and the fraction of oracle calls on a motif not verified before."""
    print(f"{'campaign':<22}{'strategy':<12}{'seed':>5}" + "".join(f"{c:>20}" for c in VERIFIED))
    for r in runs:
        if "verified" in r:
            cells = "".join(f"{float(r[c]):>20.2f}" for c in VERIFIED)
            print(f"{r['campaign']:<22}{r['strategy']:<12}{r['seed']:>5}{cells}")


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        campaign_file, strategy, seed, seconds, oracle = sys.argv[2:7]
        print(json.dumps(run_one(Path(campaign_file), strategy, int(seed), float(seconds), oracle == "1")))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--campaigns", nargs="*", type=Path, default=[])
    p.add_argument("--strategies", nargs="*", default=list(STRATEGIES))
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--seconds", type=float, default=60.0, help="wall-clock budget of every run")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (each on one thread)")
    p.add_argument(
        "--oracle", action="store_true", help="verify beside generation (xTB on a worker of its own) and report it"
    )
    p.add_argument("--merge", nargs="*", type=Path, default=[], help="earlier result files to include")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/motifs.json")
    args = p.parse_args(argv)
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    for f in args.merge:
        for r in json.loads(f.read_text())["runs"]:
            runs[(r["campaign"], r["strategy"], r["seed"])] = r
    todo = [(c, s, seed) for c in args.campaigns for seed in args.seeds for s in args.strategies]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for r in pool.map(lambda t: run_in_child(t[0], t[1], t[2], args.seconds, args.oracle), todo):
            runs[(r["campaign"], r["strategy"], r["seed"])] = r
            print(json.dumps(r), flush=True)
    summary = table(list(runs.values()))
    print_table(summary)
    if args.oracle:
        print_verification(list(runs.values()))
    if todo:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {"machine": f"{platform.node()} {os.cpu_count()} cores", "runs": list(runs.values()), "table": summary}
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
