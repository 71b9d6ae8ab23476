"""``spool-target plan``: the SQL a load would run, as a script, without running it.

The load engine itself drives a ``PlanDestination``: an Oracle destination
whose statements are written down instead of executed. So the plan is made
by the same code as the load -- same reconciliation, same units, same SQL.

- ``plan`` connects, reads the data dictionary and the ledger (nothing is
  written) and plans against the tables as they are.
- ``plan --offline`` connects to nothing: it assumes empty schemas and an
  Oracle Database 19c server (``types.OFFLINE_FEATURES``: 128-byte names,
  MAX_STRING_SIZE=STANDARD, CLOB ``IS JSON`` for JSON, NUMBER(1) for
  booleans). SQL written for 19c also runs on 21c and 23ai; a newer server
  only makes ``load`` choose JSON / BOOLEAN columns. It needs no password.

Both read the local segment files (the widening of VARCHAR2 columns depends
on the data). The script: statements end with ``;``; DDL that may already
have been done is wrapped in a PL/SQL block (ending with ``/``) that ignores
only the error meaning "already done", as ``load`` does; ``:1``, ``:2``...
are bind variables whose values come from the segments, noted in comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ...config import Config
from ...errors import ConfigError
from ...logs import Log
from ..destination import Access, ColumnInfo, ColumnSpec, LoadUnit, SegmentStep
from .connect import ConnectSettings, settings_from
from .destination import OracleDestination, _UnitState
from .sql import Statement
from .types import OFFLINE_FEATURES
from .unit import Feed


@dataclass(frozen=True)
class Line:
    text: str  # a rendered statement or comment


class PlanDestination(OracleDestination):
    def __init__(self, settings: ConnectSettings, config: Any, log: Log | None, *, offline: bool):
        super().__init__(settings, config, log)
        self.offline = offline
        self.lines: list[str] = []
        self._pending: list[str] = []
        self.catalog: dict[str, dict[str, ColumnInfo]] = {}
        self.stats = {"units": 0, "segments": 0, "rows": 0}

    # ---- connection: offline means no server at all ---------------------------------
    def connect(self, access: Access = Access.READ_WRITE) -> None:
        if self.offline:
            self.set_features(OFFLINE_FEATURES, self.default_schema)
            return
        super().connect(Access.READ_ONLY)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return [] if self.offline else super()._query(sql, params)

    def read_ledger(self, spool_id: str) -> dict[str, Any]:
        self.access = Access.READ_WRITE  # no ledger yet is no error here: the plan creates it
        return super().read_ledger(spool_id)

    # ---- writes become script lines -------------------------------------------------
    def comment(self, text: str) -> None:
        """A comment for the next statement."""
        self._pending.append("\n".join(f"-- {t}" for t in text.splitlines()))

    def emit(self, text: str, *after: str) -> None:
        self.lines.append("\n".join([*self._pending, text, *(f"-- {a}" for a in after)]))
        self._pending = []

    def _execute(self, stmt: Statement, params: Sequence[Any] = ()) -> int | None:
        self.emit(render(stmt))
        return 0

    def _executemany(self, stmt: Statement, rows: list[tuple]) -> None:
        values = [f"  ({', '.join(_literal(v) for v in r)})" for r in rows]
        self.emit(render(Statement(stmt.sql, note=stmt.note)), f"executemany, {len(rows)} row(s) of binds:", *values)

    def _run_feed(self, feed: Feed, state: _UnitState) -> None:
        cols = ", ".join(b.name for b in feed.binds)
        text_keys = [b.name for b in feed.binds if b.name in feed.reject_keys and b.logical in ("string", "time", "json")]
        rejects = [f"rows whose key {', '.join(text_keys)} is '' are rejected first (Oracle stores '' as NULL)"] if text_keys else []
        if feed.direct is not None:
            self.emit(
                f"-- direct path load (Connection.direct_path_load; it commits by itself) of {feed.step.rows} row(s) "
                f"of {feed.step.item}\n--   into {feed.into} ({cols})", *rejects,
            )
        else:
            assert feed.stmt is not None
            self.emit(render(feed.stmt), f"executemany: {feed.step.rows} row(s) of {feed.step.item}", *rejects)
        state.read[feed.run] += feed.step.rows
        if feed.counted:
            state.inserted[feed.run] += feed.step.rows

    def _do(self, action: Any, state: _UnitState, unit: LoadUnit) -> None:
        super()._do(action, state, unit)
        run = getattr(action, "run", None)
        if run is not None and not isinstance(action, Feed):
            state.inserted[run] = state.read[run]  # nothing ran: assume the counts match

    def _commit(self) -> None:
        self.emit("COMMIT;")

    def _refuse_loaded(self, unit: LoadUnit) -> None:
        pass  # the engine planned from the ledger; a plan never races another loader

    def _rollback(self) -> None:
        pass

    # ---- a simulated catalog, so that later units see earlier DDL ---------------------
    def _raw_columns(self, table: Any) -> dict[str, ColumnInfo]:
        key = self.rules.key(str(table))
        if key not in self.catalog:
            self.catalog[key] = super()._raw_columns(table)
        return dict(self.catalog[key])

    def _note_column(self, table: Any, column: ColumnSpec) -> None:
        sql_type = self._column_ddl(table, column)[0]
        overridden = (self.rules.key(str(table)), column.name) in self.overrides()
        cols = self._raw_columns(table)
        cols[column.name] = ColumnInfo(column.name, sql_type, None if overridden else column.type)
        self.catalog[self.rules.key(str(table))] = cols

    def create_table(self, table: Any, columns: Sequence[ColumnSpec], keys: Sequence[str]) -> None:
        self.comment(f"table {table}: create it")
        super().create_table(table, columns, keys)
        self.catalog[self.rules.key(str(table))] = {}
        for c in columns:
            self._note_column(table, c)

    def add_column(self, table: Any, column: ColumnSpec) -> None:
        self.comment(f"table {table}: add column {column.name} ({column.type})")
        super().add_column(table, column)
        self._note_column(table, column)

    def widen_column(self, table: Any, column: ColumnSpec) -> None:
        self.comment(f"table {table}: widen column {column.name} to {self.sql_type(column)}")
        super().widen_column(table, column)
        self._note_column(table, column)

    def load(self, unit: LoadUnit, checkpoint: Any) -> None:
        segs = unit.segments
        rows = sum(s.rows for s in segs)
        acts = len(unit.steps) - len(segs)
        what = [f"{len(segs)} segment(s), {rows} row(s)"] if segs else []
        what += [f"{acts} ACTIVATE_VERSION"] if acts else []
        superseded = sum(1 for r in unit.ledger if r.kind == "superseded")
        what += [f"{superseded} item(s) of older runs recorded as superseded"] if superseded else []
        self.comment(
            f"stream {unit.stream!r} -> table {unit.table}: one transaction ({unit.write.value}, {', '.join(what)})"
            + "".join(f"\n  {s.item}" for s in unit.steps if isinstance(s, SegmentStep))
        )
        super().load(unit, checkpoint)
        self.stats["units"] += 1
        self.stats["segments"] += len(segs)
        self.stats["rows"] += rows

    def sweep(self, spool_id: str) -> list[str]:
        super().sweep(spool_id)
        return []  # nothing was dropped: do not report it


def render(stmt: Statement) -> str:
    """One statement as script text: ``;``, or a PL/SQL block with ``/`` when a repeat is harmless."""
    head = f"-- {stmt.note}\n" if stmt.note else ""
    binds = f"\n-- binds: {stmt.binds}" if stmt.binds and not stmt.done else ""
    if not stmt.done:
        return f"{head}{stmt.sql};{binds}"
    codes = ", ".join(stmt.done)
    cond = " AND ".join(f"SQLCODE != -{int(c.split('-')[1])}" for c in stmt.done)
    return (
        f"{head}BEGIN\n  EXECUTE IMMEDIATE q'[{stmt.sql}]';\nEXCEPTION\n  WHEN OTHERS THEN\n"
        f"    IF {cond} THEN RAISE; END IF;  -- {codes}: already done\nEND;\n/"
    )


def _literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def offline_settings(config: Config) -> ConnectSettings:
    """Enough to name things; no password, no address needed."""
    where = config.destination or config.dsn or (f"{config.host}:{config.port}/{config.service_name or config.sid}" if config.host else "")
    label = where if where.startswith("oracle") else f"oracle://{where or '(offline)'}"
    return ConnectSettings(user=config.user or "", label=label.split("?", 1)[0], target_schema=(config.target_schema or None))


def plan_script(
    config: Config, log: Log, *, offline: bool, destination: PlanDestination | None = None
) -> tuple[str, dict[str, int]]:
    """The plan as script text, and its totals (units, segments, rows). ``destination``: for tests."""
    from ...spool.layout import require_spool
    from ...spool.manifest import read_manifest, utc_now_iso
    from ..destination import DestinationKind, parse_destination
    from ..engine import LoadEngine, LoadOptions, RunMode
    from ..report import LoadReport, new_run_id

    layout = require_spool(config.spool_dir)
    spec = parse_destination(config.destination, layout.root, oracle_configured=True)
    if spec.kind is not DestinationKind.ORACLE:
        raise ConfigError(f"plan is for Oracle destinations, not {spec.describe()}", hint="oracle://user@host:port/service")
    if destination is None:
        settings = offline_settings(config) if offline else settings_from(spec, config)
        if settings.password:
            log.redact(settings.password, settings.wallet_password)
        destination = PlanDestination(settings, config, log, offline=offline)
    dest = destination
    engine = LoadEngine(layout, dest, config, LoadOptions.from_config(config, RunMode.FRESH), log, _Quiet())
    # The start of LoadEngine.run(), minus the run file: a plan changes nothing in the spool.
    engine.manifest = read_manifest(layout)
    engine.report = LoadReport(run_id=new_run_id(), spool=str(layout.root), destination=dest.label, mode="plan",
                               started_at=utc_now_iso())
    engine._previous = None
    try:
        engine._with_retries(engine._load_all)
    finally:
        dest.close()
    f = dest.features
    server = (
        f"assumed Oracle Database 19c (offline): {f.max_identifier_length}-byte names, MAX_STRING_SIZE={f.max_string_size}, "
        "CLOB IS JSON for JSON, NUMBER(1) for booleans"
        if offline
        else f"{f.banner or 'Oracle Database ' + f.version_text}; JSON type: {'yes' if f.json_type else 'no'}, "
        f"BOOLEAN: {'yes' if f.boolean_type else 'no'}, MAX_STRING_SIZE={f.max_string_size}"
    )
    header = [
        f"-- spool-target plan for spool {layout.root}",
        f"-- destination: {dest.label}; schema: {dest.schema or '(the connecting user)'}",
        f"-- server: {server}",
        f"-- load_method {config.load_method}, load_strategy {config.load_strategy}: "
        f"{dest.stats['units']} transaction(s), {dest.stats['segments']} segment(s), {dest.stats['rows']} row(s) pending",
        "-- :1, :2 ... are bind variables; their values come from the spool's Parquet segments.",
        "-- Blocks ending in / ignore only the error that means a DDL step was already done.",
        "",
    ]
    body = dest.lines or ["-- nothing to load: everything in this spool is in the ledger"]
    return "\n".join(header) + "\n" + "\n\n".join(body) + "\n", dict(dest.stats)


class _Quiet:
    def begin(self, report: Any) -> None: ...

    def unit_loaded(self, stream: Any, unit: Any) -> None: ...

    def finish(self, report: Any) -> None: ...
