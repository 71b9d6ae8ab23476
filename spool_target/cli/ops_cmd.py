"""Operating a spool: `sql`, `inspect`, `verify`, `prune`, `rejects` and `rejects replay`.

Thin shells: each builds a Config and a Log, makes one library call inside
``run_command`` and prints its result. Libraries are imported inside the
commands so that `ingest` never loads them.
"""

from __future__ import annotations

import os
from dataclasses import replace
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer

from ..config import Config
from ..spool.layout import SpoolLayout
from .app import app
from .common import (
    ingest_options,
    ConfigOption,
    DestinationOption,
    LogFormatOption,
    MaxWaitOption,
    QuietOption,
    SpoolOption,
    destination_from_config,
    echo,
    make_config,
    make_log,
    open_spool,
    run_command,
    writing_spool,
)
from .output import choose_format, write_records, write_rows

if TYPE_CHECKING:
    from ..load.destination import DestinationChoice

FormatOption = typer.Option(
    None,
    "--format",
    "-f",
    metavar="FORMAT",
    help="table, csv, json (one object per line) or markdown. Default: table on a terminal, csv otherwise.",
    show_default=False,
)
OfflineOption = typer.Option(False, "--offline", help="Do not read the destination's ledger (segment state 'unknown').")


def _config(config_files: Optional[list[Path]], spool: Optional[str], **overrides: object) -> Config:
    return make_config(config_files, spool_dir=str(spool) if spool else None, **overrides)


def _ledger_source(config: Config, layout: SpoolLayout, offline: bool) -> "DestinationChoice | None":
    """The destination whose ledger says what is loaded; None with --offline."""
    return None if offline else destination_from_config(config, layout.root)


def _printing(fn: Callable[[], object]) -> None:
    """A reader that closes the pipe early (`| head`) is not an error."""
    try:
        fn()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None


@app.command("sql")
def sql_command(
    query: str = typer.Argument(..., metavar="QUERY", help="DuckDB SQL; - reads it from stdin."),
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    destination: Optional[str] = DestinationOption,
    fmt: Optional[str] = FormatOption,
    offline: bool = OfflineOption,
    log_format: Optional[str] = LogFormatOption,
) -> None:
    """Query the spool with DuckDB: every stream is a view under its own name.

    Also: manifest, segments (one row per segment, with state pending, loaded,
    pruned or unknown for the configured destination) and rejects. Views read
    only committed, unpruned segments, listed from the manifest. Example:
    spool-target sql 'SELECT count(*) FROM "public-users"'
    """
    from ..ops.views import connect_spool, run_query

    config = _config(config_files, spool, destination=destination, log_format=log_format)
    log = make_log(config)
    out_format = run_command(log, lambda: choose_format(fmt))
    text = sys.stdin.read() if query == "-" else query

    def work() -> None:
        layout = open_spool(config, log=log)
        con, _ = connect_spool(layout, _ledger_source(config, layout, offline), log)
        try:
            result = run_query(con, text)
            if result is not None:
                _printing(lambda: write_rows(result.columns, result.types, result.batches, out_format))
        finally:
            con.close()

    run_command(log, work)


@app.command("inspect")
def inspect_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    destination: Optional[str] = DestinationOption,
    db: Optional[Path] = typer.Option(
        None, "--db", metavar="FILE", help="Database file to write. Default: <spool>/inspect.duckdb.", show_default=False
    ),
    offline: bool = OfflineOption,
    log_format: Optional[str] = LogFormatOption,
) -> None:
    """Write a small DuckDB database holding the spool's views, to open with the duckdb CLI or Python.

    Views only (absolute paths; no data copied), the same as `spool-target
    sql` has; run it again after new segments are committed or pruned.
    """
    from ..ops.views import InspectResult, render_inspect, write_inspect_db

    config = _config(config_files, spool, destination=destination, log_format=log_format)
    log = make_log(config)
    def write() -> InspectResult:
        layout = open_spool(config, log=log)
        return write_inspect_db(layout, _ledger_source(config, layout, offline), log, db)

    result = run_command(log, write)
    typer.echo(render_inspect(result))


