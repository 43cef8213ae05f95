"""``hts report``: an HTML page with PNG plots of a campaign (and of baselines run beside it).

The page opens with the motif table (:mod:`hts.campaign.shortlist`) and a picture of each motif's
core. Plots: best distance and cumulative hits against evaluations (the campaign and any baseline
directories given), new hits per trial coloured by what the trial ran (``llm-bo``'s scout,
exploitation, local and Ax-suggested trials), predicted properties against the target windows, the
defect-type make-up of the hits, pictures of the top structures with their defects marked, and,
where the oracle verified candidates, its values against the predictions (which hits it confirms).
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from hts.campaign.config import oracle_method
from hts.campaign.results import TRIAL_KINDS, CampaignResults, rule_makeup
from hts.campaign.shortlist import motif_table
from hts.hosts import VAC


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def progress_curves(results: list[CampaignResults], path: Path) -> None:
    """Best distance so far and cumulative hits against the number of evaluations."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for res in results:
        trials = res.store.trials_frame()
        cands = res.store.candidates_frame()
        if trials.empty:
            continue
        label = f"{res.campaign.name} ({res.campaign.strategy})"
        evals = trials["n_valid"].cumsum().to_numpy()
        best = []
        for tid in trials["trial_id"]:
            d = cands.loc[cands["trial_id"] <= tid, "distance"]
            best.append(d.min() if len(d) else np.nan)
        ax1.step(evals, best, where="post", label=label)
        ax2.step(evals, trials["n_hits"].cumsum().to_numpy(), where="post", label=label)
    ax1.set(xlabel="evaluations (valid samples scored)", ylabel="best distance to targets (0 = a hit)")
    ax1.set_yscale("symlog", linthresh=0.1)
    ax1.set_ylim(bottom=0)
    ax2.set(xlabel="evaluations (valid samples scored)", ylabel="cumulative unique hits")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


KIND_COLOURS = {
    "scout": "tab:purple",
    "exploit": "tab:red",
    "local": "tab:orange",
    "probe": "tab:olive",
    "ax": "tab:blue",
    "fixed": "tab:gray",
    "random": "0.6",
    "screen": "0.3",
}
KIND_LABELS = {
    "scout": "scout (the model chooses the composition)",
    "exploit": "exploitation (re-runs the best setting)",
    "local": "local (a composition next to the leading setting)",
    "probe": "probe (several compositions next to the leading setting)",
    "ax": "Ax suggestion (Sobol, then BoTorch)",
    "fixed": "llm-fixed setting",
    "random": "random draws",
    "screen": "screening chunks (random, surrogate only)",
}


