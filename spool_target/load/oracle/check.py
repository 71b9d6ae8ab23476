"""``spool-target check``: can this configuration load into this Oracle database?

Connects with the load's retry policy (``max_wait_seconds`` / ``--max-wait``,
exit 75 when the server stays unreachable, exit 6 on a permanent error such
as a wrong password) and reports the server, the features the loader will
use, the target schema, the privileges and quota a load needs, the ledger,
and what the spool has pending; with ``load_strategy: object-storage``
also whether DBMS_CLOUD, the credential and the bucket are usable.
Something needed but missing makes the report fail (exit 6) with the
statement a DBA can run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ...errors import ConfigError, DestinationUnavailable, TransientDestinationError
from ...logs import Log
from ...render import text_table
from ...spool.layout import SpoolLayout
from ...spool.manifest import read_manifest
from ..destination import Access, DestinationKind, DestinationMissing, DestinationSpec
from ..options import OracleOptions
from ..retry import Backoff, guarded, with_retries
from . import cloud
from .connect import settings_from
from .destination import OracleDestination

OWN_SCHEMA_PRIVS = ("CREATE TABLE",)
OTHER_SCHEMA_PRIVS = (
    "CREATE ANY TABLE", "ALTER ANY TABLE", "DROP ANY TABLE",
    "SELECT ANY TABLE", "INSERT ANY TABLE", "UPDATE ANY TABLE", "DELETE ANY TABLE",
)


@dataclass
class CheckItem:
    name: str
    value: str
    ok: bool | None = None  # None: information only
    advice: str | None = None


@dataclass
class CheckReport:
    destination: str
    items: list[CheckItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(i.ok is not False for i in self.items)

    def add(self, name: str, value: Any, ok: bool | None = None, advice: str | None = None) -> None:
        self.items.append(CheckItem(name, str(value), ok, advice))

    def to_json(self) -> dict[str, Any]:
        return {"destination": self.destination, "ok": self.ok, "items": [vars(i) for i in self.items]}

    def render(self) -> str:
        rows = [(i.name, i.value, {True: "ok", False: "MISSING", None: ""}[i.ok]) for i in self.items]
        lines = [f"destination {self.destination}", "", *text_table(("check", "value", "status"), rows, numeric=set())]
        advice = [f"- {i.name}: {i.advice}" for i in self.items if i.ok is False and i.advice]
        if advice:
            lines += ["", "to fix:", *advice]
        return "\n".join(lines)


def connect_with_retries(dest: OracleDestination, max_wait: float, log: Log, sleep: Callable[[float], None] = time.sleep) -> None:
    """The load's policy: transient errors back off until ``max_wait``; permanent ones fail at once."""
    backoff = Backoff(max_wait)

    def gave_up(err: TransientDestinationError) -> DestinationUnavailable:
        return DestinationUnavailable(
            f"{dest.label} is still unavailable after {backoff.waited:.0f}s of retries ({err.detail})",
            hint="check that the database and its listener are up and reachable; --max-wait sets how long to retry",
        )

    def retrying(err: TransientDestinationError, delay: float) -> None:
        log.warning(f"destination unavailable, retrying in {delay:.1f}s: {err.detail}", attempt=backoff.attempts)

    what = f"connecting to {dest.label}"
    with_retries(lambda: guarded(dest, what, lambda: dest.connect(Access.READ_ONLY)), backoff,
                 gave_up=gave_up, retrying=retrying, sleep=sleep)


def run_check(spec: DestinationSpec, options: OracleOptions, layout: SpoolLayout, log: Log, *, max_wait: float) -> CheckReport:
    """``spec``: the configured destination, Oracle if nothing is (``parse_destination(...,
    oracle_configured=True)``); ``layout``: the spool whose pending work to report (it may not exist yet)."""
    if spec.kind is not DestinationKind.ORACLE:
        raise ConfigError(f"check is for Oracle destinations, not {spec.describe()}", hint="oracle://user@host:port/service")
    settings = settings_from(spec, options)
    log.redact(settings.password, settings.wallet_password)
    dest = OracleDestination(settings, options, log)
    connect_with_retries(dest, max_wait, log)
    try:
        return _inspect(dest, layout)
    finally:
        dest.close()


