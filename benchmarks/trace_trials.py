"""Same-seed trace of a campaign's trials: what each trial ran and found, for comparing two versions.

Runs the campaign with a fixed number of iterations (no wall clock, no oracle, scoring in-process, one
thread) and writes, per trial, its kind, knob setting, samples, new candidates, hits and score.
Two versions of the loop that behave the same give identical traces for the same seed; the issue
note of a loop change names the first trial where they differ and why.

Run (before and after a change, each on its own checkout; Ax's rounding of the defect counts depends
on Python's string-hash salt, so fix it as ``hts run`` does):
    PYTHONHASHSEED=0 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/trace_trials.py \\
        --campaign campaigns/mos2_midgap.yaml --seed 0 --iterations 8 --out /tmp/trace_after.json
    .venv/bin/python benchmarks/trace_trials.py --compare /tmp/trace_before.json /tmp/trace_after.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("kind", "knobs", "n_generated", "n_valid", "n_new", "n_hits", "score")


def trial_kind_of(row: dict[str, Any]) -> str:
    """The stored kind of a trial row (the ``kind`` column where the store has one)."""
    if row.get("kind"):
        return str(row["kind"])
    from hts.campaign.results import trial_kind

    return trial_kind(row["strategy"], row["extra"])


def trace(
    campaign: Path, strategy: str, seed: int, iterations: int, bo: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run the campaign (with ``bo`` options set) and return one record of :data:`FIELDS` per trial."""
    from hts.campaign.results import CampaignResults
    from hts.campaign.runner import run_campaign

    data = yaml.safe_load(campaign.read_text())
    data.update(strategy=strategy, seed=seed)
    data["budget"] = {"iterations": iterations, "trials_per_iteration": 2, "samples_per_trial": 64}
    data["oracle"] = {"enabled": False}
    data["dask"] = {"enabled": False}
    if bo:
        data["bo"] = {**data.get("bo", {}), **bo}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / campaign.name  # the shipped campaigns name their models `default`
        path.write_text(yaml.safe_dump(data))
        _, out = run_campaign(path, out=Path(tmp) / "run")
        res = CampaignResults.open(out)
        try:
            rows = res.store.trials_frame().to_dict("records")
        finally:
            res.close()
    return [
        {
            "kind": trial_kind_of(r),
            "knobs": {k: round(float(v), 6) for k, v in sorted(r["knobs"].items())},
            **{k: int(r[k]) for k in ("n_generated", "n_valid", "n_new", "n_hits")},
            "score": round(float(r["metrics"]["score"]), 9),
        }
        for r in rows
    ]


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int:
    """Print the first trial where two traces differ (0: identical). A probe recorded as ``local`` by a
    store without the kind column (its flags told the two apart only by a field) counts as the same."""
    renamed = 0
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x["kind"] == "local" and y["kind"] == "probe":
            x, renamed = {**x, "kind": "probe"}, renamed + 1
        if x != y:
            print(f"trial {i} differs:\n  before {x}\n  after  {y}")
            return 1
    if len(a) != len(b):
        print(f"same first {min(len(a), len(b))} trials, then {len(a)} vs {len(b)} trials")
        return 1
    print(f"identical: {len(a)} trials" + (f" ({renamed} probes recorded as local before)" if renamed else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaign", type=Path, default=ROOT / "campaigns" / "mos2_midgap.yaml")
    ap.add_argument("--strategy", default="llm-bo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=8)
    ap.add_argument("--bo", type=json.loads, default=None, help="bo options as JSON, e.g. '{\"local_trials\": 0}'")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args(argv)
    if args.compare:
        before, after = (json.loads(p.read_text())["trials"] for p in args.compare)
        return compare(before, after)
    trials = trace(args.campaign.resolve(), args.strategy, args.seed, args.iterations, args.bo)
    doc = {"campaign": args.campaign.name, "strategy": args.strategy, "seed": args.seed, "trials": trials}
    text = json.dumps(doc, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
