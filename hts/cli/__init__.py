"""The ``hts`` command line: ``hts data ...``, ``hts surrogate ...``, ``hts llm ...``, ``hts run`` ...

Each sub-command group lives in its own module and imports heavy packages only inside commands,
so ``hts --help`` stays fast. Errors of the project's own type (:class:`hts.errors.HTSError`) are
printed as one red line and exit with status 2; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer
import typer.core

from hts.cli import campaign as _campaign
from hts.cli import data as _data
from hts.cli import llm as _llm
from hts.cli import surrogate as _surrogate


def _hide_flag_types() -> None:
    """Show no value type (``<bool>``) next to flags in the help: a flag takes no value. Typer's rich
    help prints every option's type, flags included; this keeps it for options that take a value."""
    option = typer.core.TyperOption
    if getattr(option, "_hts_flags_untyped", False) or not hasattr(option, "display_type_rich"):
        return
    shown = option.display_type_rich

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    option.display_type_rich = display_type_rich  # type: ignore[method-assign]
    option._hts_flags_untyped = True  # type: ignore[attr-defined]


_hide_flag_types()

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


def _version(value: bool) -> None:
    if value:
        from hts import __version__

        typer.echo(f"hts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version of hts and exit."
    ),
) -> None:
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
