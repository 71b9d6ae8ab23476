"""DuckDB views over a spool, for people: `spool-target sql` and `spool-target inspect`.

Every stream is a view under its own name that reads exactly the stream's
committed, unpruned segments -- an explicit list taken from the manifest,
never a glob, so a file being written, quarantined or pruned is never seen
(I2) -- with their schemas unified by column name. Beside them, in the
schema ``spool`` (and under the same names in ``main`` when no stream takes
them):

- ``manifest``  every committed manifest entry, with the common fields as
  columns and the whole entry as JSON (``entry``);
- ``segments``  one row per segment: stream, path, rows, bytes, schema
  version (1, 2, ... per stream), created_at, and ``state``: ``pending`` or
  ``loaded`` (from the configured destination's ledger, when it could be
  read), ``pruned``, or ``unknown``;
- ``rejects``   every rejected record with its reason, ``state`` (``open``
  or ``replayed``) and ``latest_reason`` (what the last replay said);
- ``ledger`` and ``ledger_source``: the ledger as read, and from where.

The manifest and rejects views read their files on every query (the same
way the Python side does: only complete lines count), so they stay current;
the list of segment files is fixed when the views are made, so a database
written by ``inspect`` is refreshed by running ``inspect`` again.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import duckdb
import pyarrow as pa

from ..errors import ConfigError, SpoolError
from ..logs import Log
from ..schema import StreamSchema
from ..sqltext import sql_ident, sql_literal
from ..spool.layout import SpoolLayout
from ..spool.manifest import Manifest, read_manifest, utc_now_iso
from ..load.duckdb_destination import SQL_TYPES as DUCKDB_TYPES
from ..spool.rejects import reject_files, resolved_path

if TYPE_CHECKING:
    from ..load.destination import DestinationChoice
    from ..load.ledger import LedgerSnapshot

SPOOL_SCHEMA = "spool"
SPOOL_VIEWS = ("manifest", "segments", "rejects", "ledger", "ledger_source")
INSPECT_MARKER = "inspect_info"  # a table only inspect databases have


@dataclass
class ViewSet:
    statements: list[str]
    stream_views: dict[str, str]  # stream -> view name (in main)
    spool_views: dict[str, str]  # "segments" -> "segments", or "spool.segments" when a stream took the name
    notes: list[str] = field(default_factory=list)


def _lines_sql(files_sql: str, *, with_file: bool) -> str:
    """Complete lines of JSON-lines files, numbered from 1 per file (torn tails excluded)."""
    cols = "filename, " if with_file else ""
    return (
        f"SELECT {cols}generate_subscripts(parts, 1) AS row, unnest(parts) AS text "
        f"FROM (SELECT filename, string_split(content, chr(10))[:-2] AS parts FROM read_text({files_sql}))"
    )


def _json_rows(lines_sql: str) -> str:
    return f"SELECT *, CASE WHEN json_valid(text) THEN text::JSON END AS j FROM ({lines_sql}) WHERE trim(text) <> ''"


def manifest_view_sql(layout: SpoolLayout) -> str:
    root = layout.root.resolve()
    return f"""CREATE OR REPLACE VIEW {SPOOL_SCHEMA}.manifest AS
SELECT (j->>'n')::BIGINT AS n, j->>'kind' AS kind, j->>'stream' AS stream, j->>'path' AS path,
  TRY_CAST(j->>'rows' AS BIGINT) AS rows, TRY_CAST(j->>'bytes' AS BIGINT) AS bytes, j->>'sha256' AS sha256,
  j->>'schema_id' AS schema_id, TRY_CAST(j->>'first_sequence' AS BIGINT) AS first_sequence,
  TRY_CAST(j->>'last_sequence' AS BIGINT) AS last_sequence, TRY_CAST(j->>'first_line' AS BIGINT) AS first_line,
  TRY_CAST(j->>'last_line' AS BIGINT) AS last_line, TRY_CAST(j->>'rejected' AS BIGINT) AS rejected,
  TRY_CAST(j->>'version' AS BIGINT) AS version, TRY_CAST(j->>'created_at' AS TIMESTAMPTZ) AS created_at,
  j->>'run_id' AS run_id, j AS entry
FROM ({_json_rows(_lines_sql(sql_literal(str(root / 'manifest.jsonl')), with_file=False))})
WHERE j IS NOT NULL"""


def segments_view_sql(layout: SpoolLayout) -> str:
    root = str(layout.root.resolve()) + "/"
    s = SPOOL_SCHEMA
    return f"""CREATE OR REPLACE VIEW {s}.segments AS
WITH versions AS (
  SELECT stream, schema_id, row_number() OVER (PARTITION BY stream ORDER BY n) AS schema_version
  FROM {s}.manifest WHERE kind = 'schema'),
