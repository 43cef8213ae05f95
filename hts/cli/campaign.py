"""``hts run``, ``hts status``, ``hts export``, ``hts report``: campaigns from YAML to ranked CIFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def run(
    campaign: Path = typer.Argument(..., help="Campaign YAML file."),
    resume: bool = typer.Option(False, "--resume", help="Continue a stopped campaign in its output directory."),
    out: Path | None = typer.Option(None, help="Output directory (default: the campaign's `output`)."),
) -> None:
    """Run a campaign (its strategy's proposals scored by the surrogate on Dask, the oracle verifying
    beside them); resumable."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hts.campaign.config import load_campaign
    from hts.campaign.runner import run_campaign

    name = load_campaign(campaign).name  # a file that does not load is named here, before anything starts
    console = Console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
    ) as bar:
        task = bar.add_task(name, total=None, info="starting")

        def progress(ev: dict[str, Any]) -> None:
            bar.update(
                task,
                completed=ev["trials"],
                total=ev["max_trials"],
                info=f"evals {ev['evaluations']}  new {ev['new']}  hits {ev['hits']}  score {ev['score']:.3f}",
            )

        summary, out_dir = run_campaign(campaign, resume=resume, out=out, progress=progress)
    console.print(
        f"[bold]{summary.stopped}[/]: {summary.trials} trials, {summary.evaluations} evaluations, "
        f"{summary.candidates} unique candidates, {summary.hits} hits in {summary.wall_time_s:.0f} s -> {out_dir}"
    )


SHORT_NAMES = {
    "homo": "HOMO",
    "lumo": "LUMO",
    "homo_lumo_gap": "gap",
    "formation_energy": "E_form",
    "formation_energy_per_site": "E_form/def",
    "energy_per_atom": "E/atom",
    "fermi_level": "E_F",
    "normalized_homo": "HOMO-VBM",
    "normalized_lumo": "LUMO-VBM",
}
"""Column headings of target properties in ``hts status`` (legible at 80 columns)."""


def status(
    out_dir: Path = typer.Argument(..., help="Campaign output directory."),
    top: int = typer.Option(5, help="Show this many best candidates (one line each)."),
    motifs: int = typer.Option(10, help="Show this many motifs (the shortlist's order)."),
) -> None:
    """Progress, the motifs among the hits with the oracle's verdict, and the best candidates."""
    from rich.console import Console

    from hts.campaign.results import CampaignResults
    from hts.campaign.shortlist import motif_table

    console = Console()
    res = CampaignResults.open(out_dir)
    try:
        s = res.summary()
        console.print(  # what ran, then what it found: two statements, each a line at 120 columns
            f"[bold]{s['name']}[/] ({s['strategy']}, {s['host']}): "
            + (f"trials {s['trials']}/{s['max_trials']}, " if s["strategy"] != "screen" else "")
            + f"evaluations {s['evaluations']:,}, unique candidates {s['candidates']:,}, hits {s['hits']:,}"
            + (f" (+{n:,} more of these motifs screened, not stored)" if (n := s["hits_not_stored"]) else "")
        )
        console.print(
            f"hits in [bold]{s['hit_motifs']} motifs[/] ({s['hit_compositions']} defect make-ups), "
            f"best distance {s['best_distance']:.3f}, oracle-verified {s['verified']}"
            + (f" ({s['confirmed']} inside every target window by the oracle)" if s["verified"] else "")
        )
        if s["verified"]:
            precision = s["shortlist_precision"]
            console.print(
                f"oracle: {s['confirmed_motifs']} of {s['verified_motifs']} verified motifs confirmed; "
                f"shortlist precision {'-' if precision != precision else f'{precision:.0%}'} "
                f"(verified hits inside every window by the oracle)"
                + (f"; {s['oracle_failed']} oracle failures recorded" if s["oracle_failed"] else "")
            )
        kinds = {k: v for k, v in s.items() if k.endswith(" trials") and k != "max_trials"}
        if kinds:
            console.print("trials by kind: " + ", ".join(f"{k.removesuffix(' trials')} {v}" for k, v in kinds.items()))
        ranked = res.ranked()
        if ranked.empty:
            return
        table = motif_table(ranked, res.host)
        if not table.empty:
            console.print(_motif_rich_table(table.head(motifs), len(table), console.width))
        console.print(_candidate_rich_table(ranked.head(top), list(res.campaign.targets)))
    finally:
        res.close()


def compact_core(core: str) -> str:
    """A core in words without its spaces (``V_S+[2V_S+Se_S]`` for ``V_S + [2 V_S + Se_S]``): the same
    text, shorter."""
    return core.replace(" + ", "+").replace(" ", "")


