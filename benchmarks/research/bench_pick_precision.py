"""Which uncertainty makes the oracle's picks land inside the targets? Held-out precision of the picks.

The oracle verifies the candidates with the highest probability of being inside every target window
(:func:`hts.campaign.acquisition.marginal_hit_probability`), so that probability must be calibrated
where the picks are: a std that is too small for dense vacancy clusters turns their extrapolated
means into confident hits that xTB rejects. This compares predictive stds on held-out xTB labels:

- ``ensemble``: CatBoost's virtual-ensemble knowledge std times one split-conformal factor per target
  (``Prediction.knowledge_std``; the product's std before the error model);
- ``product``: the product's std (``Prediction.std``: the error model of ``surrogate/error_model.py``,
  fitted inside ``SurrogateModel.fit`` on its calibration folds);
- ``error-model (descriptors)``: a normalised conformal std ``s * g(x)``: ``g`` is a small CatBoost
  regressor of the absolute out-of-fold residual on a few descriptors of the configuration (defect
  counts per type, number of defects, vacancy pairs within the motif adjacency and the largest vacancy
  cluster), ``s`` the split-conformal factor of ``|r| / g`` (its own inner folds);
- ``error-model (features)``: the same with ``g`` on the model's full feature table.

Outer K-fold: per fold, the shipped model is fitted on the other folds; the error models are fitted on
out-of-fold residuals of inner folds of the training part only (nothing of the held-out fold is seen).
Per campaign target (the shipped MoS2 campaigns' windows, rules ignored) and std:

- log loss and Brier score of the hit probability against the held-out hit (lower is better);
- precision of the picks: the ``--k`` held-out rows of highest probability in each fold, and how many
  are truly inside (xTB), against the probabilities' sum (what the model expected).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/research/bench_pick_precision.py \\
        --folds 5 --iterations 500 --out benchmarks/results/pick_precision.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.research.bench_uncertainty_density import vacancy_measures

Z90 = NormalDist().inv_cdf(0.95)
TARGETS: dict[str, dict[str, tuple[float, float]]] = {
    "homo_lumo_window": {"normalized_homo": (-0.05, 0.10), "normalized_lumo": (0.8, 1.2)},
    "deep_level": {"normalized_homo": (-0.05, 0.10), "normalized_lumo": (0.5, 0.8)},
    "formation_energy": {"formation_energy_per_site": (0.25, 0.75), "homo_lumo_gap": (1.2, 2.0)},
    "midgap": {"homo_lumo_gap": (0.95, 1.05), "formation_energy": (0.0, 15.0)},
    "vacancy_pair": {"homo_lumo_gap": (0.45, 0.60)},
}
PROPERTIES = sorted({p for w in TARGETS.values() for p in w})


def descriptors(batch: Any) -> np.ndarray:
    """(N, D): the product's error-model descriptors (:func:`surrogate.error_model.descriptors`) and
    the number of vacancies."""
    from surrogate.error_model import descriptors as product_descriptors

    n_vac, _ = vacancy_measures(batch)
    return np.column_stack([product_descriptors(batch), n_vac])


def fit_error_model(x: np.ndarray, abs_res: np.ndarray, seed: int, folds: int = 4) -> tuple[Any, float]:
    """``g`` (CatBoost on ``|r|``) and its split-conformal factor ``s`` from inner folds."""
    from catboost import CatBoostRegressor

    def fit(rows: np.ndarray) -> Any:
        m = CatBoostRegressor(iterations=300, depth=4, learning_rate=0.05, random_seed=seed, verbose=0, thread_count=1)
        m.allow_writing_files = False
        m.fit(x[rows], abs_res[rows])
        return m

    n = len(abs_res)
    fold = np.empty(n, dtype=int)
    fold[np.random.default_rng(seed + 1).permutation(n)] = np.arange(n) % folds
    g_oof = np.empty(n)
    for f in range(folds):
        g_oof[fold == f] = fit(np.flatnonzero(fold != f)).predict(x[fold == f])
    floor = float(np.quantile(abs_res, 0.05))
    ratio = abs_res / np.maximum(g_oof, floor)
    level = min(1.0, np.ceil((n + 1) * 0.9) / n)
    s = float(np.quantile(ratio, level, method="higher")) / Z90
    model = fit(np.arange(n))
    model.floor_ = floor
    return model, s


def hit_probability(mean: np.ndarray, std: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    from hts.campaign.acquisition import marginal_hit_probability

    return marginal_hit_probability(mean, std, windows)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from surrogate.features import make_featuriser
    from surrogate.model import SurrogateModel
    from surrogate.training import load_dataset

    ds = load_dataset(args.data)
    batch = ds.batch()
    n = len(ds)
    y = ds.table[PROPERTIES].to_numpy(dtype=float)
    feat = make_featuriser("sparse", {})
    X_full = np.asarray(feat.transform(batch), dtype=float)
    X_desc = descriptors(batch)
    folds = np.empty(n, dtype=int)
    folds[np.random.default_rng(args.seed).permutation(n)] = np.arange(n) % args.folds
    variants = ["ensemble", "product", "error-model (descriptors)", "error-model (features)"]
    mean = np.full((n, len(PROPERTIES)), np.nan)
    std = {v: np.full_like(mean, np.nan) for v in variants}
    params = {"iterations": args.iterations}
    t0 = time.perf_counter()
    for f in range(args.folds):
        tr, te = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        labels = ds.table[PROPERTIES].iloc[tr].reset_index(drop=True)
        model = SurrogateModel.fit(
            feat, batch.take(tr), labels, PROPERTIES, params=params, seed=args.seed, thread_count=1
        )
        pred = model.predict(batch.take(te), uncertainty="total")
        mean[te], std["ensemble"][te], std["product"][te] = pred.mean, pred.knowledge_std, pred.std
        inner = np.empty(tr.size, dtype=int)
        inner[np.random.default_rng(args.seed + 2).permutation(tr.size)] = np.arange(tr.size) % args.inner_folds
        oof = np.full((tr.size, len(PROPERTIES)), np.nan)
        for g in range(args.inner_folds):
            a, b = tr[inner != g], tr[inner == g]
            sub = SurrogateModel.fit(
                feat,
                batch.take(a),
                ds.table[PROPERTIES].iloc[a].reset_index(drop=True),
                PROPERTIES,
                params=params,
                seed=args.seed,
                thread_count=1,
                calibrate=False,
            )
            oof[inner == g] = sub.predict(batch.take(b), uncertainty="total").mean
        for j in range(len(PROPERTIES)):
            ok = np.isfinite(y[tr, j]) & np.isfinite(oof[:, j])
            r = np.abs(y[tr, j] - oof[:, j])[ok]
            for name, X in (("error-model (descriptors)", X_desc), ("error-model (features)", X_full)):
                g_model, s = fit_error_model(X[tr][ok], r, args.seed)
                std[name][te, j] = s * np.maximum(g_model.predict(X[te]), g_model.floor_)
        print(f"fold {f + 1}/{args.folds}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return {
        "command": " ".join(sys.argv),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs), one thread",
        "data": args.data,
        "n_rows": n,
        "folds": args.folds,
        "inner_folds": args.inner_folds,
        "iterations": args.iterations,
        "k_per_fold": args.k,
        "seconds": time.perf_counter() - t0,
        "coverage_90": {v: coverage(y, mean, std[v]) for v in variants},
        "targets": {t: score_target(w, y, mean, std, folds, args) for t, w in TARGETS.items()},
    }


def coverage(y: np.ndarray, mean: np.ndarray, s: np.ndarray) -> dict[str, float]:
    out = {}
    for j, p in enumerate(PROPERTIES):
        ok = np.isfinite(y[:, j]) & np.isfinite(mean[:, j])
        out[p] = float((np.abs(y[ok, j] - mean[ok, j]) <= Z90 * s[ok, j]).mean())
    return out


def score_target(
    windows: dict[str, tuple[float, float]],
    y: np.ndarray,
    mean: np.ndarray,
    std: dict[str, np.ndarray],
    folds: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, Any]:
    cols = [PROPERTIES.index(p) for p in windows]
    w = list(windows.values())
    truth_ok = np.isfinite(y[:, cols]).all(axis=1)
    truth = np.all([(y[:, c] >= lo) & (y[:, c] <= hi) for c, (lo, hi) in zip(cols, w, strict=True)], axis=0)
    out: dict[str, Any] = {"true_hits": int(truth[truth_ok].sum()), "rows": int(truth_ok.sum())}
    for v, s in std.items():
        p = np.clip(hit_probability(mean[:, cols], s[:, cols], w), 1e-6, 1 - 1e-6)
        ok = truth_ok
        t = truth[ok].astype(float)
        picks = np.concatenate(
            [
                np.flatnonzero(ok & (folds == f))[np.argsort(-p[ok & (folds == f)], kind="stable")[: args.k]]
                for f in range(args.folds)
            ]
        )
        out[v] = {
            "log_loss": float(-np.mean(t * np.log(p[ok]) + (1 - t) * np.log(1 - p[ok]))),
            "brier": float(np.mean((p[ok] - t) ** 2)),
            "picks": int(picks.size),
            "picks_inside": int(truth[picks].sum()),
            "picks_expected": float(p[picks].sum()),
        }
    return out


def print_table(out: dict[str, Any]) -> None:
    print(f"{'target':<18} {'std':<28} {'log loss':>8} {'Brier':>7} {'picks inside':>13} {'expected':>9}")
    for t, r in out["targets"].items():
        for v in out["coverage_90"]:
            s = r[v]
            print(
                f"{t:<18} {v:<28} {s['log_loss']:>8.4f} {s['brier']:>7.4f} "
                f"{s['picks_inside']:>6d} / {s['picks']:<4d} {s['picks_expected']:>9.1f}"
            )
    for v, c in out["coverage_90"].items():
        print(f"coverage 90 %, {v}: " + ", ".join(f"{p} {x:.2f}" for p, x in c.items()))


def write_result(out: dict[str, Any], path: str | Path) -> None:
    """Write a research script's result as indented JSON, making its folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=1) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="datasets/mos2_8x8_xtb")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--inner-folds", type=int, default=4)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--k", type=int, default=5, help="picks per held-out fold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/pick_precision.json")
    args = p.parse_args()
    out = run(args)
    write_result(out, args.out)
    print_table(out)


if __name__ == "__main__":
    main()