pruned AS (SELECT DISTINCT path FROM {s}.manifest WHERE kind = 'pruned')
SELECT m.n, m.stream, m.path, {sql_literal(root)} || m.path AS file, m.rows, m.bytes, m.schema_id,
  v.schema_version, m.first_sequence, m.last_sequence, m.first_line, m.last_line, m.rejected, m.created_at, m.run_id,
  CASE WHEN p.path IS NOT NULL THEN 'pruned'
       WHEN l.kind = 'superseded' THEN 'superseded'
       WHEN l.item IS NOT NULL THEN 'loaded'
       WHEN src.state IN ('reachable', 'not created') THEN 'pending'
       ELSE 'unknown' END AS state,
  l.loaded_at
FROM {s}.manifest m
LEFT JOIN versions v ON v.stream = m.stream AND v.schema_id = m.schema_id
LEFT JOIN pruned p ON p.path = m.path
LEFT JOIN {s}.ledger l ON l.item = m.path AND l.kind IN ('segment', 'superseded')
CROSS JOIN {s}.ledger_source src
WHERE m.kind = 'segment'"""


_REJECT_COLUMNS = (
    "id VARCHAR, stream VARCHAR, line BIGINT, reason VARCHAR, raw VARCHAR, run_id VARCHAR, "
    "rejected_at TIMESTAMPTZ, file VARCHAR, row BIGINT, state VARCHAR, latest_reason VARCHAR, "
    "replay_run_id VARCHAR, resolved_at TIMESTAMPTZ"
)


def rejects_view_sql(layout: SpoolLayout) -> str:
    files = reject_files(layout)
    if not files:
        empty = ", ".join(f"NULL::{t} AS {n}" for n, t in (c.split(" ") for c in _REJECT_COLUMNS.split(", ")))
        return f"CREATE OR REPLACE VIEW {SPOOL_SCHEMA}.rejects AS SELECT {empty} WHERE false"
    file_list = "[" + ", ".join(sql_literal(str(p.resolve())) for p in files) + "]"
    journal = resolved_path(layout)
    if journal.exists():
        # First "replayed" entry wins for good; otherwise the latest entry (as spool/rejects.py reads it).
        resolved = f"""SELECT j->>'id' AS id,
    arg_max(j, CASE WHEN j->>'outcome' = 'replayed' THEN 1000000000000 - row ELSE row END) AS r
  FROM ({_json_rows(_lines_sql(sql_literal(str(journal.resolve())), with_file=False))}) WHERE j IS NOT NULL GROUP BY 1"""
    else:
        resolved = "SELECT NULL::VARCHAR AS id, NULL::JSON AS r WHERE false"
    rel = "regexp_extract(filename, '([^/]+/[^/]+)$', 1)"
    return f"""CREATE OR REPLACE VIEW {SPOOL_SCHEMA}.rejects AS
WITH raw AS ({_json_rows(_lines_sql(file_list, with_file=True))}),
res AS ({resolved})
SELECT {rel} || '#' || raw.row AS id, j->>'stream' AS stream, TRY_CAST(j->>'line' AS BIGINT) AS line,
  j->>'reason' AS reason, j->>'raw' AS raw, j->>'run_id' AS run_id,
  TRY_CAST(j->>'rejected_at' AS TIMESTAMPTZ) AS rejected_at, 'rejects/' || {rel} AS file, raw.row AS row,
  CASE WHEN res.r->>'outcome' = 'replayed' THEN 'replayed' ELSE 'open' END AS state,
  CASE WHEN res.r->>'outcome' = 'still_rejected' AND res.r->>'reason' <> '' THEN res.r->>'reason'
       ELSE j->>'reason' END AS latest_reason,
  res.r->>'replay_run_id' AS replay_run_id, TRY_CAST(res.r->>'at' AS TIMESTAMPTZ) AS resolved_at
