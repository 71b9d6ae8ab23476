"""What every command shares: config options, logging, and turning errors into exit codes.

Commands stay thin: parse flags, build a Config and a Log, call one library
function inside ``run_command``, print its result.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer

from ..config import Config, load_config
from ..errors import ExitCode, SpoolTargetError
from ..logs import Log
from ..spool.ingest import IngestOptions

T = TypeVar("T")


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
    metavar="DIR",
    help="Spool directory. Default: config spool_dir, env SPOOL_TARGET_SPOOL_DIR, else ./spool.",
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
    log.redact(*config.secrets)
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
