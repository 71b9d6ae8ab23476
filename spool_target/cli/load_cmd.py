"""`spool-target load` and `spool-target status`: thin shells over spool_target.load.

The library is imported inside each command, so `ingest` never loads the
load engine (or, through it, a database driver: I3).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ..config import Config
from ..logs import Log
from ..storage.location import is_remote
from .app import app
from .common import (
    ConfigOption,
    DestinationOption,
    JsonOption,
    LogFormatOption,
    MaxWaitOption,
    QuietOption,
    SpoolOption,
    bucket_spool,
    destination_from_config,
    echo,
    follow_options,
    load_options,
    make_config,
    make_log,
    naming_options,
    open_spool,
    run_command,
    writing_spool,
)

if TYPE_CHECKING:
    from ..ops.follow import FollowOptions
    from ..ops.prune import PruneReport
    from ..spool.remote import BucketSpool

#: how often `load --follow` looks at a bucket spool for new manifest batches
BUCKET_POLL_SECONDS = 2.0


@app.command("load")
def load_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    destination: Optional[str] = DestinationOption,
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted load: report what is done, clean up, load the rest."
    ),
    max_wait: Optional[float] = MaxWaitOption,
    load_method: Optional[str] = typer.Option(
        None, "--load-method", metavar="METHOD", help="append-only, upsert or overwrite. Default: config load_method.", show_default=False
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        help="Keep running: load segments as ingest commits them, wait and retry through outages; "
        "SIGINT or SIGTERM stops it cleanly.",
    ),
    until_idle: Optional[float] = typer.Option(
        None, "--until-idle", metavar="SECONDS", help="With --follow: exit once nothing was pending for this long.", show_default=False
    ),
    background_of: Optional[int] = typer.Option(None, "--background-of", hidden=True),  # set by ingest --load-in-background
    log_format: Optional[str] = LogFormatOption,
    quiet: bool = QuietOption,
) -> None:
    """Load every pending spooled segment into the destination, exactly once and in order.

    Each segment commits together with its row in the destination's ledger,
    so a crash or outage at any moment leaves it loaded once or still
    pending. Exit 75 means the destination stayed unavailable: nothing is
    lost, run `spool-target load --resume` later. With --follow it keeps
    loading new segments within seconds and never exits on an outage.
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
    mode = RunMode.RESUME if resume else RunMode.FRESH
    # --- ops (load --follow, retention): see spool_target/ops/follow.py and ops/prune.py ---
    if follow or background_of is not None:
        from ..ops.follow import FollowReport, follow_load

        def follow_spool() -> FollowReport:
            options = follow_options(config, until_idle, background_of)
            if is_remote(config.spool_dir):
                # The bucket is read on every look (the refresh), so a store that is unreachable
                # at the start is an outage to wait out like any later one, not an exit.
                bucket = bucket_spool(config, "read", log)
                options, layout = bucket_follow_options(config, options, bucket, log), bucket.layout
            else:
                # The spool may not exist yet: a loader started with its ingest waits for the first segment.
                layout = open_spool(config, must_exist=False)
            return follow_load(layout, destination_from_config(config, layout.root), load_options(config, mode),
                               options, log)

        run_command(log, follow_spool)
        return
    if until_idle is not None:
        run_command(log, lambda: _usage("--until-idle needs --follow"))
    layout = run_command(log, lambda: open_spool(config, log=log))
    choice = run_command(log, lambda: destination_from_config(config, layout.root))
    run_command(log, lambda: run_load(layout, choice, load_options(config, mode), log))
    from ..ops.prune import retention_prune

    if not is_remote(config.spool_dir):
        run_command(log, lambda: retention_prune(layout, choice, config.retention, log))
    elif config.retention is not None:
        run_command(log, lambda: bucket_retention(config, log))


def bucket_follow_options(config: Config, options: FollowOptions, bucket: BucketSpool, log: Log) -> FollowOptions:
    """``load --follow`` on a bucket spool: its replica is brought up to the bucket at most
    every ``BUCKET_POLL_SECONDS`` (a LIST, plus a GET per new batch and segment), and
    ``retention`` prunes under the spool's lease like `prune` does."""
    from dataclasses import replace

    last = [float("-inf")]

    def refresh() -> None:
        if time.monotonic() - last[0] >= BUCKET_POLL_SECONDS:
            last[0] = time.monotonic()
            bucket.sync()

    prune = (lambda: bucket_retention(config, log)) if config.retention is not None else None
    return replace(options, refresh=refresh, prune=prune)


def bucket_retention(config: Config, log: Log) -> PruneReport | None:
    """``retention`` on a bucket spool: best effort, like on disk; skipped while an ingest
    holds the spool's lease (the next load tries again)."""
    from ..errors import SpoolLocked
    from ..ops.prune import retention_prune

    try:
        with writing_spool(config, log) as (layout, _):
            return retention_prune(layout, destination_from_config(config, layout.root), config.retention, log)
    except SpoolLocked:
        log.info("retention: skipped, an ingest holds the spool's lease; the next load prunes")
        return None


def _usage(message: str) -> None:
    from ..errors import ConfigError

    raise ConfigError(message)


@app.command("status")
def status_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    destination: Optional[str] = DestinationOption,
    as_json: bool = JsonOption,
    log_format: Optional[str] = LogFormatOption,
) -> None:
    """Per stream: segments and rows spooled, loaded, pending, oldest pending age, rejects, table.

    Works with the destination unreachable: it says so and shows the spool side.
    """
    from ..ops.status import StatusReport, render_status, spool_status

    config = make_config(config_files, spool_dir=str(spool) if spool else None, destination=destination, log_format=log_format)
    log = make_log(config)
    def status() -> StatusReport:
        layout = open_spool(config, log=log, segments=False)
        return spool_status(layout, destination_from_config(config, layout.root), naming_options(config), log)

    report = run_command(log, status)
    echo(log, json.dumps(log.scrub_data(report.to_json()), indent=2, ensure_ascii=False) if as_json else render_status(report))