def _motif_rich_table(table: Any, total: int, width: int = 200) -> Any:
    """The motif table, one line a motif at any ``width``: the core last, written compactly when the
    full text would not fit, cut with an ellipsis only when even that does not (motifs.csv of ``hts
    export`` holds it whole); the motif hash is never cut."""
    from rich import box
    from rich.table import Table

    out = Table(
        "motif",
        "hits",
        "best d",
        "oracle",
        "core",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title=f"motifs among the hits ({len(table)} of {total})",
        title_justify="left",
    )
    rows = []
    for rec in table.to_dict("records"):
        oracle = "-" if rec["verdict"] == "unverified" else f"{rec['verdict']} {rec['confirmed']}/{rec['verified']}"
        rows.append([rec["motif"], str(rec["hits"]), f"{rec['best_distance']:.3f}", oracle, rec["core"]])
    for i, col in enumerate(out.columns):
        col.no_wrap = True
        col.overflow = "ellipsis"
        if i < len(out.columns) - 1:  # never shrunk: only the core gives way
            col.min_width = max(len(str(col.header)), *(len(r[i]) for r in rows))
    fixed = sum(c.min_width or 0 for c in out.columns[:-1])
    room = max(8, width - fixed - 2 * (len(out.columns) - 1))  # 2 between columns, none at the edges
    out.columns[-1].max_width = room
    for row in rows:
        if len(row[-1]) > room:
            row[-1] = compact_core(row[-1])
        out.add_row(*row)
    return out


def _candidate_rich_table(ranked: Any, targets: list[str]) -> Any:
    from rich import box
    from rich.table import Table

    verified = "oracle_hit" in ranked  # a column saying what the oracle made of the verified ones
    heads = ["rank", "hash", "n", "distance", *[SHORT_NAMES.get(n, n) for n in targets]]
    out = Table(
        *heads,
        *(["oracle"] if verified else []),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title="best candidates",
        title_justify="left",
    )
    for rec in ranked.to_dict("records"):
        preds = [f"{rec[f'pred_{n}']:.3f}±{rec[f'std_{n}']:.3f}" for n in targets]
        row = [str(rec["rank"]), rec["hash"], str(rec["n_defects"]), f"{rec['distance']:.3f}", *preds]
        if verified:
            hit = rec["oracle_hit"]
            row.append("" if hit is None or hit != hit else "hit" if hit else "miss")  # None/NaN: not verified
        out.add_row(*row)
    for col in out.columns:
        col.no_wrap = True
    return out


def export(
    out_dir: Path = typer.Argument(..., help="Campaign output directory."),
    out: Path = typer.Option(..., help="Destination folder for the CIFs, candidates.csv and motifs.csv."),
    top: int = typer.Option(20, help="At most this many motifs (with --all: this many candidates)."),
    per_motif: int = typer.Option(
        1,
        help="Hits per motif: the representative first (fewest defects, then the lowest predicted "
        "formation energy per defect, then the smallest uncertainty; oracle-confirmed hits first).",
    ),
    all_placements: bool = typer.Option(
        False, "--all", help="Every candidate in rank order instead of one per motif (hits or not)."
    ),
    verified_only: bool = typer.Option(False, "--verified-only", help="Only hits the oracle confirmed."),
    force: bool = typer.Option(
        False, "--force", help="OUT holds an earlier export of hts: replace its files (only those)."
    ),
    salvage: bool = typer.Option(
        False, "--salvage", help="Read a store that failed its integrity check (export what is still readable)."
    ),
) -> None:
    """Export the shortlist: one CIF per motif (confirmed by the oracle first), candidates.csv with
    predictions, uncertainty, motif, core and spectators, motifs.csv and the campaign file."""
    import pandas as pd
    from rich.console import Console

    from hts.campaign.results import export_shortlist

    dest = export_shortlist(out_dir, out, top, per_motif, all_placements, verified_only, force, salvage)
    frame = pd.read_csv(dest / "candidates.csv")
    n_motifs = frame["motif"].nunique() if "motif" in frame else 0
    Console().print(f"exported {len(frame)} candidates ({n_motifs} motifs) to {dest}")


def report(
    out_dir: Path = typer.Argument(..., help="Campaign output directory."),
    baseline: list[Path] = typer.Option([], help="Baseline campaign directories to plot beside it."),
) -> None:
    """Write an HTML report with PNG plots into OUT_DIR/report."""
    from rich.console import Console

    from hts.campaign.report import write_report

    path = write_report(out_dir, [str(b) for b in baseline])
    Console().print(f"report: {path}")


def register(app: typer.Typer) -> None:
    """Add the campaign commands to the top-level app."""
    for fn in (run, status, export, report):
        app.command()(fn)
