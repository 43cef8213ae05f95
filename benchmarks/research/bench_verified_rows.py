"""Do the oracle's verified picks, added to the training labels, correct the surrogate where it picks?

The oracle's misses come in families: on the deep-level target every Mo vacancy with a Se or W beside it
that a screen picked was predicted at a LUMO of 0.55-0.65 eV above the VBM and computed by xTB at
0.41-0.43 eV. A refit on the labels plus the verified picks (``oracle.refit_surrogate``) could learn
that, if a few rows among 1,500 move the trees; a weight on the verified rows makes them count more.

Leave one seed out: for every property the shipped campaigns target, a CatBoost regressor on the sparse
features (the product's recipe, fewer trees) is fitted on the bundled labels plus the verified picks of
the other seeds' runs (weight ``w`` each; ``w`` 0: labels only; a cell the held-out seed also picked is left
out of training), and predicts the held-out seed's picks. ``--split halves``: the training picks are the earlier
half of every run (in the order the oracle verified them), the held-out ones the later half: what a refit in
the night could learn.
Reported per property and weight: MAE on the held-out picks, and per campaign how many held-out picks
the model puts inside every window of the campaign against how many xTB puts inside (precision of the
picks it would still send, and the confirmed picks it would keep).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/research/bench_verified_rows.py --weights 0 1 10 \\
        --out benchmarks/results/verified_rows.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/research/bench_verified_rows.py --weights 0 1 10 --split halves \\
        --out benchmarks/results/verified_rows_halves.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.research.bench_pick_precision import TARGETS

RESULTS = Path(__file__).resolve().parents[1] / "results"
PICK_FILES = (
    "motifs_oracle_seed2.json",
    "motifs_oracle_current.json",
    "motifs_oracle_novelty.json",
    "motifs_oracle_novelty_ablation.json",
    "motifs_oracle_learn_local.json",
)


def verified_picks(files: tuple[str, ...] = PICK_FILES) -> list[dict[str, Any]]:
    """Every verified pick of the oracle benchmark's result files (converged, one per run and hash),
    with its run's campaign and seed."""
    picks: dict[tuple[str, int, str, str], dict[str, Any]] = {}
    for name in files:
        for run in json.loads((RESULTS / name).read_text())["runs"]:
            done = [p for p in run.get("oracle_picks", []) if p.get("oracle_status") == "converged"]
            done.sort(key=lambda p: p.get("oracle_created", ""))
            for i, p in enumerate(done):
                key = (run["campaign"], run["seed"], run["strategy"], p["hash"])
                info = {"campaign": run["campaign"].removeprefix("mos2_"), "seed": run["seed"], "order": i}
                picks[key] = {**p, **info, "run_picks": len(done)}
    return list(picks.values())


def features(configs: list[Any]) -> np.ndarray:
    from hts.defects import ConfigBatch
    from surrogate.features import make_featuriser

    return np.asarray(make_featuriser("sparse", {}).transform(ConfigBatch.from_configs(configs)), dtype=float)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from catboost import CatBoostRegressor

    from hts.campaign.store import parse_defects
    from hts.defects import DefectConfiguration
    from surrogate.training import load_dataset

    ds = load_dataset(args.data)
    x_lab = features(list(ds.configs))
    picks = verified_picks()
    x_pick = features([DefectConfiguration.from_mapping(ds.host, parse_defects(p["defects"])) for p in picks])
    seeds = sorted({p["seed"] for p in picks})
    props = sorted({k for w in TARGETS.values() for k in w})
    pred = {w: {k: np.full(len(picks), np.nan) for k in props} for w in args.weights}
    if args.split == "seeds":
        tests = [np.array([p["seed"] == seed for p in picks]) for seed in seeds]
    else:  # every run's later half, taught by the earlier halves
        tests = [np.array([p["order"] >= p["run_picks"] / 2 for p in picks])]
    for prop in props:
        y_lab = ds.table[prop].to_numpy(dtype=float)
        y_pick = np.array([p.get(f"oracle_{prop}", np.nan) for p in picks], dtype=float)
        ok_lab = np.isfinite(y_lab)
        for test in tests:
            held_out = {p["hash"] for p, t in zip(picks, test, strict=True) if t}
            seen = np.array([p["hash"] in held_out for p in picks])  # the same cell picked in another seed
            train_pick = ~test & ~seen & np.isfinite(y_pick)
            for w in args.weights:
                x = np.vstack([x_lab[ok_lab], x_pick[train_pick]]) if w else x_lab[ok_lab]
                y = np.concatenate([y_lab[ok_lab], y_pick[train_pick]]) if w else y_lab[ok_lab]
                weight = np.concatenate([np.ones(ok_lab.sum()), np.full(train_pick.sum(), w)]) if w else None
                model = CatBoostRegressor(
                    iterations=args.iterations, depth=6, learning_rate=0.05, random_seed=0, verbose=0, thread_count=1
                )
                model.allow_writing_files = False
                model.fit(x, y, sample_weight=weight)
                pred[w][prop][test] = model.predict(x_pick[test])
    return {"picks": len(picks), "seeds": seeds, "split": args.split, "table": summarise(picks, pred, props)}


def summarise(picks: list[dict[str, Any]], pred: dict[float, dict[str, np.ndarray]], props: list[str]) -> list[Any]:
    rows = []
    for w, by_prop in pred.items():
        for prop in props:
            y = np.array([p.get(f"oracle_{prop}", np.nan) for p in picks], dtype=float)
            ok = np.isfinite(y) & np.isfinite(by_prop[prop])  # held-out picks with an xTB value
            rows.append({"weight": w, "property": prop, "picks": int(ok.sum()), "mae": _mae(by_prop[prop], y, ok)})
        for campaign, windows in TARGETS.items():
            idx = [
                i
                for i, p in enumerate(picks)
                if p["campaign"] == campaign and all(np.isfinite(by_prop[k][i]) for k in windows)
            ]
            inside_model = [all(lo <= by_prop[k][i] <= hi for k, (lo, hi) in windows.items()) for i in idx]
            inside_xtb = [bool(picks[i]["oracle_hit"]) for i in idx]
            sent = sum(inside_model)
            kept = sum(m and x for m, x in zip(inside_model, inside_xtb, strict=True))
            rows.append(
                {"weight": w, "campaign": campaign, "picks": len(idx), "xtb_inside": sum(inside_xtb),
                 "model_inside": sent, "both_inside": kept}
            )  # fmt: skip
    return rows


def _mae(p: np.ndarray, y: np.ndarray, ok: np.ndarray) -> float:
    return round(float(np.mean(np.abs(p[ok] - y[ok]))), 4) if ok.any() else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="datasets/mos2_8x8_xtb")
    p.add_argument("--weights", nargs="+", type=float, default=[0.0, 1.0, 10.0])
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--split", choices=["seeds", "halves"], default="seeds", help="held out: a seed, or later halves")
    p.add_argument("--out", type=Path, default=RESULTS / "verified_rows.json")
    args = p.parse_args(argv)
    doc = run(args)
    for row in doc["table"]:
        print(json.dumps(row))
    doc["machine"] = f"{platform.node()} {os.cpu_count()} cores"
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