def _inspect(dest: OracleDestination, layout: SpoolLayout) -> CheckReport:
    f = dest.features
    report = CheckReport(dest.label)
    report.add("server", f.banner or f"Oracle Database {f.version_text}")
    report.add("version", f.version_text)
    report.add("driver", "python-oracledb thick mode" if dest.settings.thick_mode else "python-oracledb thin mode")
    report.add("COMPATIBLE", f.compatible or "unknown")
    report.add("JSON columns", "JSON" if f.json_type else "CLOB CHECK (... IS JSON)"
               + ("" if f.json_type or f.json_scalars else "; a column given JSON scalars becomes plain CLOB"))
    report.add("boolean columns", "BOOLEAN" if f.boolean_type else "NUMBER(1) CHECK (... IN (0, 1))")
    limit_ok = f.max_identifier_length >= dest.rules.max_bytes
    report.add(
        "max identifier length", f"{f.max_identifier_length} bytes (names made for {dest.rules.max_bytes})", limit_ok,
        None if limit_ok else f"set max_identifier_length: {f.max_identifier_length}",
    )
    report.add("MAX_STRING_SIZE", f"{f.max_string_size} (VARCHAR2 up to {f.max_string_bytes} bytes, then CLOB)")
    if f.charset:
        report.add("database character set", f.charset)
    user = dest.db.query("SELECT USER FROM DUAL")[0][0]
    schema = dest.schema or user
    report.add("user", user)
    own = schema == user
    if not own:
        exists = dest.db.query("SELECT COUNT(*) FROM ALL_USERS WHERE USERNAME = :1", [schema])[0][0]
        report.add("target schema", schema, bool(exists), None if exists else f"user {schema} does not exist (target_schema)")
    else:
        report.add("target schema", f"{schema} (the user's own)")
    privs = {r[0] for r in dest.db.query("SELECT PRIVILEGE FROM SESSION_PRIVS")}
    for priv in OWN_SCHEMA_PRIVS if own else OTHER_SCHEMA_PRIVS:
        report.add(f"privilege {priv}", "granted" if priv in privs else "not granted", priv in privs,
                   None if priv in privs else f"GRANT {priv} TO {user}")
    if own:
        _quota(dest, report, user, privs)
    else:
        report.add("tablespace quota", f"not visible for {schema} from {user}; a DBA can check DBA_TS_QUOTAS")
    if dest.cloud is not None:  # load_strategy object-storage: DBMS_CLOUD, the credential, the bucket
        cloud.check(dest.db, dest.cloud, user, report)
    ledger_exists = dest._table_exists(dest.schema, dest.rules.ledger_table)
    report.add("ledger table", f"{schema}.{dest.rules.ledger_table} " + ("exists" if ledger_exists else "(created by the first load)"))
    _pending(dest, layout, report)
    return report


def _quota(dest: OracleDestination, report: CheckReport, user: str, privs: set[str]) -> None:
    tablespace = dest.db.query("SELECT DEFAULT_TABLESPACE FROM USER_USERS")[0][0]
    if "UNLIMITED TABLESPACE" in privs:
        report.add("tablespace quota", f"{tablespace}: unlimited (UNLIMITED TABLESPACE)", True)
        return
    rows = dest.db.query("SELECT MAX_BYTES, BYTES FROM USER_TS_QUOTAS WHERE TABLESPACE_NAME = :1", [tablespace])
    if not rows or rows[0][0] == 0:
        report.add("tablespace quota", f"{tablespace}: none", False, f"ALTER USER {user} QUOTA UNLIMITED ON {tablespace}")
        return
    max_bytes, used = rows[0]
    if max_bytes == -1:
        report.add("tablespace quota", f"{tablespace}: unlimited", True)
    else:
        free = max_bytes - used
        report.add("tablespace quota", f"{tablespace}: {free / 2**20:,.0f} MiB free of {max_bytes / 2**20:,.0f} MiB",
                   free > 0, None if free > 0 else f"ALTER USER {user} QUOTA UNLIMITED ON {tablespace}")


def _pending(dest: OracleDestination, layout: SpoolLayout, report: CheckReport) -> None:
    if not layout.exists():
        report.add("spool", f"{layout.label}: no spool yet (nothing pending)")
        return
    manifest = read_manifest(layout)
    try:
        ledger = dest.read_ledger(manifest.spool_id)
    except DestinationMissing:
        ledger = {}  # never loaded into: everything is pending
    segments = [s for s in manifest.segments() if s.item not in ledger]
    streams = {s.stream for s in segments}
    report.add(
        "pending in the spool",
        f"{len(segments)} segment(s), {sum(s.rows for s in segments):,} row(s) of {len(streams)} stream(s) "
        f"({len(ledger)} item(s) already in the ledger)",
    )
