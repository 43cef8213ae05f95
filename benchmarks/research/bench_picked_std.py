"""Do the surrogate's stds hold on the candidates a campaign actually picked? (the winner's curse)

The oracle verifies the candidates of highest hit probability out of millions screened, so its picks
are where the surrogate's error happens to point into the target windows. A std calibrated on random
held-out rows (``bench_pick_precision.py``) can be right there and still too small on the picks. This
scores predictive stds on the oracle benchmark's verified candidates (``bench_motifs.py --oracle``
records each one's defects, the surrogate's mean and std and xTB's values): log loss and Brier score
of the hit probability against xTB's verdict, and what sending only the candidates with probability
>= 0.5 would have given (precision, confirmed motifs kept).

Stds (each an error model ``s * g(x)`` as in ``surrogate/error_model.py``, fitted on the 4-fold
out-of-fold residuals of the shipped recipe on the bundled labels; the mean is the one the campaign
recorded):

- ``recorded``: the std the campaign used;
- ``descriptors``: ``g`` on the product's descriptors (the product's recipe refitted here);
- ``+novelty``: descriptors plus the distance from the configuration to its nearest labelled
  configuration in the standardised feature space (for a labelled row: to the nearest row of the
  other folds);
- ``+features``: descriptors plus the whole sparse feature table;
- ``+spread``: descriptors plus the spread of the means of 3 sub-models, each fitted on two thirds
  of the labels that the row's own regressor saw (nested folds: out of fold for labelled rows, the
  same construction averaged over the outer folds for the picks).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/research/bench_picked_std.py \\
        --picks benchmarks/results/motifs_oracle.json --out benchmarks/results/picked_std.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.research.bench_pick_precision import TARGETS, fit_error_model, hit_probability, write_result
from hts.campaign.results import GOOD_ORACLE_STATUS

FOLDS = 4
INNER = 3
VARIANTS = ("recorded", "descriptors", "+novelty", "+features", "+spread")


def load_picks(files: list[Path]) -> list[dict[str, Any]]:
    """Verified candidates with their defects, each tagged with its campaign's target name."""
    out = []
    for f in files:
        for run in json.loads(f.read_text())["runs"]:
            target = run["campaign"].removeprefix("mos2_")
            for p in run.get("oracle_picks", []):
                if p.get("defects") is not None and p.get("oracle_status") in GOOD_ORACLE_STATUS and target in TARGETS:
                    out.append({**p, "target": target, "strategy": run["strategy"], "seed": run["seed"]})
    return out