FROM raw LEFT JOIN res ON res.id = {rel} || '#' || raw.row
WHERE raw.j IS NOT NULL"""


def _empty_stream_sql(schema: StreamSchema) -> str:
    cols = ", ".join(f"NULL::{DUCKDB_TYPES[c.type]} AS {sql_ident(c.name)}" for c in schema.columns)
    return f"SELECT {cols} WHERE false"


def build_views(layout: SpoolLayout, manifest: Manifest) -> ViewSet:
    s = SPOOL_SCHEMA
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        manifest_view_sql(layout),
        segments_view_sql(layout),
        rejects_view_sql(layout),
    ]
    notes: list[str] = []
    pruned = manifest.pruned
    root = layout.root.resolve()
    taken: dict[str, str] = {}  # lower-case name -> stream (DuckDB names ignore case)
    stream_views: dict[str, str] = {}
    for stream in manifest.streams():
        latest = manifest.latest_schema(stream)
        if latest is None:
            continue  # only rejects so far: nothing committed to show
        name, k = stream, 2
        while name.lower() in taken:
            name, k = f"{stream}_{k}", k + 1
        if name != stream:
            notes.append(f"stream {stream!r} is the view {name!r} ({taken[stream.lower()]!r} has its name, ignoring case)")
        taken[name.lower()] = stream
        stream_views[stream] = name
        files = [str(root / seg.path) for seg in manifest.segments(stream) if seg.path not in pruned]
        if files:
            source = "SELECT * FROM read_parquet([" + ", ".join(map(sql_literal, files)) + "], union_by_name = true)"
        else:
            source = _empty_stream_sql(latest)  # everything pruned: keep the columns
        statements.append(f"CREATE OR REPLACE VIEW main.{sql_ident(name)} AS {source}")
    spool_views: dict[str, str] = {}
    for view in SPOOL_VIEWS:
        if view.lower() in taken:
            spool_views[view] = f"{s}.{view}"
            notes.append(f"the spool's {view} view is {s}.{view} (a stream is named {taken[view.lower()]!r})")
        else:
            spool_views[view] = view
            statements.append(f"CREATE OR REPLACE VIEW main.{view} AS SELECT * FROM {s}.{view}")
    return ViewSet(statements, stream_views, spool_views, notes)


def _ledger_tables(con: duckdb.DuckDBPyConnection, ledger: "LedgerSnapshot | None") -> None:
    """``spool.ledger`` (item, kind, stream, table_name, rows, loaded_at) and ``spool.ledger_source``."""
    s = SPOOL_SCHEMA
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    con.execute(
        f"CREATE OR REPLACE TABLE {s}.ledger (item VARCHAR, kind VARCHAR, stream VARCHAR, table_name VARCHAR, "
        "rows BIGINT, loaded_at TIMESTAMPTZ)"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {s}.ledger_source (destination VARCHAR, state VARCHAR, error VARCHAR, read_at TIMESTAMPTZ)"
    )
    if ledger is None:
        con.execute(f"INSERT INTO {s}.ledger_source VALUES (NULL, 'not read', NULL, NULL)")
        return
    entries = list(ledger.entries.values())
    if entries:
        table = pa.table(
            {
                "item": [e.item for e in entries],
                "kind": [e.kind for e in entries],
                "stream": [e.stream for e in entries],
                "table_name": [e.table for e in entries],
                "rows": pa.array([e.rows for e in entries], pa.int64()),
                "loaded_at": pa.array([e.loaded_at for e in entries], pa.timestamp("us", tz="UTC")),
            }
        )
        con.register("_ledger_rows", table)
        con.execute(f"INSERT INTO {s}.ledger SELECT * FROM _ledger_rows")
        con.unregister("_ledger_rows")
    con.execute(
        f"INSERT INTO {s}.ledger_source VALUES (?, ?, ?, TRY_CAST(? AS TIMESTAMPTZ))",
        [ledger.destination, ledger.state.value, ledger.error, ledger.read_at],
    )


def _read_ledger(destination: "DestinationChoice | None", manifest: Manifest, log: Log) -> "LedgerSnapshot | None":
    if destination is None:
        return None
    from ..load.ledger import read_ledger_snapshot  # opens the destination read-only

    snapshot = read_ledger_snapshot(destination, manifest.spool_id, log)
    if not snapshot.known:
        log.warning(f"loaded/pending unknown: cannot read the ledger of {snapshot.destination} ({snapshot.error})")
    return snapshot


def connect_spool(
    layout: SpoolLayout, destination: "DestinationChoice | None", log: Log, *, database: str = ":memory:"
) -> tuple[duckdb.DuckDBPyConnection, ViewSet]:
    """A DuckDB connection holding the spool's views (see the module docstring);
    ``destination``: whose ledger says what is loaded (None: offline, not read)."""
    manifest = read_manifest(layout)
    ledger = _read_ledger(destination, manifest, log)
    views = build_views(layout, manifest)
    con = duckdb.connect(database)
    try:
        con.execute("SET TimeZone = 'UTC'")
        _ledger_tables(con, ledger)
        for statement in views.statements:
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con, views


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    batches: Iterator[pa.RecordBatch]


def run_query(con: duckdb.DuckDBPyConnection, query: str, batch_rows: int = 10_000) -> QueryResult | None:
    """Run the user's SQL; None for a statement without a result (CREATE, SET...)."""
    try:
        rel = con.sql(query)
    except duckdb.Error as err:
        raise SpoolError(
            f"query failed: {str(err).strip()}",
            hint="the views are listed by `spool-target sql \"SHOW ALL TABLES\"`; stream names with dots, dashes "
            'or capitals need double quotes: SELECT * FROM "public-users"',
        ) from None
    if rel is None:
        return None
    return QueryResult(list(rel.columns), [str(t) for t in rel.types], iter(rel.to_arrow_reader(batch_rows)))


