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
    """Run a campaign (Ax over the generator's knobs, surrogate scoring on Dask); resumable."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hts.campaign.runner import run_campaign

    console = Console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
    ) as bar:
        task = bar.add_task(f"campaign {campaign.stem}", total=None, info="starting")

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


def status(
    out_dir: Path = typer.Argument(..., help="Campaign output directory."),
    top: int = typer.Option(10, help="Show this many best candidates."),
) -> None:
    """Progress, hit counts and the best candidates of a campaign."""
    from rich.console import Console
    from rich.table import Table

    from hts.campaign.results import CampaignResults

    console = Console()
    res = CampaignResults.open(out_dir)
    try:
        s = res.summary()
        console.print(
            f"[bold]{s['name']}[/] ({s['strategy']}, {s['host']}): trials {s['trials']}/{s['max_trials']}, "
            f"evaluations {s['evaluations']}, unique candidates {s['candidates']}, hits {s['hits']} "
            f"({s['hit_compositions']} defect make-ups), "
            f"best distance {s['best_distance']:.3f}, oracle-verified {s['verified']}"
            + (f" ({s['confirmed']} inside every target window by the oracle)" if s["verified"] else "")
        )
        kinds = {k: v for k, v in s.items() if k.endswith(" trials") and k != "max_trials"}
        if kinds:
            console.print("trials by kind: " + ", ".join(f"{k.removesuffix(' trials')} {v}" for k, v in kinds.items()))
        ranked = res.ranked()
        if ranked.empty:
            return
        verified = "oracle_hit" in ranked  # a column saying what the oracle made of the verified ones
        heads = ["rank", "hash", "defects", "distance", *[f"pred {n}" for n in res.campaign.targets]]
        table = Table(*heads, *(["oracle"] if verified else []))
        for rec in ranked.head(top).to_dict("records"):
            preds = [f"{rec[f'pred_{n}']:.3f} ± {rec[f'std_{n}']:.3f}" for n in res.campaign.targets]
            row = [str(rec["rank"]), rec["hash"], rec["defects"][:40], f"{rec['distance']:.3f}", *preds]
            if verified:
                hit = rec["oracle_hit"]
                row.append("" if hit is None or hit != hit else "hit" if hit else "miss")  # None/NaN: not verified
            table.add_row(*row)
        console.print(table)
    finally:
        res.close()


def export(
    out_dir: Path = typer.Argument(..., help="Campaign output directory."),
    top: int = typer.Option(20, help="Number of ranked candidates to export."),
    out: Path = typer.Option(..., help="Destination folder for the CIFs and candidates.csv."),
    per_composition: int | None = typer.Option(
        None, help="At most this many candidates of any one defect make-up (the best ranked of each)."
    ),
) -> None:
    """Export ranked candidate CIFs, a CSV of predictions/uncertainty/oracle results and the campaign."""
    import pandas as pd
    from rich.console import Console

    from hts.campaign.results import export_top

    dest = export_top(out_dir, top, out, per_composition)
    n = len(pd.read_csv(dest / "candidates.csv"))
    Console().print(f"exported {n} candidates to {dest}")


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