@app.command("verify")
def verify_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    destination: Optional[str] = DestinationOption,
    no_destination: bool = typer.Option(False, "--no-destination", help="Check the spool only, not the ledger."),
    log_format: Optional[str] = LogFormatOption,
) -> None:
    """Check every committed segment against the manifest, and the destination's ledger against both.

    Each problem is one line on stdout (what, where, what to do); exit 5 if
    there is any, 75 if only the destination could not be read. Also finds
    orphan segment files, temp files left by a crash and pruned files left
    behind. Without --destination the ledger is checked when a destination is
    configured or the embedded DuckDB file exists.
    """
    from ..ops.verify import VerifyReport, raise_for_problems, verify_spool

    config = _config(config_files, spool, destination=destination, log_format=log_format)
    log = make_log(config)
    check = False if no_destination else (True if destination else None)
    def verify() -> VerifyReport:
        layout = open_spool(config, log=log)
        return verify_spool(layout, destination_from_config(config, layout.root), log, check_destination=check)

    report = run_command(log, verify)
    for problem in report.problems:
        echo(log, problem.line())
    for note in report.notes:
        echo(log, f"note: {note}", err=True)
    echo(log, report.summary(), err=True)
    run_command(log, lambda: raise_for_problems(report))


@app.command("prune")
def prune_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    destination: Optional[str] = DestinationOption,
    older_than: Optional[str] = typer.Option(
        None, "--older-than", metavar="AGE", help="Only segments committed longer ago than this: 7d, 12h, 30m.", show_default=False
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be deleted; change nothing."),
    max_wait: Optional[float] = MaxWaitOption,
    log_format: Optional[str] = LogFormatOption,
    quiet: bool = QuietOption,
) -> None:
    """Delete segment files that the destination's ledger confirms as loaded, to free disk space.

    Never deletes a pending segment or one it cannot confirm (ledger
    unreachable: exit 75, nothing deleted). The manifest records each
    deletion, so status and sql stay correct. Refuses to run while an ingest
    is writing the manifest (exit 5). Config `retention` makes `load` do this.
    """
    from ..config import parse_duration
    from ..errors import ConfigError
    from ..ops.prune import PruneReport, PruneState, prune_spool

    config = _config(config_files, spool, destination=destination, log_format=log_format)
    log = make_log(config, quiet)

    def age() -> float | None:
        try:
            return None if older_than is None else parse_duration(older_than)
        except ValueError as err:
            raise ConfigError(f"--older-than: {err}") from None

    limit = run_command(log, age)
    def prune() -> PruneReport:
        def run(layout: SpoolLayout) -> PruneReport:
            return prune_spool(layout, destination_from_config(config, layout.root), log, older_than=limit,
                               dry_run=dry_run, max_wait=config.max_wait_seconds if max_wait is None else max_wait)

        if dry_run:
            return run(open_spool(config, log=log, segments=False))
        with writing_spool(config, log) as (layout, _):
            return run(layout)

    report = run_command(log, prune)
    verb = "would prune" if report.state is PruneState.DRY_RUN else "pruned"
    for seg in report.plan.delete:
        typer.echo(f"{verb} {seg.path} (stream {seg.stream!r}, {seg.rows:,} rows, {seg.bytes:,} bytes)")
    echo(log, report.summary(), err=True)


rejects_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
app.add_typer(rejects_app, name="rejects")


