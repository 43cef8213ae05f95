"""``hts data``: generate, inspect and label datasets in the 2DMD layout."""

from __future__ import annotations

import typer

app = typer.Typer(help="Generate, inspect and label 2DMD-layout datasets.", no_args_is_help=True)
