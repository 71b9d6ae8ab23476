"""What every command shares: config options, logging, typed options, and turning errors into exit codes.

Commands stay thin: parse flags, build a Config and a Log, call one library
function inside ``run_command``, print its result.

This is the edge where the config file ends: the functions below turn the
resolved ``Config`` into the typed, frozen options the library takes
(``IngestOptions``, ``LoadOptions``, ``NamingOptions``, ``DestinationOptions``
with ``OracleOptions``, a ``DestinationChoice``, ``FollowOptions``), and
nothing under spool/, load/ or ops/ reads ``Config`` (tests/test_layers.py
checks it). ``open_spool`` is the one place a command's spool is opened, and
``destination_from_config`` the one place that decides which destination it
talks to. The library is imported inside these functions, so that `ingest`
never loads the load engine (I3).
"""

from __future__ import annotations

import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, TypeVar

import typer

from ..config import Config, load_config
from ..errors import ExitCode, SpoolTargetError
from ..logs import Log
from ..spool.ingest import IngestOptions
from ..spool.layout import SpoolLayout, require_spool
from ..storage.location import is_remote

if TYPE_CHECKING:
    from ..spool.remote import BucketSpool
    from ..load.destination import DestinationChoice, DestinationSpec
    from ..load.engine import LoadOptions, RunMode
    from ..load.options import DestinationOptions, NamingOptions, OracleOptions
    from ..ops.follow import FollowOptions

T = TypeVar("T")
Publish = Callable[[], object]  # a bucket spool's publisher (spool/remote.py)


def ingest_options(config: Config) -> IngestOptions:
    """The ingest settings of ``config``, typed: what `ingest` and `rejects replay` run with."""
    return IngestOptions(
        spool_dir=Path(config.spool_dir),
        flush_max_rows=config.flush_max_rows,
        flush_max_bytes=config.flush_max_bytes,
        flush_interval_seconds=config.flush_interval_seconds,
        max_rejects=config.max_rejects,
        min_free_disk_mb=config.min_free_disk_mb,
        lock_wait_seconds=config.lock_wait_seconds,
    )


def open_spool(config: Config, *, must_exist: bool = True, log: Log | None = None, segments: bool = True) -> SpoolLayout:
    """The spool a command works on (``spool_dir``); by default it must exist already
    (a SpoolError, exit 5, says to ingest first).

    A spool in a bucket is read through this machine's replica of it
    (spool/remote.py): the replica is brought up to the bucket first, with the
    segments too unless ``segments`` is false (commands that read only the
    manifest). Writers take the spool's lease: ingest through ``bucket_spool``,
    prune and `rejects replay` through ``writing_spool``."""
    if not is_remote(config.spool_dir):
        return require_spool(config.spool_dir) if must_exist else SpoolLayout(config.spool_dir)
    bucket = bucket_spool(config, "read", log)
    bucket.sync(segments=segments)
    if must_exist:
        bucket.require()
    return bucket.layout


def bucket_spool(config: Config, role: str, log: Log | None = None) -> BucketSpool:
    """The bucket spool of ``spool_dir`` and this machine's replica of it in ``role``
    (``read`` or ``write``)."""
    from ..spool.remote import BucketSpool, replica_root
    from ..storage import open_storage

    storage = open_storage(config.spool_dir, config.storage_options)
    return BucketSpool(storage, replica_root(storage.url, config.replica_dir, role), log)


@contextmanager
def writing_spool(config: Config, log: Log, *, side_files: bool = False) -> Iterator[tuple[SpoolLayout, Publish | None]]:
    """The spool, and its publisher, for a command that appends to the manifest besides
    ingest (prune, `rejects replay`).

    A local spool is opened as ``open_spool`` does, with no publisher. A bucket
    spool is written under its lease, so never beside an ingest (``SpoolLocked``,
    exit 5): the read replica is brought up to the bucket (the manifest, and the
    reject files and replay journals if ``side_files``), the block runs on it
    (calling the publisher after its commits, if it commits segments), then what
    is left is published, and only after that are the segments it pruned deleted
    from the bucket (the order prune keeps on disk: entry first, then the file)."""
    if not is_remote(config.spool_dir):
        yield open_spool(config), None
        return
    bucket = bucket_spool(config, "read", log)
    keeper = bucket.take_lease()
    try:
        with bucket.writing():
            bucket.sync(segments=False, side_files=side_files)
            bucket.require()
            publisher = bucket.publisher(keeper, keeper.lease.owner, keep_segments=True)
            yield bucket.layout, publisher
            publisher.publish()
        bucket.delete_orphans()
    finally:
        keeper.release()


def storage_secrets(config: Config) -> list[str]:
    """Keys in ``storage_options`` or the environment that a bucket spool uses: never printed (I7)."""
    if not is_remote(config.spool_dir):
        return []
    from ..storage import parse_location

    try:
        return list(parse_location(config.spool_dir, config.storage_options).secrets)
    except SpoolTargetError:
        return []  # reported by the command that opens the spool


def naming_options(config: Config) -> NamingOptions:
    from ..load.options import NamingOptions

    return NamingOptions(
        default_target_schema=config.default_target_schema,
        table_mappings=config.table_mappings,
        column_mappings=config.column_mappings,
    )


