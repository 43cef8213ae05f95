"""Distinct confirmed motifs counted by one judge: does a strategy find more motifs, or only split them?

A campaign groups its hits into motifs by stripping spectators with the surrogate in use (``hts.campaign.
motifs``). Two runs that score with different surrogates (``screen`` and ``screen+refit``: the second
moves to refitted models during the run) therefore count motifs with different rulers: a surrogate that
cannot tell a spectator from a part of the defect keeps it in the core, and every decoration becomes a
"distinct" motif. This benchmark regroups the xTB-confirmed candidates of every run with the same judges:

- ``shipped``: the shipped surrogate, its predictions shifted by each candidate's own xTB residual (the
  rule a campaign applies to a confirmed near miss, :func:`hts.campaign.motifs.verified_motif`);
- ``informed``: the shipped surrogate refitted on its training rows plus every verified candidate of
  every run given (their xTB values for the campaign's targets), shifted by the residual in the same
  way: the best model these runs together know of.

Reported per run and judge: confirmed candidates, distinct motifs among them, and the largest motifs
with their cores in words.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/research/bench_motif_judge.py \\
        --results benchmarks/results/motifs_oracle_refit_bg.json --out benchmarks/results/motif_judge.json
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS = ROOT / "campaigns"


def runs_of(paths: list[Path]) -> list[dict[str, Any]]:
    """Every run with oracle picks in the result files of ``bench_motifs.py --oracle``."""
    runs = []
    for path in paths:
        for run in json.loads(path.read_text())["runs"]:
            if run.get("oracle_picks"):
                runs.append(run)
    return runs


def informed_model(model_dir: Path, campaign: Any, host: Any, picks: list[dict[str, Any]], out: Path) -> Path:
    """The shipped surrogate refitted on its rows plus every verified pick (campaign targets only)."""
    import pandas as pd

    from hts.campaign.refit import RefitJob, fit_refit
    from hts.campaign.store import parse_defects
    from surrogate.model import SurrogateModel

    targets = SurrogateModel.load(model_dir).targets
    seen: dict[str, dict[str, Any]] = {}
    for p in picks:
        if p.get("oracle_status") in ("converged", "converged_after_retry"):
            seen[p["defects"]] = p
    defects = [tuple(parse_defects(d)) for d in seen]
    rows = [{t: p.get(f"oracle_{t}", float("nan")) for t in targets} for p in seen.values()]
    labels = pd.DataFrame(rows, columns=targets, dtype=float)
    job = RefitJob(model_dir, out / "informed", host.name, tuple(host.supercell), defects, labels)
    return fit_refit(job, thread_count=1)


def judge_motifs(picks: list[dict[str, Any]], model_dir: Path, campaign: Any, host: Any) -> list[dict[str, str]]:
    """``{motif, core}`` of each confirmed pick under the model in ``model_dir`` (residual-shifted)."""
    from hts.campaign.motifs import describe_core, verified_motif
    from hts.campaign.store import parse_defects
    from hts.defects import DefectConfiguration
    from surrogate.scoring import load_cached, score_batch

    scorer = SimpleNamespace(score=lambda batch: score_batch(load_cached(model_dir), batch))
    out = []
    for p in picks:
        config = DefectConfiguration.from_mapping(host, parse_defects(p["defects"]))
        measured = {t: float(p[f"oracle_{t}"]) for t in campaign.targets}
        found = verified_motif(config, measured, scorer, campaign)
        out.append({"motif": found["motif"], "core": describe_core(host, parse_defects(found["core"]))})
    return out


def main() -> None:
    from hts.campaign.config import load_campaign
    from hts.hosts import get_host
    from hts.settings import default_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", nargs="+", type=Path, required=True, help="bench_motifs.py --oracle result files")
    ap.add_argument("--model", type=Path, default=default_model("surrogate"), help="the shipped surrogate")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/motif_judge.json")
    args = ap.parse_args()
    runs = runs_of(args.results)
    by_campaign: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for run in runs:
        by_campaign[run["campaign"]].append(run)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, group in by_campaign.items():
            campaign = load_campaign(CAMPAIGNS / f"{name}.yaml")
            host = get_host(campaign.host.material, campaign.host.supercell)
            picks = [p for run in group for p in run["oracle_picks"]]
            informed = informed_model(args.model, campaign, host, picks, Path(tmp) / name)
            for run in group:
                confirmed = [p for p in run["oracle_picks"] if p.get("oracle_hit") is True]
                row: dict[str, Any] = {
                    "campaign": name,
                    "strategy": run["strategy"],
                    "seed": run["seed"],
                    "verified": len(run["oracle_picks"]),
                    "confirmed": len(confirmed),
                    "confirmed_motifs_in_run": run["confirmed_motifs"],
                }
                for judge, model in (("shipped", args.model), ("informed", informed)):
                    found = judge_motifs(confirmed, model, campaign, host)
                    counts = collections.Counter(f["motif"] for f in found)
                    cores = {f["motif"]: f["core"] for f in found}
                    row[f"motifs_{judge}"] = len(counts)
                    row[f"largest_{judge}"] = [[cores[m], n] for m, n in counts.most_common(5)]
                table.append(row)
                print(json.dumps({k: v for k, v in row.items() if not k.startswith("largest")}), flush=True)
    result = {"machine": platform.platform(), "results": [str(p) for p in args.results], "table": table}
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
