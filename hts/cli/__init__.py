"""The ``hts`` command line: ``hts data ...``, ``hts surrogate ...``, ``hts llm ...``, ``hts run`` ...

Each sub-command group lives in its own module and imports heavy packages only inside commands,
so ``hts --help`` stays fast. Errors of the project's own type (:class:`hts.errors.HTSError`) are
printed as one red line and exit with status 2; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from hts.cli import campaign as _campaign
from hts.cli import data as _data
from hts.cli import llm as _llm
from hts.cli import surrogate as _surrogate

app = typer.Typer(
    name="hts",
    help="Design point defects in 2D materials: data, oracle, surrogate, LLM generator, campaigns.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(_data.app, name="data")
_campaign.register(app)
app.add_typer(_llm.app, name="llm")
app.add_typer(_surrogate.app, name="surrogate")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
    )
    logging.getLogger("distributed").setLevel(logging.WARNING)


def main() -> None:
    """Entry point of the ``hts`` console script."""
    import os

    from hts.errors import HTSError
    from hts.hashseed import fix_hash_seed

    fix_hash_seed()  # the same campaign file and seed give the same trials (hts.hashseed)
    # distributed configures its own loggers (INFO) when first imported: keep them to warnings.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

    try:
        app()
    except HTSError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
