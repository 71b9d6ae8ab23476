"""Typing records in bulk: buffered RECORD lines -> an Arrow table plus rejects.

The ingest loop parses each line once (to route it) and appends the message,
as received, to a per-stream work file. At flush time DuckDB reads that file
in one vectorised, multi-threaded pass and applies the rules of
``schema.py`` with SQL. Rows come back in file order (insertion order is
preserved), so row ``i`` is the work file's line ``i``. Nothing is coerced
silently: every value that does not fit its column yields a reason, and the
row goes to rejects instead of the segment.

Values are pulled out of each record with JSON Pointer paths (they can name
any property, even ``""`` or ``a/b``), and kept as raw JSON until typed, so
strings keep every byte (``\\u0000`` included) and objects keep their text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import (
    METADATA_NAMES,
    DELETED_AT,
    EXTRA_COLUMN,
    EXTRACTED_AT,
    RECEIVED_AT,
    SEQUENCE,
    TABLE_VERSION,
    StreamSchema,
)

# DuckDB's JSON reader allocates buffers of ``maximum_object_size``, so it is
# sized per work file from its longest line, never less than its default.
MIN_OBJECT_SIZE = 16 << 20


def object_size_for(longest_line: int) -> int:
    size = MIN_OBJECT_SIZE
    while size < longest_line + 64:
        size *= 2
    return size


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def json_pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _typed(ltype: str, v: str, t: str, s: str) -> tuple[str, str]:
    """SQL for (typed value, failure test) of one property.

    ``v`` is its raw JSON text (NULL when the property is absent), ``t`` its
    ``json_type`` ('NULL' for JSON null) and ``s`` its text as
    ``json_extract_string`` gives it (strings unescaped, anything else as
    JSON text). The failure test is true when a value is present but does
    not convert.
    """
    if ltype == "integer":
        value = (
            f"CASE WHEN {t} IN ('BIGINT', 'UBIGINT') THEN TRY_CAST({v} AS BIGINT) "
            f"WHEN {t} = 'DOUBLE' AND TRY_CAST({v} AS DOUBLE) = trunc(TRY_CAST({v} AS DOUBLE)) "
            f"THEN TRY_CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT) END"
        )
    elif ltype == "number":
        value = f"CASE WHEN {t} IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST({v} AS DOUBLE) END"
    elif ltype == "boolean":
        value = f"CASE WHEN {t} = 'BOOLEAN' THEN {v} = 'true' END"
    elif ltype == "timestamp":
        value = f"CASE WHEN {t} = 'VARCHAR' THEN TRY_CAST({s} AS TIMESTAMPTZ) END"
    elif ltype == "date":
        # Taps often send a date as a full date-time; its date part is kept.
        value = (
            f"CASE WHEN {t} = 'VARCHAR' THEN coalesce(TRY_CAST({s} AS DATE), "
            f"CAST(TRY_CAST({s} AS TIMESTAMPTZ) AS DATE)) END"
        )
    elif ltype == "time":
        value = f"CASE WHEN {t} = 'VARCHAR' AND TRY_CAST({s} AS TIME) IS NOT NULL THEN {s} END"
    elif ltype == "string":
        value = s
    elif ltype == "json":
        value = f"CAST({v} AS VARCHAR)"
    else:  # pragma: no cover - the registry in schema.py is closed
        raise ValueError(f"unknown logical type {ltype}")
    present = f"({t} <> 'NULL')"
    return f"CASE WHEN {present} THEN {value} END", f"({present} AND ({value}) IS NULL)"


_EXPECTED = {
    "integer": "an integer that fits in 64 bits",
    "number": "a number",
    "boolean": "true or false",
    "timestamp": "an ISO 8601 date-time string",
    "date": "an ISO 8601 date string",
    "time": "an ISO 8601 time string",
}


@dataclass(frozen=True)
class ConversionQuery:
    sql: str
    output_columns: tuple[str, ...]  # the segment's columns except _sdc_sequence


# Logical types that DuckDB's JSON reader can type itself without losing
# anything: it refuses (errors) rather than bends a bad timestamp or date,
# and renders non-strings as JSON text for a string column, as our rules say.
# Integers, numbers and booleans are not here: the reader would round 1.5
# into an integer or read 1 as true, so they are always checked in SQL.
_READER_TYPES = {"string": "VARCHAR", "timestamp": "TIMESTAMPTZ", "date": "DATE", "json": "JSON"}


def _read_json(work_file: Path, longest_line: int, record_type: str) -> str:
    return (
        f"read_json({sql_literal(str(work_file))}, format = 'newline_delimited', "
        f"maximum_object_size = {object_size_for(longest_line)}, "
        f"columns = {{record: '{record_type}', time_extracted: 'JSON', version: 'JSON'}})"
    )


def _assemble(
    schema: StreamSchema,
    src: str,
    parts: list[str],
    values: list[tuple[str, str, str, str, str]],
    keyed: dict[str, str],
) -> ConversionQuery:
    """Shared tail of both queries.

    ``src`` selects ``te`` (time_extracted) and ``ver`` (version) plus what
    ``parts`` reads per value; ``values`` holds (column, logical type, raw
    SQL, json_type SQL, text SQL) for every value pulled from the records,
    in ``_pulled_names`` order. ``keyed``: key column -> SQL that is true
    when the key is missing or null.
    """
    parts = parts + ["te, json_type(te) AS tte, te ->> '$' AS ste, ver, json_type(ver) AS tver, CAST(ver AS VARCHAR) AS sver"]
    n = len(schema.property_columns)
    values = values[:n] + [
        (EXTRACTED_AT, "timestamp", "te", "tte", "ste"),
        (TABLE_VERSION, "integer", "ver", "tver", "sver"),
    ] + values[n:]
    source_sql = f"WITH src AS ({src}), parts AS (SELECT {', '.join(parts)} FROM src)"
    selects: list[str] = []
    reasons: list[str] = []
    for name, expr in keyed.items():
        reasons.append(f"CASE WHEN {expr} THEN {sql_literal(f'key property {name!r} is missing or null')} END")
    labels = {EXTRACTED_AT: "time_extracted", TABLE_VERSION: "version"}
    for name, ltype, v, t, s in values:
        if t == "":  # typed by the reader already
            selects.append(f"{v} AS {sql_ident(name)}")
        else:
            value, failed = _typed(ltype, v, t, s)
            selects.append(f"{value} AS {sql_ident(name)}")
            if ltype in _EXPECTED:
                label = labels.get(name, f"property {name!r}" if name not in METADATA_NAMES else name)
                reasons.append(
                    f"CASE WHEN {failed} THEN {sql_literal(f'{label}: expected {_EXPECTED[ltype]}, got ')}"
                    f" || left(CAST({v} AS VARCHAR), 200) END"
                )
        if name == EXTRACTED_AT:
            selects.append(f"$received_at::TIMESTAMPTZ AS {sql_ident(RECEIVED_AT)}")
    reason_sql = f"concat_ws('; ', {', '.join(reasons)})" if reasons else "''"
    sql = f"{source_sql}\nSELECT {reason_sql} AS reason, {', '.join(selects)} FROM parts"
    out = tuple(c.name for c in schema.columns if c.name != SEQUENCE)
    return ConversionQuery(sql, out)


def _pulled_names(schema: StreamSchema) -> list[tuple[str, str]]:
    """(name, logical type) of what is read out of each record."""
    return [(c.name, c.type) for c in schema.property_columns] + [(DELETED_AT, "timestamp"), (EXTRA_COLUMN, "json")]


def build_fast_query(schema: StreamSchema, work_file: Path, longest_line: int = 0) -> ConversionQuery | None:
    """The quick query: the reader types what it can (see _READER_TYPES).

    It fails as a whole on a bad timestamp or date; the caller then runs the
    strict query, which finds the row. None when property names differ only
    by case (DuckDB struct fields are case-insensitive).
    """
    pulled = _pulled_names(schema)
    if len({n.lower() for n, _ in pulled}) != len(pulled):
        return None
    fields = ", ".join(f"{sql_ident(n)} {_READER_TYPES.get(t, 'JSON')}" for n, t in pulled)
    parts = []
    values: list[tuple[str, str, str, str, str]] = []
    keyed: dict[str, str] = {}
    for i, (name, ltype) in enumerate(pulled, start=1):
        parts.append(f"r.{sql_ident(name)} AS v{i}")
        if ltype in _READER_TYPES:
            values.append((name, ltype, f"v{i}", "", ""))
            if name in schema.key_properties:
                keyed[name] = f"v{i} IS NULL"
        else:
            parts.append(f"json_type(r.{sql_ident(name)}) AS t{i}, r.{sql_ident(name)} ->> '$' AS s{i}")
            values.append((name, ltype, f"v{i}", f"t{i}", f"s{i}"))
            if name in schema.key_properties:
                keyed[name] = f"(t{i} IS NULL OR t{i} = 'NULL')"
    src = (
        f"SELECT record AS r, time_extracted AS te, version AS ver "
        f"FROM {_read_json(work_file, longest_line, f'STRUCT({fields})')}"
    )
    return _assemble(schema, src, parts, values, keyed)


def build_query(schema: StreamSchema, work_file: Path, longest_line: int = 0) -> ConversionQuery:
    """The strict query: every value typed in SQL, every failure explained."""
    pulled = _pulled_names(schema)
    path_list = ", ".join(sql_literal(json_pointer(name)) for name, _ in pulled)
    parts = []
    values: list[tuple[str, str, str, str, str]] = []
    keyed: dict[str, str] = {}
    for i, (name, ltype) in enumerate(pulled, start=1):
        parts.append(f"vals[{i}] AS v{i}, json_type(vals[{i}]) AS t{i}, strs[{i}] AS s{i}")
        values.append((name, ltype, f"v{i}", f"t{i}", f"s{i}"))
        if name in schema.key_properties:
            keyed[name] = f"(t{i} IS NULL OR t{i} = 'NULL')"
    src = (
        f"SELECT json_extract(record, [{path_list}]) AS vals, "
        f"json_extract_string(record, [{path_list}]) AS strs, time_extracted AS te, version AS ver "
        f"FROM {_read_json(work_file, longest_line, 'JSON')}"
    )
    return _assemble(schema, src, parts, values, keyed)


@dataclass
class Converted:
    table: pa.Table  # accepted rows in input order, the segment's columns (no sequence yet)
    reject_rows: list[int]  # row numbers in the work file
    reject_reasons: list[str]


class Converter:
    """Owns one in-process DuckDB used only as a JSON -> Arrow engine (I3)."""

    def __init__(self, threads: int = 2, memory_mb: int = 256):
        self.memory_mb = memory_mb
        self.con = duckdb.connect(config={"threads": threads, "memory_limit": f"{memory_mb}MB"})
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET preserve_insertion_order = true")

    def convert(self, schema: StreamSchema, work_file: Path, received_at: str, longest_line: int = 0) -> Converted:
        params = {"received_at": received_at}
        # DuckDB's JSON reader keeps a few buffers of maximum_object_size per
        # thread: give huge records room, then go back to the small budget.
        self.con.execute(f"SET memory_limit = '{max(self.memory_mb, 12 * object_size_for(longest_line) >> 20)}MB'")
        q = build_fast_query(schema, work_file, longest_line)
        result = None
        if q is not None:
            try:
                result = self.con.sql(q.sql, params=params).to_arrow_table()
            except duckdb.InvalidInputException:
                result = None  # a value the reader refused: the strict query names it
        if result is None:
            q = build_query(schema, work_file, longest_line)
            result = self.con.sql(q.sql, params=params).to_arrow_table()
        reason = result.column("reason")
        bad = pc.not_equal(reason, "")
        if pc.any(bad).as_py():
            reject_rows = pc.indices_nonzero(bad).to_pylist()
            reject_reasons = result.filter(bad).column("reason").to_pylist()
            result = result.filter(pc.invert(bad))
        else:
            reject_rows, reject_reasons = [], []
        target = pa.schema([f for f in schema.arrow_schema() if f.name != SEQUENCE])
        table = result.select(list(q.output_columns)).cast(target)
        return Converted(table, reject_rows, reject_reasons)

    def close(self) -> None:
        self.con.close()
