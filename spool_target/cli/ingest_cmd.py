"""`spool-target ingest` and the Meltano-style `target-spool` entry point."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import typer

from ..about import about_text
from ..config import Config
from ..logs import Log
from ..spool.ingest import IngestOptions, IngestSummary
from ..spool.runs import ingest_with_run_file
from ..storage.location import is_remote
from .app import app
from .common import bucket_spool, ingest_options, ConfigOption, LogFormatOption, QuietOption, SpoolOption, make_config, make_log, run_command

InputOption = typer.Option(
    None,
    "--input",
    "-i",
    metavar="FILE",
    help="Read Singer messages from this file instead of stdin.",
    show_default=False,
)


LoadInBackgroundOption = typer.Option(
    False,
    "--load-in-background",
    help="Also run `load --follow` in a child process that loads segments as they are committed. "
    "Ingest is never slowed or stopped by the destination; if it is down, the run ends with "
    "`load --resume` advice.",
)


def _run_ingest(
    config_files: Optional[list[Path]],
    spool: Optional[str],
    input_file: Optional[Path],
    log_format: Optional[str],
    quiet: bool,
    load_in_background: bool = False,
) -> None:
    config = make_config(config_files, spool_dir=str(spool) if spool else None, log_format=log_format)
    log = make_log(config, quiet)

    def out(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    progress = _terminal_progress() if log.interactive else None

    def ingest(options: IngestOptions, publish: Callable[[], object] | None = None) -> IngestSummary:
        if input_file is None:
            return ingest_with_run_file(options, log, sys.stdin.fileno(), out, progress, publish)
        try:
            fd = os.open(input_file, os.O_RDONLY)
        except OSError as err:
            from ..errors import ConfigError

            raise ConfigError(f"cannot open --input {input_file}: {err.strerror}") from None
        try:
            return ingest_with_run_file(options, log, fd, out, progress, publish)
        finally:
            os.close(fd)

    def work() -> IngestSummary:
        if is_remote(config.spool_dir):
            return _ingest_to_bucket(config, log, ingest)
        return ingest(ingest_options(config))

    # --load-in-background: a `load --follow` child drains the spool meanwhile (spool/background.py)
    loader = None
    if load_in_background:
        from ..spool.background import BackgroundLoader

        loader = BackgroundLoader.start(config.spool_dir, config_files, log_format, quiet)
    try:
        summary = run_command(log, work)
    except BaseException:
        if loader is not None:
            loader.finish(log)  # it still drains what this run committed
        raise
    _report(log, summary, config.spool_dir)
    if loader is not None:
        loader.finish(log)


def _ingest_to_bucket(
    config: Config, log: Log, ingest: Callable[[IngestOptions, Callable[[], object]], IngestSummary]
) -> IngestSummary:
    """Ingest into a bucket spool (spool/remote.py): under the spool's lease, on this
    machine's write replica, each STATE released only once the bucket holds what
    precedes it. Orphans of a crashed writer are deleted first."""
    bucket = bucket_spool(config, "write", log)
    keeper = bucket.take_lease()
    try:
        bucket.sync(segments=False, side_files=False)
        bucket.forget_side_files()
        if bucket.layout.exists():
            bucket.delete_orphans()
        publisher = bucket.publisher(keeper, keeper.lease.owner)
        try:
            return ingest(replace(ingest_options(config), spool_dir=bucket.layout.root), publisher)
        finally:
            bucket.keep_run_files()
    finally:
        keeper.release()


def _terminal_progress() -> Callable[[int, IngestSummary], None]:
    """A one-line status on stderr when it is a terminal, redrawn at most 4 times a second."""
    import time

    from rich.console import Console

    console = Console(stderr=True)
    started = time.monotonic()
    last = [0.0]

    def show(lines: int, summary: IngestSummary) -> None:
        now = time.monotonic()
        if now - last[0] < 0.25:
            return
        last[0] = now
        rate = lines / (now - started) if now > started else 0
        segments = sum(s.segments for s in summary.streams.values())
        console.print(
            f"ingest: {lines:,} lines ({rate:,.0f}/s), {segments} segments committed, "
            f"{summary.states_emitted} STATE out",
            end="\r",
            highlight=False,
        )

    return show


def _report(log: Log, summary: IngestSummary, spool: str) -> None:
    from ..metrics import ingest_metrics

    ingest_metrics(log, summary)
    rate = summary.records / summary.seconds if summary.seconds else 0.0
    log.info(
        f"ingest done: {summary.records} records in {summary.seconds:.1f}s ({rate:,.0f}/s), "
        f"{sum(s.segments for s in summary.streams.values())} segments, {summary.rejected} rejected, "
        f"{summary.states_emitted} STATE messages emitted",
        spool=spool,
        run_id=summary.run_id,
        compiled_block_lines=summary.compiled_block_lines,
        block_lines=summary.block_lines,
    )
    if summary.rejected:
        log.warning(f"{summary.rejected} records were rejected; see {spool.rstrip('/')}/rejects or `spool-target rejects`")


@app.command("ingest")
def ingest_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    input_file: Optional[Path] = InputOption,
    load_in_background: bool = LoadInBackgroundOption,
    log_format: Optional[str] = LogFormatOption,
    quiet: bool = QuietOption,
) -> None:
    """Spool Singer messages from stdin to Parquet files; never touches the database.

    The spool is a local directory or a bucket prefix (s3://, az://, gs://).
    STATE messages are written to stdout only once every record before them
    is committed (on disk, or stored in the bucket), so a tap's bookmark never
    runs ahead of the data.
    Typical use:  tap-x | spool-target ingest --config target.json > state.json
    """
    _run_ingest(config_files, spool, input_file, log_format, quiet, load_in_background)


meltano_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


@meltano_app.command()
def _meltano(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    input_file: Optional[Path] = InputOption,
    about: bool = typer.Option(False, "--about", help="Describe this target and its settings, then exit."),
    about_format: str = typer.Option("text", "--format", help="Format of --about: text, json or markdown."),
    load_in_background: bool = LoadInBackgroundOption,
    log_format: Optional[str] = LogFormatOption,
    quiet: bool = QuietOption,
) -> None:
    """target-spool: the Singer target interface of `spool-target ingest` (for Meltano)."""
    if about:
        typer.echo(about_text(about_format))
        raise typer.Exit()
    _run_ingest(config_files, spool, input_file, log_format, quiet, load_in_background)
