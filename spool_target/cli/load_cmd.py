"""`spool-target load` and `spool-target status`: thin shells over spool_target.load.

The library is imported inside each command, so `ingest` never loads the
load engine (or, through it, a database driver: I3).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import app
from .common import ConfigOption, LogFormatOption, QuietOption, SpoolOption, make_config, make_log, run_command

DestinationOption = typer.Option(
    None,
    "--destination",
    "-d",
    metavar="URL",
    help="duckdb:///relative.duckdb, duckdb:////absolute/path.duckdb or oracle://user@host:port/service. "
    "Default: config `destination`, else an embedded DuckDB file in the spool.",
    show_default=False,
)


@app.command("load")
def load_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[Path] = SpoolOption,
    destination: Optional[str] = DestinationOption,
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted load: report what is done, clean up, load the rest."
    ),
    max_wait: Optional[float] = typer.Option(
        None,
        "--max-wait",
        metavar="SECONDS",
        help="Seconds to keep retrying a destination that is down or locked before exiting 75. "
        "Default: config max_wait_seconds (300).",
        show_default=False,
    ),
    load_method: Optional[str] = typer.Option(
        None, "--load-method", metavar="METHOD", help="append-only, upsert or overwrite. Default: config load_method.", show_default=False
    ),
    log_format: Optional[str] = LogFormatOption,
    quiet: bool = QuietOption,
) -> None:
    """Load every pending spooled segment into the destination, exactly once and in order.

    Each segment commits together with its row in the destination's ledger,
    so a crash or outage at any moment leaves it loaded once or still
    pending. Exit 75 means the destination stayed unavailable: nothing is
    lost, run `spool-target load --resume` later.
    """
    from ..load.engine import RunMode, run_load

    config = make_config(
        config_files,
        spool_dir=str(spool) if spool else None,
        destination=destination,
        max_wait_seconds=max_wait,
        load_method=load_method,
        log_format=log_format,
    )
    log = make_log(config, quiet)
    run_command(log, lambda: run_load(config, log, RunMode.RESUME if resume else RunMode.FRESH))


@app.command("status")
def status_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[Path] = SpoolOption,
    destination: Optional[str] = DestinationOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for scripts)."),
    log_format: Optional[str] = LogFormatOption,
) -> None:
    """Per stream: segments and rows spooled, loaded, pending, oldest pending age, rejects, table.

    Works with the destination unreachable: it says so and shows the spool side.
    """
    from ..load.status import render_status, spool_status

    config = make_config(config_files, spool_dir=str(spool) if spool else None, destination=destination, log_format=log_format)
    log = make_log(config)
    report = run_command(log, lambda: spool_status(config, log))
    typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False) if as_json else render_status(report))
