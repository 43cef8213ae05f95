"""``hts surrogate``: train, evaluate and compare the CatBoost surrogate models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

app = typer.Typer(help="Train, evaluate and compare CatBoost surrogate models.", no_args_is_help=True)

_METRIC_COLS = ["n", "mae", "rmse", "r2", "r2_25th", "rmse_25th", "coverage_90", "mean_std"]


def _targets(values: list[str] | None) -> list[str] | None:
    """``--targets a --targets b`` or ``--targets a,b``."""
    if not values:
        return None
    out = [t.strip() for v in values for t in v.split(",") if t.strip()]
    return out or None


def _params(iterations: int | None, depth: int | None, learning_rate: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if iterations is not None:
        out["iterations"] = iterations
    if depth is not None:
        out["depth"] = depth
    if learning_rate is not None:
        out["learning_rate"] = learning_rate
    return out


def _print_table(frame: pd.DataFrame, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), justify="left" if frame[col].dtype == object else "right")
    for rec in frame.itertuples(index=False):
        cells = []
        for v in rec:
            if isinstance(v, float):
                cells.append("nan" if v != v else f"{v:.4g}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    Console().print(table)


def _provenance(settings: dict[str, Any]) -> dict[str, Any]:
    from hts.provenance import provenance

    return provenance(settings)


@app.command()
def train(
    data: Path = typer.Option(..., help="Dataset folder in the 2DMD layout (real 2DMD or the bundled xTB data)."),
    out: Path = typer.Option(..., help="Model directory to write."),
    features: str = typer.Option("sparse", help="Featuriser: sparse or slices."),
    split: str = typer.Option(
        "random",
        help="Held-out split: random, defect-type (by description), or none (train on every row; only "
        "in-sample figures are printed: measure with a split first).",
    ),
    targets: list[str] | None = typer.Option(None, help="Targets (repeat or comma-separate); default: all labelled."),
    test_fraction: float = typer.Option(0.2, help="Fraction of structures held out."),
    seed: int = typer.Option(0, help="Seed of the split and of CatBoost."),
    iterations: int | None = typer.Option(None, help="CatBoost iterations (default 1000)."),
    depth: int | None = typer.Option(None, help="CatBoost tree depth (default 6)."),
    learning_rate: float | None = typer.Option(None, help="CatBoost learning rate (default 0.05)."),
    threads: int = typer.Option(2, help="CatBoost threads."),
    calibrate: bool = typer.Option(
        True, help="Learn a per-configuration uncertainty from out-of-fold residuals (4 more fits: ~5x fit time)."
    ),
    host: str | None = typer.Option(None, help="Host material, when the dataset holds several."),
    force: bool = typer.Option(False, help="Overwrite an existing model directory."),
) -> None:
    """Train a surrogate on a dataset, hold out a split, and save the model with its test metrics."""
    from hts.errors import ModelError
    from surrogate.training import load_dataset
    from surrogate.training import train as do_train

    if out.exists() and not force:
        raise ModelError(f"{out} already exists; choose another --out or pass --force")
    ds = load_dataset(data, host=host)
    res = do_train(
        ds,
        features,
        _targets(targets),
        split=split,
        test_fraction=test_fraction,
        seed=seed,
        params=_params(iterations, depth, learning_rate),
        thread_count=threads,
        calibrate=calibrate,
    )
    res.model.meta["provenance"] = _provenance(
        {"command": "hts surrogate train", "data": str(data), "features": features, "split": split, "seed": seed}
    )
    res.model.save(out, overwrite=force)
    tab = res.evaluation.table().reset_index()[["target", *_METRIC_COLS]]
    _print_table(tab, f"{features} surrogate, {res.evaluation.scope}; fit {res.fit_seconds:.1f} s -> {out}")


@app.command("eval")
def evaluate(
    model: str = typer.Argument(
        ...,
        help="Model directory (from hts surrogate train); `default`: the embedded default (HTS_MODELS_DIR, "
        "else the checkout's models/).",
    ),
    data: Path = typer.Option(..., help="Dataset folder in the 2DMD layout."),
    all_rows: bool = typer.Option(False, "--all", help="Evaluate every row, not only the model's held-out rows."),
    low_density: bool = typer.Option(
        False, "--low-density", help="Only structures with at most 3 defects (2DMD's low-density part)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    plots: Path | None = typer.Option(None, help="Write parity and calibration plots (PNG) into this folder."),
    threads: int = typer.Option(1, help="Prediction threads."),
) -> None:
    """Evaluate a model on a dataset: MAE, RMSE, R2, R2/RMSE of the best 25 %, interval coverage."""
    from hts.cli.llm import model_folder
    from surrogate.model import SurrogateModel
    from surrogate.training import evaluate as do_eval
    from surrogate.training import held_out_rows, load_dataset

    model = model_folder(model, "surrogate") or model
    m = SurrogateModel.load(model)
    ds = load_dataset(data, host=m.host.name)
    m.check_host(ds.host)
    rows = None if all_rows else held_out_rows(m, ds)
    scope = "all rows" if rows is None else f"the model's held-out rows ({len(rows)})"
    if low_density:
        import numpy as np

        from surrogate.training import LOW_DENSITY_MAX_DEFECTS, low_density_rows

        rows = low_density_rows(ds, np.arange(len(ds)) if rows is None else rows)
        scope += f", low-density (<= {LOW_DENSITY_MAX_DEFECTS} defects: {len(rows)})"
    ev = do_eval(m, ds, rows, thread_count=threads, scope=scope)
    if plots is not None:
        from surrogate.plots import calibration_plot, parity_plots

        parity_plots(ev, plots / "parity.png", title=f"{m.featuriser.name} surrogate, {scope}")
        calibration_plot(ev, plots / "calibration.png")
    if as_json:
        from surrogate.model import jsonable

        record = {"model": str(model), "data": str(data), "scope": scope, "metrics": ev.metrics}
        typer.echo(json.dumps(jsonable(record)))
        return
    tab = ev.table().reset_index()[["target", *_METRIC_COLS]]
    _print_table(tab, f"{model} on {data}: {scope}")


@app.command()
def compare(
    data: Path = typer.Option(..., help="Dataset folder in the 2DMD layout."),
    features: str = typer.Option("sparse,slices", help="Featurisers to compare, comma-separated."),
    split: str = typer.Option("random", help="random or defect-type."),
    targets: list[str] | None = typer.Option(None, help="Targets (repeat or comma-separate); default: all labelled."),
    test_fraction: float = typer.Option(0.2, help="Fraction held out."),
    seed: int = typer.Option(0, help="Seed of the split and of CatBoost."),
    iterations: int | None = typer.Option(None, help="CatBoost iterations (default 1000)."),
    threads: int = typer.Option(2, help="CatBoost threads."),
    calibrate: bool = typer.Option(True, help="Calibrate the uncertainty per configuration (~5x fit time)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    out: Path | None = typer.Option(None, help="Also write the comparison as JSON to this file."),
    host: str | None = typer.Option(None, help="Host material, when the dataset holds several."),
) -> None:
    """Train each featuriser on the same split and print their held-out metrics side by side."""
    from surrogate.model import jsonable
    from surrogate.training import compare as do_compare
    from surrogate.training import load_dataset

    ds = load_dataset(data, host=host)
    names = [f.strip() for f in features.split(",") if f.strip()]
    table, _ = do_compare(
        ds,
        names,
        _targets(targets),
        split=split,
        test_fraction=test_fraction,
        seed=seed,
        params=_params(iterations, None, None),
        thread_count=threads,
        calibrate=calibrate,
    )
    record = {
        "data": str(data),
        "split": split,
        "seed": seed,
        "test_fraction": test_fraction,
        "rows": table.to_dict("records"),
        "provenance": _provenance({"command": "hts surrogate compare", "features": names}),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(jsonable(record), indent=2, allow_nan=False) + "\n")
    if as_json:
        typer.echo(json.dumps(jsonable(record)))
        return
    for part in table["part"].unique():
        wide = table[table["part"] == part].pivot(
            index="target", columns="features", values=["n", "mae", "rmse", "r2", "r2_25th", "coverage_90"]
        )
        wide.columns = [f"{col[0]}:{col[1]}" for col in wide.columns]
        _print_table(wide.reset_index(), f"featurisers on one {split} split of {data} (seed {seed}), {part} test rows")