# --- inspect: a small database file with the views ---------------------------
@dataclass
class InspectResult:
    database: Path
    views: ViewSet


def default_inspect_db(layout: SpoolLayout) -> Path:
    return layout.root / "inspect.duckdb"


def write_inspect_db(
    layout: SpoolLayout, destination: "DestinationChoice | None", log: Log, database: Path | None = None
) -> InspectResult:
    """Write a DuckDB file holding the spool's views (absolute paths, no data
    copied; only the ledger, as read now, is stored as a small table);
    ``destination`` as for ``connect_spool``."""
    target = Path(database) if database else default_inspect_db(layout)
    if target.exists():
        _check_is_inspect_db(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        leftover.unlink(missing_ok=True)
    con, views = connect_spool(layout, destination, log, database=str(tmp))
    try:
        con.execute(
            f"CREATE TABLE {SPOOL_SCHEMA}.{INSPECT_MARKER} AS SELECT ? AS spool, ? AS spool_id, ? AS written_at",
            [str(layout.root.resolve()), read_manifest(layout).spool_id, utc_now_iso()],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, target)
    return InspectResult(target, views)


def _check_is_inspect_db(path: Path) -> None:
    """Never overwrite a database that ``inspect`` did not write (the destination, say)."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as err:
        raise ConfigError(f"--db {path} exists and cannot be opened as DuckDB ({err}); choose another --db") from None
    try:
        found = con.sql(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", params=[SPOOL_SCHEMA, INSPECT_MARKER]
        ).fetchall()[0][0]
    finally:
        con.close()
    if not found:
        raise ConfigError(
            f"--db {path} is not a database written by `spool-target inspect`; it is left alone",
            hint="choose another --db (the default is <spool>/inspect.duckdb)",
        )


# --- disk space, for status ---------------------------------------------------
@dataclass
class StreamUsage:
    stream: str
    segments_on_disk: int = 0
    bytes_on_disk: int = 0  # committed, unpruned segments (from the manifest)
    segments_pruned: int = 0
    rejects_bytes: int = 0


@dataclass
class SpoolUsage:
    streams: dict[str, StreamUsage]
    total_bytes: int  # everything under the spool directory (segments, rejects, the embedded DuckDB, runs...)
    free_bytes: int | None  # on the spool's filesystem (None: the spool is in a bucket)


def spool_usage(layout: SpoolLayout, manifest: Manifest | None = None) -> SpoolUsage:
    """Spool size per stream (for `status`), the spool's total and the free space left."""
    manifest = manifest or read_manifest(layout)
    pruned = manifest.pruned
    streams: dict[str, StreamUsage] = {}
    for seg in manifest.segments():
        u = streams.setdefault(seg.stream, StreamUsage(seg.stream))
        if seg.path in pruned:
            u.segments_pruned += 1
        else:
            u.segments_on_disk += 1
            u.bytes_on_disk += seg.bytes
    for stream in manifest.streams():
        u = streams.setdefault(stream, StreamUsage(stream))
        u.rejects_bytes = sum(_size(p) for p in reject_files(layout, stream))
    if layout.replica_of is not None:
        # A bucket spool: what the bucket holds (live segments, rejects, the manifest);
        # a replica may hold none of the segments, and a bucket has no free space to run out of.
        total = sum(u.bytes_on_disk + u.rejects_bytes for u in streams.values()) + _size(layout.manifest)
        return SpoolUsage(streams, total, None)
    total = 0
    for dirpath, _, files in os.walk(layout.root):
        total += sum(_size(Path(dirpath) / f) for f in files)
    return SpoolUsage(streams, total, shutil.disk_usage(layout.root).free)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # removed while we looked (a prune, a finished work file)


def render_inspect(result: InspectResult) -> str:
    db = result.database.resolve()
    names = ", ".join(sql_ident(v) if not v.isidentifier() else v for v in result.views.stream_views.values()) or "(none yet)"
    lines = [
        f"wrote {db}: views over the spool (absolute paths, no data copied)",
        f"  streams: {names}",
        f"  spool:   {', '.join(result.views.spool_views.values())}",
        *(f"  note: {n}" for n in result.views.notes),
        "open it with the duckdb CLI:",
        f"  duckdb -readonly {db}",
        "  D SELECT stream, state, count(*), sum(rows) FROM segments GROUP BY ALL;",
        "or from Python:",
        f"  import duckdb; con = duckdb.connect({str(db)!r}, read_only=True)",
        "  print(con.sql('SELECT * FROM segments'))",
        "The views list today's segment files: run `spool-target inspect` again after new commits or a prune.",
    ]
    return "\n".join(lines)