def oracle_options(config: Config) -> OracleOptions:
    from dataclasses import fields

    from ..load.options import OracleOptions

    # Every field is the setting of the same name (config.SETTINGS parses and checks its type).
    values = {f.name: getattr(config, f.name) for f in fields(OracleOptions)}
    if not values["object_storage_url"] and is_remote(config.spool_dir):
        # A bucket spool: Oracle reads the segments where ingest put them, not the local replica.
        values["object_storage_url"] = config.spool_dir
    return OracleOptions(**values)


def destination_options(config: Config) -> DestinationOptions:
    from ..load.options import DestinationOptions, DuckDBOptions

    return DestinationOptions(
        duckdb=DuckDBOptions(config.default_target_schema, config.duckdb_compression),
        oracle=oracle_options(config),
    )


def destination_spec(config: Config, spool_root: Path, *, oracle: bool = False) -> DestinationSpec:
    """The configured destination: ``destination``, else Oracle if ``dsn`` or ``host`` is set
    (or ``oracle``: for the Oracle-only commands), else the embedded DuckDB file in the spool."""
    from ..load.destination import parse_destination

    return parse_destination(config.destination, spool_root, oracle_configured=oracle or bool(config.dsn or config.host))


def destination_from_config(config: Config, spool_root: Path) -> DestinationChoice:
    """Which destination a command talks to, with its options: the one place that decides it."""
    from ..load.destination import DestinationChoice

    return DestinationChoice(destination_spec(config, spool_root), destination_options(config))


def load_options(config: Config, mode: RunMode) -> LoadOptions:
    from ..load.destination import DeleteMode, WriteMode
    from ..load.engine import LoadOptions

    return LoadOptions(
        mode=mode,
        write=WriteMode(config.load_method),
        deletes=DeleteMode.HARD if config.hard_delete else DeleteMode.SOFT,
        max_wait=config.max_wait_seconds,
        unit_rows=config.transaction_rows,
        naming=naming_options(config),
    )


def follow_options(config: Config, until_idle: float | None, background_of: int | None) -> FollowOptions:
    from ..ops.follow import FollowOptions

    return FollowOptions(until_idle, background_of=background_of, retention=config.retention)


ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    metavar="FILE",
    help="JSON config file. Repeat to merge several, left to right (later files win).",
    show_default=False,
)
SpoolOption = typer.Option(
    None,
    "--spool",
    metavar="DIR|URL",
    help="Spool directory, or a bucket prefix (s3://bucket/prefix, az://container/prefix, gs://bucket/prefix). "
    "Default: config spool_dir, env SPOOL_TARGET_SPOOL_DIR, else ./spool.",
    show_default=False,
)
LogFormatOption = typer.Option(
    None,
    "--log-format",
    metavar="FORMAT",
    help="auto (text on a terminal, JSON lines otherwise), text or json.",
    show_default=False,
)
QuietOption = typer.Option(False, "--quiet", "-q", help="Only warnings and errors on stderr (for cron).")
DestinationOption = typer.Option(
    None,
    "--destination",
    "-d",
    metavar="URL",
    help="duckdb:///relative.duckdb, duckdb:////absolute/path.duckdb or oracle://user@host:port/service. "
    "Default: config `destination`, else the embedded DuckDB file in the spool.",
    show_default=False,
)
MaxWaitOption = typer.Option(
    None,
    "--max-wait",
    metavar="SECONDS",
    help="Seconds to keep retrying a destination that is down or locked before exiting 75. "
    "Default: config max_wait_seconds (300).",
    show_default=False,
)
JsonOption = typer.Option(False, "--json", help="Print one JSON object (for scripts).")


def make_config(config_files: Optional[list[Path]], **overrides: Any) -> Config:
    """Resolve the config; a bad file or value exits 2 with the setting named."""
    return run_command(None, lambda: load_config(config_files or [], overrides))


def make_log(config: Config, quiet: bool = False) -> Log:
    log = Log(config.log_format, quiet=quiet)
    log.redact(*config.secrets, *storage_secrets(config))
    return log


def echo(log: Log, text: str, *, err: bool = False) -> None:
    """Print a command's result: it may name the destination or quote its
    errors, which may quote a connect string, so it is scrubbed like a log line (I7)."""
    typer.echo(log.scrub(text), err=err)


def run_command(log: Log | None, fn: Callable[[], T]) -> T:
    """Run library code; map our errors to their exit codes with a clear message."""
    try:
        return fn()
    except SpoolTargetError as err:
        _report(log, str(err), err.exit_code)
    except KeyboardInterrupt:
        _report(log, "interrupted; everything committed so far is safe (run `spool-target load --resume` to finish a load)", ExitCode.INTERRUPTED)
    except Exception as err:  # a bug: say so, with the traceback, scrubbed of secrets
        text = "".join(traceback.format_exception(err))
        _report(log, f"internal error (please report it): {err}\n{text}", ExitCode.INTERNAL)
    raise AssertionError("unreachable")


def _report(log: Log | None, message: str, code: ExitCode) -> None:
    if log is not None:
        message = log.scrub(message)
        if log.format == "json":
            log.error(message.splitlines()[0], exit_code=int(code), detail=message)
        else:
            sys.stderr.write(f"error: {message}\n")
    else:
        sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(int(code))
