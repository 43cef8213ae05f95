"""Can the oracle's own verifications correct the surrogate for the candidates it has not verified yet?

On the oracle benchmark's picks the surrogate's errors come in families: on the mid-gap target the
S vacancy with one W and two Se was predicted at a gap of 0.975-0.985 eV in every placement the screen
found, and xTB put every one at 0.94 eV (the window starts at 0.95). After two such verifications the
third is no surprise to anyone but the surrogate. This scores a Gaussian-process view of the
surrogate's error on the verified candidates (``bench_motifs.py --oracle`` records their defects, the
surrogate's mean and std, xTB's values and when each was verified):

    e(x) ~ GP(0, s(x) s(x') rho(x, x')),  rho = r0 exp(-|D(x) - D(x')|_1 / ell) + (1 - r0) [x = x']

``s`` is the surrogate's std, ``D`` the error model's descriptors (defects per type, defect count,
adjacent vacancy pairs, largest vacancy cluster: ``surrogate.error_model.descriptors``). Conditioning
on the residuals (xTB - mean) of earlier verifications of the same run shifts a candidate's mean and
shrinks its std; ``r0 = 0`` is the surrogate as it is. Per variant: log loss and Brier score of the hit
probability against xTB's verdict, predicted **sequentially** (each candidate given those verified
before it in its run) and **leave-one-out** (given all others of its run: optimistic), and what sending
only candidates with probability >= 0.5 would have kept. The picks were chosen without the correction,
so this measures the probabilities of what was sent, not what a corrected oracle would send.

    .venv/bin/python benchmarks/research/bench_verified_learning.py benchmarks/results/motifs_oracle.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.research.bench_pick_precision import TARGETS, hit_probability
from hts.campaign.results import GOOD_ORACLE_STATUS

VARIANTS = {"none": (0.0, 1.0), "r0 0.5, ell 1": (0.5, 1.0), "r0 0.5, ell 2": (0.5, 2.0), "r0 0.8, ell 1": (0.8, 1.0)}
VARIANTS |= {"r0 0.8, ell 2": (0.8, 2.0), "r0 0.9, ell 0.5": (0.9, 0.5)}
VARIANTS |= {"r0 0.8, ell 4": (0.8, 4.0), "r0 0.8, ell 8": (0.8, 8.0)}


def load_runs(files: list[Path]) -> list[dict[str, Any]]:
    """Runs with verified picks that record their defects (JSON result files or JSON-lines logs)."""
    runs = []
    for f in files:
        text = f.read_text()
        try:
            found = json.loads(text)["runs"]
        except (json.JSONDecodeError, KeyError):
            found = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        for r in found:
            picks = [
                p
                for p in r.get("oracle_picks", [])
                if p.get("defects") and p.get("oracle_status") in GOOD_ORACLE_STATUS
            ]
            target = r["campaign"].removeprefix("mos2_")
            if picks and target in TARGETS:
                timed = all(p.get("oracle_created") for p in picks)
                if timed:
                    picks.sort(key=lambda p: p["oracle_created"])
                runs.append({**r, "target": target, "picks": picks, "timed": timed})
    return runs


def run_probabilities(run: dict[str, Any], r0: float, ell: float, mode: str) -> np.ndarray:
    """Each pick's hit probability given the others of its run (``mode``), by the product's posterior
    (:class:`hts.campaign.learning.VerifiedResiduals` with correlation ``r0`` and length ``ell``)."""
    from hts.campaign.learning import VerifiedResiduals
    from hts.hosts import get_host

    windows = TARGETS[run["target"]]
    picks = run["picks"]
    host = get_host("MoS2", (8, 8, 1))
    mean = np.array([[p[f"pred_{t}"] for t in windows] for p in picks])
    std = np.array([[p[f"std_{t}"] for t in windows] for p in picks])
    measured = np.array([[p[f"oracle_{t}"] for t in windows] for p in picks])
    out = np.empty(len(picks))
    for i in range(len(picks)):
        learn = VerifiedResiduals(host, r0, ell)
        for j in range(i) if mode == "sequential" else (j for j in range(len(picks)) if j != i):
            learn.add(picks[j]["defects"], mean[j], std[j], measured[j])
        m, s = learn.posterior([picks[i]["defects"]], mean[i : i + 1], std[i : i + 1])
        out[i] = hit_probability(m, s, list(windows.values()))[0]
    return np.clip(out, 1e-4, 1 - 1e-4)


def scores(runs: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    use = [r for r in runs if mode == "leave-one-out" or r["timed"]]
    out: dict[str, Any] = {"runs": len(use), "picks": sum(len(r["picks"]) for r in use)}
    for name, (r0, ell) in VARIANTS.items():
        p = np.concatenate([run_probabilities(r, r0, ell, mode) for r in use]) if use else np.zeros(0)
        hit = np.concatenate([[bool(q["oracle_hit"]) for q in r["picks"]] for r in use]) if use else np.zeros(0, bool)
        motif = [(r["campaign"], r["strategy"], r["seed"], q["motif"]) for r in use for q in r["picks"]]
        sent = p >= 0.5
        out[name] = {
            "log_loss": float(-np.mean(hit * np.log(p) + (~hit) * np.log(1 - p))) if p.size else float("nan"),
            "brier": float(np.mean((p - hit) ** 2)) if p.size else float("nan"),
            "expected": float(p.sum()),
            "inside": int(hit.sum()),
            "sent_p50": int(sent.sum()),
            "sent_inside": int((sent & hit).sum()),
            "motifs_kept": len({m for m, s, h in zip(motif, sent, hit, strict=True) if s and h}),
            "motifs_confirmed": len({m for m, h in zip(motif, hit, strict=True) if h}),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path, help="bench_motifs.py --oracle result files (or their logs)")
    p.add_argument("--out", default="benchmarks/results/verified_learning.json")
    args = p.parse_args()
    runs = load_runs(args.results)
    out = {"from": [str(f) for f in args.results], **{m: scores(runs, m) for m in ("sequential", "leave-one-out")}}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for mode in ("sequential", "leave-one-out"):
        r = out[mode]
        print(f"{mode}: {r['runs']} runs, {r['picks']} verified picks")
        print(
            f"  {'variant':<18}{'log loss':>9}{'Brier':>7}{'inside':>7}{'expected':>9}"
            f"{'p>=.5 in/sent':>15}{'motifs':>9}"
        )
        for name in VARIANTS:
            s = r[name]
            print(
                f"  {name:<18}{s['log_loss']:>9.3f}{s['brier']:>7.3f}{s['inside']:>7}{s['expected']:>9.1f}"
                f"{s['sent_inside']:>8} / {s['sent_p50']:<4}{s['motifs_kept']:>4} / {s['motifs_confirmed']}"
            )


if __name__ == "__main__":
    main()
