"""``hts data``: generate, inspect and label datasets in the 2DMD layout."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Generate, inspect and label 2DMD-layout datasets.", no_args_is_help=True)


def _parse_supercell(text: str | None) -> tuple[int, int, int] | None:
    from hts.errors import ConfigError

    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        nums = [int(p) for p in parts if p.strip()]
    except ValueError:
        raise ConfigError(f"--supercell must look like 8x8 or 8x8x1, got {text!r}") from None
    if len(nums) == 2:
        nums.append(1)
    if len(nums) != 3:
        raise ConfigError(f"--supercell must look like 8x8 or 8x8x1, got {text!r}")
    return (nums[0], nums[1], nums[2])


@app.command()
def generate(
    host: str = typer.Option(..., help="Host material: MoS2, WSe2, BN (h-BN), GaSe, InSe, P (BP)."),
    out: Path = typer.Option(..., help="Output folder (2DMD layout)."),
    density: str = typer.Option("low", help="low, high, or both."),
    per_type: int | None = typer.Option(None, help="Low density: at most this many configurations per type."),
    per_concentration: int = typer.Option(100, help="High density: configurations per concentration."),
    supercell: str | None = typer.Option(None, help="Supercell such as 4x4 (default: the 2DMD one)."),
    seed: int = typer.Option(0, help="Random seed (the output is reproducible for a seed)."),
    shuffle: bool = typer.Option(False, help="Write rows in a seeded random order (for partial labelling)."),
    force: bool = typer.Option(False, help="Overwrite an existing dataset in OUT."),
) -> None:
    """Generate defect structures following the 2DMD rules and write them in the 2DMD layout."""
    import numpy as np
    from rich.console import Console

    from hts.errors import ConfigError
    from hts.generate import generate_high_density, generate_low_density
    from hts.hosts import get_host
    from hts.provenance import write_provenance
    from hts.twodmd import iter_counts, write_2dmd

    if density not in ("low", "high", "both"):
        raise ConfigError(f"--density must be low, high or both, got {density!r}")
    h = get_host(host, _parse_supercell(supercell))
    configs, labels = [], []
    if density in ("low", "both"):
        c, lab = generate_low_density(h, per_type=per_type, seed=seed)
        configs += c
        labels += lab
    if density in ("high", "both"):
        c, lab = generate_high_density(h, per_concentration, seed=seed)
        # The same configuration can come up in both parts: keep the first.
        seen = {x.canonical_hash() for x in configs}
        for x, lb in zip(c, lab, strict=True):
            if x.canonical_hash() not in seen:
                configs.append(x)
                labels.append(lb)
    if shuffle:
        order = np.random.default_rng(seed + 1).permutation(len(configs))
        configs = [configs[i] for i in order]
        labels = [labels[i] for i in order]
    write_2dmd(out, configs, labels, overwrite=force)
    write_provenance(
        out / "generation.json",
        {
            "command": "hts data generate",
            "host": h.key,
            "density": density,
            "per_type": per_type,
            "per_concentration": per_concentration,
            "seed": seed,
            "shuffle": shuffle,
            "n_structures": len(configs),
        },
    )
    console = Console()
    console.print(f"wrote {len(configs)} structures of {h.key} to {out}")
    _print_counts(console, iter_counts(labels))


def _print_counts(console, counts: dict[str, int], labelled: dict[str, int] | None = None) -> None:
    from rich.table import Table

    table = Table("type", "structures", *(["labelled"] if labelled is not None else []))
    for k, v in counts.items():
        table.add_row(k, str(v), *([str(labelled.get(k, 0))] if labelled is not None else []))
    table.add_row(
        "[bold]total",
        f"[bold]{sum(counts.values())}",
        *([f"[bold]{sum(labelled.values())}"] if labelled is not None else []),
    )
    console.print(table)


@app.command()
def info(
    path: Path = typer.Argument(..., help="A 2DMD-layout dataset folder."),
    host: str | None = typer.Option(None, help="Host to read when the folder holds several."),
) -> None:
    """Per-type counts, labelled counts, property ranges and skipped rows of a dataset."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from hts.twodmd import iter_counts, read_2dmd

    console = Console()
    ds = read_2dmd(path, host=host)
    console.print(f"[bold]{path}[/]: {len(ds)} structures of {ds.host.key}")
    gap = ds.table["homo_lumo_gap"].to_numpy(dtype=float) if "homo_lumo_gap" in ds.table else np.full(len(ds), np.nan)
    labelled: dict[str, int] = {}
    for d, g in zip(ds.descriptions, gap, strict=True):
        labelled[d] = labelled.get(d, 0) + int(np.isfinite(g))
    _print_counts(console, iter_counts(ds.descriptions), labelled)
    props = Table("property", "n", "min", "mean", "max")
    for col in ds.table.columns:
        vals = ds.table[col].to_numpy(dtype=float) if ds.table[col].dtype.kind in "fi" else None
        if vals is None:
            continue
        ok = vals[np.isfinite(vals)]
        if ok.size:
            props.add_row(col, str(ok.size), f"{ok.min():.4g}", f"{ok.mean():.4g}", f"{ok.max():.4g}")
    if props.row_count:
        console.print(props)
    if ds.skipped:
        console.print(f"[yellow]skipped {len(ds.skipped)} rows[/]")
        for sid, why in ds.skipped[:20]:
            console.print(f"  {sid}: {why}")


@app.command()
def label(
    path: Path = typer.Argument(..., help="A 2DMD-layout dataset folder to label in place."),
    oracle: str = typer.Option("xtb", help="Physics oracle (xtb: GFN-xTB through tblite)."),
    method: str | None = typer.Option(
        None, help="GFN1-xTB or GFN2-xTB [default: the host's: GFN2-xTB for InSe and GaSe, else GFN1-xTB]."
    ),
    electronic_temperature: float = typer.Option(300.0, help="Electronic temperature in K."),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address (default: a LocalCluster)."),
    workers: int = typer.Option(2, help="LocalCluster worker processes."),
    threads_per_worker: int = typer.Option(1, help="BLAS/OpenMP threads per worker."),
    limit: int | None = typer.Option(None, help="Label at most this many structures in this run."),
    order: str = typer.Option(
        "dataset", help="dataset (its own order) or fewest-defects (low-density structures first)."
    ),
) -> None:
    """Label a dataset with the oracle; resumable (finished results are never repeated or lost)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from hts.hosts import default_oracle_method
    from hts.labelling import OracleSettings, label_dataset
    from hts.twodmd import read_2dmd

    if method is None:
        method = default_oracle_method(read_2dmd(path).host.name)
    settings = OracleSettings(oracle=oracle, method=method, electronic_temperature_K=electronic_temperature)
    console = Console()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"labelling {path.name} ({method})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = label_dataset(
            path,
            settings,
            scheduler=scheduler,
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            limit=limit,
            progress=progress,
            order=order,
        )
    console.print(
        f"{report.computed} computed, {report.failed} failed, {report.already_done} already done, "
        f"{report.total} in the dataset; {report.wall_time_s:.0f} s"
    )
    for sid, why in report.failures[:10]:
        console.print(f"  [yellow]{sid}[/]: {why}")


@app.command()
def merge(path: Path = typer.Argument(..., help="A 2DMD-layout dataset folder with labels/ shards.")) -> None:
    """Fold the label shards (labels/part-*.jsonl, from any number of runs) into the CSV tables."""
    from rich.console import Console

    from hts.labelling import merge_labels

    n = merge_labels(path)
    Console().print(f"{path}: {n} labelled structures merged into defects.csv.gz and targets.csv.gz")