def trial_hits(res: CampaignResults, path: Path) -> None:
    """New hits of each trial, coloured by the trial's kind (:class:`hts.campaign.plan.TrialKind`)."""
    plt = _plt()
    from matplotlib.patches import Patch

    trials = res.store.trials_frame()
    fig, ax = plt.subplots(figsize=(11, 3.8))
    kinds = list(trials["kind"])
    handles = []
    for kind in TRIAL_KINDS:
        sel = np.array([k == kind for k in kinds], dtype=bool)
        if sel.any():
            ids = trials["trial_id"].to_numpy()[sel]
            ax.bar(ids, trials["n_hits"].to_numpy()[sel], color=KIND_COLOURS[kind])
            # a tick under every trial, so that trials without a hit show their kind too
            ax.scatter(ids, np.zeros(len(ids)), marker="s", s=14, color=KIND_COLOURS[kind], clip_on=False, zorder=3)
            handles.append(Patch(color=KIND_COLOURS[kind], label=f"{KIND_LABELS[kind]} ({int(sel.sum())})"))
    ax.set(xlabel="trial", ylabel="new hits in the trial")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def target_windows(res: CampaignResults, ranked: Any, path: Path) -> None:
    """Histogram of each target's predicted values, the window shaded, hits in colour."""
    plt = _plt()
    names = list(res.campaign.targets)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        col = f"pred_{name}"
        if col not in ranked:
            continue
        lo, hi = res.campaign.targets[name].window
        vals = ranked[col].to_numpy()
        ax.hist(vals, bins=60, color="0.6", label="all candidates")
        ax.hist(
            vals[ranked["hit"].to_numpy(dtype=bool)],
            bins=60,
            range=(vals.min(), vals.max()),
            color="tab:red",
            label="hits",
        )
        ax.axvspan(lo, hi, color="tab:green", alpha=0.2, label="target window")
        ax.set(xlabel=f"predicted {name} (eV)", ylabel="candidates")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def oracle_check(res: CampaignResults, ranked: Any, path: Path) -> None:
    """Per target: the surrogate's prediction (with its 1-sigma uncertainty) against the oracle's value
    for every verified candidate, the target window shaded on both axes; confirmed hits in colour."""
    plt = _plt()
    names = list(res.campaign.targets)
    done = ranked[ranked["oracle_hit"].notna()] if "oracle_hit" in ranked else ranked.iloc[:0]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        lo, hi = res.campaign.targets[name].window
        pred = done[f"pred_{name}"].to_numpy(dtype=float)
        std = done[f"std_{name}"].to_numpy(dtype=float)
        true = done[f"oracle_{name}"].to_numpy(dtype=float)
        hit = done["oracle_hit"].to_numpy(dtype=bool)
        ax.axvspan(lo, hi, color="tab:green", alpha=0.12)
        ax.axhspan(lo, hi, color="tab:green", alpha=0.12, label="target window")
        for mask, colour, label in ((hit, "tab:red", "confirmed hit"), (~hit, "0.4", "outside a window")):
            if mask.any():
                ax.errorbar(pred[mask], true[mask], xerr=std[mask], fmt="o", color=colour, ms=5, label=label)
        both = np.concatenate([pred, true, [lo, hi]])
        a, b = float(np.nanmin(both)), float(np.nanmax(both))
        pad = 0.1 * (b - a or 1.0)
        ax.plot([a - pad, b + pad], [a - pad, b + pad], color="0.7", lw=1, zorder=0)
        ax.set(xlim=(a - pad, b + pad), ylim=(a - pad, b + pad), xlabel=f"predicted {name} (eV)")
        ax.set_ylabel(f"{oracle_method(res.campaign)} {name} (eV)")
        ax.legend(fontsize=8)
    fig.suptitle(f"oracle check: {int(done['oracle_hit'].eq(True).sum())} of {len(done)} verified candidates confirmed")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def makeup(res: CampaignResults, ranked: Any, path: Path) -> None:
    """Mean number of each defect type per candidate: hits against all candidates."""
    plt = _plt()
    rules = [r.name for r in res.host.rules]
    groups = {"all candidates": ranked, "hits": ranked[ranked["hit"].astype(bool)]}
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(groups)
    for g, (label, df) in enumerate(groups.items()):
        counts: Counter[str] = Counter()
        for text in df["defects"]:
            counts.update(res.config_of(text).rule_counts())
        means = [counts[r] / max(1, len(df)) for r in rules]
        ax.bar(np.arange(len(rules)) + g * width, means, width, label=f"{label} ({len(df)})")
    ax.set_xticks(np.arange(len(rules)) + width / 2, rules)
    ax.set(ylabel="defects of this type per candidate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def top_structures(res: CampaignResults, ranked: Any, path: Path, n: int = 6) -> None:
    """Top-down pictures of the best candidates: host sites in grey, defects marked and labelled."""
    items = [
        (
            rec["defects"],
            f"#{rec['rank']} {rec['hash'][:8]}  d={rec['distance']:.2f}\n{rule_makeup(res.config_of(rec['defects']))}",
        )
        for rec in ranked.head(n).to_dict("records")
    ]
    draw_configurations(res, items, path)


def motif_cores(res: CampaignResults, motifs: Any, path: Path, n: int = 9) -> None:
    """Top-down pictures of the cores of the first ``n`` motifs of the motif table."""
    items = [
        (rec["core_defects"], f"{rec['core']}\n{rec['hits']} hit{'s' if rec['hits'] != 1 else ''}, {rec['verdict']}")
        for rec in motifs.head(n).to_dict("records")
    ]
    draw_configurations(res, items, path)


def draw_configurations(res: CampaignResults, items: list[tuple[str, str]], path: Path) -> None:
    """One top-down panel per ``(defects text, title)``: host sites in grey, defects marked."""
    plt = _plt()
    host = res.host
    xy = host.cart_coords[:, :2]
    elements = host.elements
    n = max(1, len(items))
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    colours = {VAC: "black"}
    palette = iter(["tab:red", "tab:blue", "tab:orange", "tab:purple", "tab:green", "tab:brown"])
    for ax, (defects, title) in zip(axes.ravel(), items, strict=False):
        config = res.config_of(defects)
        for el in elements:
            idx = host.sites_of(el)
            ax.scatter(xy[idx, 0], xy[idx, 1], s=8 if el != elements[0] else 14, color="0.75", lw=0)
        for site, sp in config.defects:
            c = colours.setdefault(sp, next(palette, "tab:gray"))
            marker = "x" if sp == VAC else "o"
            ax.scatter(
                xy[site, 0], xy[site, 1], s=70, color=c, marker=marker, lw=2, edgecolors="k" if marker == "o" else None
            )
        ax.set_title(title, fontsize=8)
        ax.set_aspect("equal")
        ax.axis("off")
    for ax in axes.ravel()[len(items) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker="x" if k == VAC else "o", ls="", color=v, label=k) for k, v in colours.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out_dir: str | Path, baselines: list[str | Path] | None = None, top: int = 20) -> Path:
    """Write ``report/index.html`` and its PNGs into the campaign directory; returns the HTML path."""
    main = CampaignResults.open(out_dir)
    others = [CampaignResults.open(b) for b in baselines or []]
    try:
        dest = main.out_dir / "report"
        dest.mkdir(exist_ok=True)
        ranked = main.ranked()
        progress_curves([main, *others], dest / "progress.png")
        figs = ["progress.png"]
        if not main.store.trials_frame().empty:
            trial_hits(main, dest / "trial_hits.png")
            figs.append("trial_hits.png")
        motifs = motif_table(ranked, main.host)
        if not motifs.empty:
            motif_cores(main, motifs, dest / "motif_cores.png")
        if not ranked.empty:
            target_windows(main, ranked, dest / "targets.png")
            makeup(main, ranked, dest / "makeup.png")
            top_structures(main, ranked, dest / "top_structures.png")
            figs += ["targets.png", "makeup.png", "top_structures.png"]
            if "oracle_hit" in ranked and ranked["oracle_hit"].notna().any():
                oracle_check(main, ranked, dest / "oracle_check.png")
                figs.insert(figs.index("targets.png") + 1, "oracle_check.png")
        summary = main.summary()
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items()
        )
        cols = ["rank", "hash", "defects", "distance", "hit", "uncertainty"]
        cols += [c for c in ranked.columns if c.startswith(("pred_", "oracle_"))] if not ranked.empty else []
        table = (
            ranked.head(top)[cols].to_html(index=False, float_format=lambda x: f"{x:.3f}") if not ranked.empty else ""
        )
        motif_cols = ["motif", "core", "hits", "best_distance", "verified", "confirmed", "verdict", "representative"]
        motif_html = (
            motifs[motif_cols].to_html(index=False, float_format=lambda x: f"{x:.3f}")
            + '<p><img src="motif_cores.png"></p>'
            if not motifs.empty
            else "<p>No hits yet.</p>"
        )
        targets = "".join(
            f"<li>{html.escape(n)}: [{t.window[0]:.3f}, {t.window[1]:.3f}] eV, weight {t.weight}</li>"
            for n, t in main.campaign.targets.items()
        )
        body = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(main.campaign.name)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}} img{{max-width:100%}}</style></head><body>
<h1>Campaign {html.escape(main.campaign.name)}</h1>
<h2>Motifs among the hits ({len(motifs)})</h2>{motif_html}
<h2>Summary</h2><table>{rows}</table>
<h2>Targets</h2><ul>{targets}</ul>
{"".join(f'<h2>{f.removesuffix(".png").replace("_", " ")}</h2><img src="{f}">' for f in figs)}
<h2>Top {top} candidates</h2>{table}</body></html>"""
        (dest / "index.html").write_text(body)
        return dest / "index.html"
    finally:
        main.close()
        for o in others:
            o.close()
