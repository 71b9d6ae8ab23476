"""The root ``spool-target`` Typer app; each ``*_cmd`` module registers its commands on it.

A module of its own so that the command modules import it without importing
the ``cli`` package that imports them (a cycle).
"""

from __future__ import annotations

from typing import Optional

import typer

from .. import __version__

app = typer.Typer(
    name="spool-target",
    help=(
        "A Singer target for Oracle that never loses records to an outage.\n\n"
        "`ingest` spools Singer messages to Parquet files (in a local directory or a bucket) and never "
        "touches the database; "
        "`load` bulk-loads the spool into the destination exactly once, and `load --resume` "
        "carries on after an outage or a crash.\n\n"
        "Exit codes: 0 ok, 1 internal error, 2 usage or config error, 3 malformed input, "
        "4 too many rejects, 5 spool error (disk full, locked, corrupt), 6 permanent destination "
        "error, 75 destination unavailable (nothing lost: run `spool-target load --resume` later), "
        "130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from ..spool.records import COMPILED

        path = "compiled" if COMPILED else "pure Python (the same values, more slowly; README: Speed)"
        typer.echo(f"spool-target {__version__}\ningest hot path: {path}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version, and whether ingest's compiled hot path is built, and exit."
    ),
) -> None:
    pass