@rejects_app.callback(invoke_without_command=True)
def rejects_command(
    ctx: typer.Context,
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    stream: Optional[str] = typer.Option(None, "--stream", "-s", metavar="STREAM", help="Only this stream.", show_default=False),
    include_replayed: bool = typer.Option(False, "--all", help="Also list rejects that a replay has since committed."),
    counts: bool = typer.Option(False, "--counts", help="Only the counts per stream and reason."),
    limit: int = typer.Option(100, "--limit", metavar="N", help="List at most N records on a terminal (0: all)."),
    fmt: Optional[str] = FormatOption,
    log_format: Optional[str] = LogFormatOption,
) -> None:
    """List rejected records (records ingest could not type or key) with their reasons and counts.

    On a terminal: counts per stream and reason, then the records. With
    --format csv|json|markdown (the default when not a terminal: csv), one
    row per record with its raw text. After fixing the cause, run
    `spool-target rejects replay`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..spool.rejects import list_rejects
    from .output import Format

    config = _config(config_files, spool, log_format=log_format)
    log = make_log(config)
    out_format = run_command(log, lambda: choose_format(fmt))
    listing = run_command(log, lambda: list_rejects(open_spool(config, log=log, segments=False), stream, include_replayed=include_replayed))
    count_rows = [(c.stream, c.reason, c.count) for c in listing.counts]

    def show() -> None:
        if counts or out_format is Format.TABLE:
            write_records(["stream", "reason", "count"], count_rows, out_format, types=["VARCHAR", "VARCHAR", "BIGINT"])
        if counts:
            return
        records = listing.records
        if out_format is Format.TABLE:
            shown = records if limit <= 0 else records[:limit]
            rows = [(r.id, r.stream, r.line, r.state, r.latest_reason, _clip(r.raw, 80)) for r in shown]
            typer.echo("")
            types = ["VARCHAR", "VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR"]
            write_records(["id", "stream", "line", "state", "reason", "raw"], rows, out_format, types=types)
            if len(shown) < len(records):
                typer.echo(f"... {len(records) - len(shown)} more: --limit 0 lists them all")
        else:
            columns = ["id", "stream", "line", "run_id", "rejected_at", "state", "reason", "latest_reason", "raw"]
            full = [(r.id, r.stream, r.line, r.run_id, r.rejected_at, r.state.value, r.reason, r.latest_reason, r.raw) for r in records]
            write_records(columns, full, out_format)

    _printing(show)
    if listing.replayed and not include_replayed:
        typer.echo(f"({listing.replayed} rejected record(s) were replayed since: --all lists them too)", err=True)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


@rejects_app.command("replay")
def replay_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    stream: Optional[str] = typer.Option(None, "--stream", "-s", metavar="STREAM", help="Only this stream.", show_default=False),
    schema: Optional[Path] = typer.Option(
        None,
        "--schema",
        metavar="FILE",
        help="A corrected schema for --stream: a Singer SCHEMA message or a JSON Schema. Default: the stream's latest.",
        show_default=False,
    ),
    log_format: Optional[str] = LogFormatOption,
    quiet: bool = QuietOption,
) -> None:
    """Push open rejects through ingest's typing again, after a fix (a corrected schema, a setting).

    Records that now pass become new committed segments, keeping their
    original place in the stream's order (their _sdc_sequence); the rest
    stay rejected, with the latest reason. Nothing is deleted:
    outcomes are journaled in replays/, and a replay killed midway is settled
    by the next one without losing or duplicating a record.
    """
    from ..ops.replay import ReplayReport, replay_rejects

    config = _config(config_files, spool, log_format=log_format)
    log = make_log(config, quiet)
    def replay() -> ReplayReport:
        # A bucket spool: replayed on the read replica under the spool's lease, each commit published.
        with writing_spool(config, log, side_files=True) as (layout, publish):
            options = replace(ingest_options(config), spool_dir=layout.root, max_rejects=None)
            return replay_rejects(options, log, stream=stream, schema_file=schema, publish=publish)

    report = run_command(log, replay)
    if not report.streams:
        typer.echo("nothing to replay: no open rejects" + (f" for stream {stream!r}" if stream else ""))
    for s in report.streams:
        typer.echo(
            f"stream {s.stream!r}: {s.replayed} of {s.attempted} replayed into {s.segments} new segment(s), "
            f"{s.still_rejected} still rejected (replay run {s.run_id})"
        )
    if report.replayed:
        typer.echo(
            "replayed records keep their place in the stream's order: `spool-target load` loads them, and with "
            "load_method upsert a row is only replaced by a later record of its key",
            err=True,
        )
