"""``spool-target plan``: the SQL a load would run, as a script, without running it.

The load engine drives an ordinary ``OracleDestination`` whose session is a
``session.RecordingSession``: statements are written down instead of
executed, and the catalog they would change is simulated so that later units
see earlier DDL. So the plan is made by the same code as the load -- same
reconciliation, same units, same SQL, same session set-up.

- ``plan`` connects (the recording reads the server's catalog and ledger
  through a real session; nothing is written) and plans against the tables
  as they are.
- ``plan --offline`` connects to nothing: it assumes empty schemas and a
  server (``--assume 19c``, the default, ``21c`` or ``23ai``; and
  ``--max-string-size STANDARD`` or ``EXTENDED``), with the AL32UTF8
  character set and 8K blocks. It needs no password and never imports the
  driver.

Both read the local segment files (the widening of VARCHAR2 columns depends
on the data). The script: statements end with ``;``; DDL that may already
have been done is wrapped in a PL/SQL block (ending with ``/``) that ignores
only the error meaning "already done", as ``load`` does; ``:1``, ``:2``...
are bind variables whose values come from the segments; comments give the
bind types python-oracledb uses for them.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from ...logs import Log
from ...spool.layout import SpoolLayout
from ..destination import DestinationKind, DestinationSpec
from ..engine import LoadEngine, LoadOptions
from ..options import OracleOptions
from .connect import ConnectSettings, settings_from
from .destination import OracleDestination
from .session import DriverSession, RecordingSession
from .types import ServerFeatures, assumed_features


def offline_settings(url: str, options: OracleOptions) -> ConnectSettings:
    """Enough to name things; no password, no address needed. ``url``: the ``destination`` setting."""
    where = url or options.dsn or (f"{options.host}:{options.port}/{options.service_name or options.sid}" if options.host else "")
    label = where if where.startswith("oracle") else f"oracle://{where or '(offline)'}"
    return ConnectSettings(user=options.user, label=label.split("?", 1)[0], target_schema=(options.target_schema or None))


def describe_server(f: ServerFeatures) -> str:
    json_col = "JSON" if f.json_type else "CLOB IS JSON" + ("" if f.json_scalars else " (objects and arrays only)")
    head = (f"assumed Oracle Database {f.assumed} (offline)" if f.assumed
            else f.banner or f"Oracle Database {f.version_text}")
    return (f"{head}: COMPATIBLE {f.compatible}, {f.max_identifier_length}-byte names, "
            f"MAX_STRING_SIZE={f.max_string_size}, {f.charset or 'character set unknown'}; "
            f"JSON as {json_col}, booleans as {'BOOLEAN' if f.boolean_type else 'NUMBER(1)'}")


def plan_script(
    layout: SpoolLayout, spec: DestinationSpec, url: str, options: OracleOptions, load: LoadOptions, log: Log, *,
    offline: bool, assume: str = "19c", max_string_size: str = "STANDARD",
    recorder: list[RecordingSession] | None = None,
) -> tuple[str, dict[str, int]]:
    """The plan as script text, and its totals (units, segments, rows).
    ``spec``: the configured destination, Oracle if nothing is; ``url``: the ``destination``
    setting as written (it names the plan offline).
    ``recorder``: receives the recording session, for tests that look at more than the text."""
    if spec.kind is not DestinationKind.ORACLE:
        raise ConfigError(f"plan is for Oracle destinations, not {spec.describe()}", hint="oracle://user@host:port/service")
    if offline:
        settings = offline_settings(url, options)
        features = assumed_features(assume, max_string_size)
        recording = RecordingSession(features)
    else:
        settings = settings_from(spec, options)
        log.redact(settings.password, settings.wallet_password)
        recording = RecordingSession(real=DriverSession(settings))
    if recorder is not None:
        recorder.append(recording)
    dest = OracleDestination(settings, options, log, session=lambda _: recording)
    counter = _Counter()
    engine = LoadEngine(layout, dest, load, log, counter)
    report = engine.rehearse()
    units = counter.units
    segments = sum(sr.segments for sr in report.streams.values())
    rows = sum(sr.rows for sr in report.streams.values())
    stats = {"units": units, "segments": segments, "rows": rows}
    header = [
        f"-- spool-target plan for spool {layout.label}",
        f"-- destination: {dest.label}; schema: {dest.schema or '(the connecting user)'}",
        f"-- server: {describe_server(dest.features)}",
        f"-- load_method {load.write.value}, load_strategy {options.load_strategy}: "
        f"{units} transaction(s), {segments} segment(s), {rows} row(s) pending",
        *([f"-- object storage: {dest.cloud.describe()}"] if dest.cloud is not None else []),
        "-- :1, :2 ... are bind variables; their values come from the spool's Parquet segments.",
        "-- Blocks ending in / ignore only the error that means a DDL step was already done.",
        "",
    ]
    body = recording.lines
    if units == 0:
        body = [*body, "-- nothing to load: everything in this spool is in the ledger"]
    return "\n".join(header) + "\n" + "\n\n".join(body) + "\n", stats


class _Counter:
    """The engine's progress reporter, reduced to counting the transactions a plan holds."""

    def __init__(self) -> None:
        self.units = 0

    def begin(self, report: Any) -> None: ...

    def unit_loaded(self, stream: Any, unit: Any) -> None:
        self.units += 1

    def finish(self, report: Any) -> None: ...