def nearest_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a),) Euclidean distance from each row of ``a`` to its nearest row of ``b``."""
    out = np.empty(len(a))
    for i in range(0, len(a), 512):
        d = ((a[i : i + 512, None, :] - b[None, :, :]) ** 2).sum(axis=2)
        out[i : i + 512] = np.sqrt(d.min(axis=1))
    return out


def fit_means(feat: Any, batch: Any, table: Any, props: list[str], rows: np.ndarray, iterations: int) -> Any:
    from surrogate.model import SurrogateModel

    labels = table[props].iloc[rows].reset_index(drop=True)
    return SurrogateModel.fit(
        feat, batch.take(rows), labels, props, params={"iterations": iterations}, thread_count=1, calibrate=False
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from hts.campaign.store import parse_defects
    from hts.defects import ConfigBatch, DefectConfiguration
    from surrogate.error_model import descriptors
    from surrogate.features import make_featuriser
    from surrogate.training import load_dataset

    picks = load_picks(args.picks)
    if not picks:
        raise SystemExit("no verified candidate with its defects in " + ", ".join(map(str, args.picks)))
    props = sorted({p for t in {q["target"] for q in picks} for p in TARGETS[t]})
    ds = load_dataset(args.data)
    batch, n = ds.batch(), len(ds)
    host = batch.host
    pbatch = ConfigBatch.from_configs(
        [DefectConfiguration.from_mapping(host, parse_defects(p["defects"])) for p in picks]
    )
    feat = make_featuriser("sparse", {})
    X, XP = (np.asarray(feat.transform(b), dtype=float) for b in (batch, pbatch))
    D, DP = descriptors(batch), descriptors(pbatch)
    mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-9
    Z, ZP = (X - mu) / sd, (XP - mu) / sd
    y = ds.table[props].to_numpy(dtype=float)
    fold = np.empty(n, dtype=int)
    fold[np.random.default_rng(args.seed).permutation(n)] = np.arange(n) % FOLDS
    oof = np.full((n, len(props)), np.nan)
    spread = np.full((n, len(props)), np.nan)
    spread_p = np.zeros((len(picks), len(props)))
    novelty = np.empty(n)
    t0 = time.perf_counter()
    for f in range(FOLDS):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        oof[te] = fit_means(feat, batch, ds.table, props, tr, args.iterations).predict(batch.take(te)).mean
        novelty[te] = nearest_distance(Z[te], Z[tr])
        inner = np.arange(tr.size) % INNER
        np.random.default_rng(args.seed + 7 + f).shuffle(inner)
        subs = [fit_means(feat, batch, ds.table, props, tr[inner != g], args.iterations) for g in range(INNER)]
        spread[te] = np.std([m.predict(batch.take(te)).mean for m in subs], axis=0)
        spread_p += np.std([m.predict(pbatch).mean for m in subs], axis=0) / FOLDS
        print(f"fold {f + 1}/{FOLDS}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    novelty_p = nearest_distance(ZP, Z)
    std = {v: np.full((len(picks), len(props)), np.nan) for v in VARIANTS}
    for j, p in enumerate(props):
        std["recorded"][:, j] = [q.get(f"std_{p}", np.nan) for q in picks]
        ok = np.isfinite(y[:, j]) & np.isfinite(oof[:, j])
        r = np.abs(y[ok, j] - oof[ok, j])
        inputs = {
            "descriptors": (D, DP),
            "+novelty": (np.column_stack([D, novelty]), np.column_stack([DP, novelty_p])),
            "+features": (np.column_stack([D, X]), np.column_stack([DP, XP])),
            "+spread": (np.column_stack([D, spread[:, j]]), np.column_stack([DP, spread_p[:, j]])),
        }
        for v, (a, b) in inputs.items():
            g, s = fit_error_model(a[ok], r, args.seed)
            std[v][:, j] = s * np.maximum(g.predict(b), g.floor_)
    return {
        "command": " ".join(sys.argv),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs), one thread",
        "picks_from": [str(f) for f in args.picks],
        "n_picks": len(picks),
        "seconds": round(time.perf_counter() - t0),
        "novelty": {"labels_median": float(np.median(novelty)), "picks_median": float(np.median(novelty_p))},
        "scores": score(picks, props, std),
        "picks": [
            {
                "target": q["target"],
                "strategy": q["strategy"],
                "seed": q["seed"],
                "motif": q.get("motif"),
                "inside": bool(q["oracle_hit"]),
                "novelty": float(novelty_p[i]),
            }
            | {f"p_{v}": float(hit_probability(*mean_std(q, props, std[v][i]))[0]) for v in VARIANTS}
            for i, q in enumerate(picks)
        ],
    }


def mean_std(pick: dict[str, Any], props: list[str], std_row: np.ndarray) -> tuple[Any, Any, Any]:
    """The pick's recorded mean and the given std over its target's properties, and its windows."""
    windows = TARGETS[pick["target"]]
    cols = [props.index(p) for p in windows]
    mean = np.array([[pick[f"pred_{p}"] for p in windows]])
    return mean, std_row[cols][None, :], list(windows.values())


def score(picks: list[dict[str, Any]], props: list[str], std: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per std and strategy (and all): log loss, Brier, and the candidates with p >= 0.5 (how many,
    how many inside, confirmed motifs among them against all confirmed motifs)."""
    inside = np.array([bool(q["oracle_hit"]) for q in picks])
    out: dict[str, Any] = {}
    for v, s in std.items():
        p = np.array([hit_probability(*mean_std(q, props, s[i]))[0] for i, q in enumerate(picks)])
        p = np.clip(p, 1e-4, 1 - 1e-4)
        for group in ("all", *sorted({q["strategy"] for q in picks})):
            m = np.array([group in ("all", q["strategy"]) for q in picks])
            sent = m & (p >= 0.5)
            motifs_all = confirmed_motifs(picks, inside & m)
            motifs_sent = confirmed_motifs(picks, inside & sent)
            t = inside[m].astype(float)
            out.setdefault(v, {})[group] = {
                "n": int(m.sum()),
                "inside": int(t.sum()),
                "log_loss": float(-np.mean(t * np.log(p[m]) + (1 - t) * np.log(1 - p[m]))),
                "brier": float(np.mean((p[m] - t) ** 2)),
                "expected": float(p[m].sum()),
                "sent_p50": int(sent.sum()),
                "sent_inside": int(inside[sent].sum()),
                "confirmed_motifs_kept": f"{len(motifs_sent)} / {len(motifs_all)}",
            }
    return out


def confirmed_motifs(picks: list[dict[str, Any]], rows: np.ndarray) -> set[tuple[Any, ...]]:
    return {(q["target"], q["seed"], q["strategy"], q["motif"]) for q, r in zip(picks, rows, strict=True) if r}


def print_table(out: dict[str, Any]) -> None:
    print(
        f"{out['n_picks']} verified picks; novelty median labels {out['novelty']['labels_median']:.2f}, "
        f"picks {out['novelty']['picks_median']:.2f}"
    )
    print(
        f"{'std':<16}{'group':<14}{'n':>4}{'inside':>7}{'expected':>9}{'log loss':>9}{'Brier':>7}"
        f"{'p>=.5 in/sent':>15}{'motifs kept':>13}"
    )
    for v, by in out["scores"].items():
        for g, s in by.items():
            print(
                f"{v:<16}{g:<14}{s['n']:>4}{s['inside']:>7}{s['expected']:>9.1f}{s['log_loss']:>9.3f}{s['brier']:>7.3f}"
                f"{s['sent_inside']:>8} / {s['sent_p50']:<4}{s['confirmed_motifs_kept']:>13}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--picks", nargs="+", type=Path, required=True, help="bench_motifs.py --oracle result files")
    p.add_argument("--data", default="datasets/mos2_8x8_xtb")
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/picked_std.json")
    args = p.parse_args()
    out = run(args)
    write_result(out, args.out)
    print_table(out)


if __name__ == "__main__":
    main()
