"""`spool-target check` and `spool-target plan`: thin shells over spool_target.load.oracle.

Nothing Oracle is imported until a command runs (I3), and `plan --offline`
never imports the driver at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .app import app
from .common import (
    ConfigOption,
    JsonOption,
    LogFormatOption,
    MaxWaitOption,
    QuietOption,
    SpoolOption,
    destination_spec,
    load_options,
    make_config,
    make_log,
    open_spool,
    oracle_options,
    run_command,
)

OracleDestinationOption = typer.Option(
    None,
    "--destination",
    "-d",
    help="oracle://user@host:port/service_name. Default: config `destination`, `dsn` or `host`.",
    show_default=False,
)


@app.command("check")
def check_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    destination: Optional[str] = OracleDestinationOption,
    max_wait: Optional[float] = MaxWaitOption,
    as_json: bool = JsonOption,
    log_format: Optional[str] = LogFormatOption,
    quiet: bool = QuietOption,
) -> None:
    """Connect to Oracle and report what a load would use and need.

    Server version and edition, the features chosen (JSON type, BOOLEAN,
    identifier length, MAX_STRING_SIZE), the target schema, privileges and
    tablespace quota, the ledger, and what the spool has pending. Exits 6
    with the statements to fix it when something needed is missing, 75 when
    the database stays unreachable.
    """
    from ..errors import DestinationError
    from ..load.oracle.check import CheckReport, run_check

    config = make_config(
        config_files, spool_dir=str(spool) if spool else None, destination=destination,
        max_wait_seconds=max_wait, log_format=log_format,
    )
    log = make_log(config, quiet)
    def check() -> CheckReport:
        layout = open_spool(config, must_exist=False, log=log, segments=False)  # no spool yet: nothing is pending
        return run_check(destination_spec(config, layout.root, oracle=True), oracle_options(config), layout, log,
                         max_wait=config.max_wait_seconds)

    report = run_command(log, check)
    typer.echo(log.scrub(json.dumps(log.scrub_data(report.to_json()), indent=2) if as_json else report.render()))
    if not report.ok:
        missing = ", ".join(i.name for i in report.items if i.ok is False)

        def fail() -> None:
            raise DestinationError(
                f"{report.destination} is missing what a load needs: {missing}",
                hint="run the statements under 'to fix', then `spool-target check` again",
            )

        run_command(log, fail)


@app.command("plan")
def plan_command(
    config_files: Optional[list[Path]] = ConfigOption,
    spool: Optional[str] = SpoolOption,
    destination: Optional[str] = OracleDestinationOption,
    offline: bool = typer.Option(
        False, "--offline",
        help="Do not connect: assume empty schemas and the server --assume names. Needs no password.",
    ),
    assume: str = typer.Option(
        "19c", "--assume", help="With --offline: the server to plan for: 19c, 21c (JSON columns) or 23ai (JSON, BOOLEAN).",
    ),
    max_string_size: str = typer.Option(
        "STANDARD", "--max-string-size",
        help="With --offline: the server's MAX_STRING_SIZE: STANDARD (VARCHAR2 up to 4000 bytes) or EXTENDED (32767).",
    ),
    load_method: Optional[str] = typer.Option(
        None, "--load-method", help="append-only, upsert or overwrite. Default: config load_method.", show_default=False
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the script to this file instead of stdout."),
    log_format: Optional[str] = LogFormatOption,
    quiet: bool = QuietOption,
) -> None:
    """Print, as an SQL script, the DDL and DML `load` would run for the pending segments.

    Statements end with `;`; DDL that may already be done is a PL/SQL block
    ending with `/`. Without --offline it connects (read only) and plans
    against the tables as they are now. The script starts with the session
    set-up and names the bind type of every placeholder.
    """
    from ..load.engine import RunMode
    from ..load.oracle.script import plan_script

    config = make_config(
        config_files, spool_dir=str(spool) if spool else None, destination=destination,
        load_method=load_method, log_format=log_format,
    )
    log = make_log(config, quiet)
    if not offline and (assume != "19c" or max_string_size.upper() != "STANDARD"):
        from ..errors import ConfigError

        def refuse() -> None:
            raise ConfigError("--assume and --max-string-size only apply with --offline",
                              hint="without --offline the plan asks the server itself")

        run_command(log, refuse)
    def plan() -> tuple[str, dict[str, int]]:
        layout = open_spool(config, log=log)
        return plan_script(
            layout, destination_spec(config, layout.root, oracle=True), config.destination, oracle_options(config),
            load_options(config, RunMode.FRESH), log, offline=offline, assume=assume, max_string_size=max_string_size,
        )

    script, _ = run_command(log, plan)
    script = log.scrub(script)
    if output is not None:
        output.write_text(script)
    else:
        typer.echo(script, nl=False)
