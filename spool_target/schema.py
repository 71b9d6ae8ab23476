"""JSON Schema -> spool column types, in one place.

A Singer SCHEMA is reduced to an ordered list of ``Column``s, each with one
*logical type*. The logical type decides the Arrow type in the spool and, in
each destination module, the SQL type. The rules (also in the README):

==================================  ============  ==============================
JSON Schema                          logical type  Arrow type in the spool
==================================  ============  ==============================
integer                              integer       int64
number (or integer|number)           number        float64 (every value of the segment
                                     or decimal    is exactly a double) or the JSON text
                                                   as sent (see ``numbers.py``)
string                               string        string
string, format date-time             timestamp     timestamp[us, UTC]
string, format date                  date          date32
string, format time                  time          string (as sent, validated)
boolean                              boolean       bool
object, array, {} , several types    json          string holding JSON text
a key with several scalar types      string        string (non-strings as their JSON text)
==================================  ============  ==============================

``null`` in a type list (or an ``anyOf`` branch) only makes the column
nullable. Every column is nullable in the spool; the schema's wish is kept
in ``Column.nullable`` for the destination's DDL.

Values that do not fit their column go to rejects (never silently nulled,
rounded or clamped): an integer beyond 64 bits or with a fraction, a number
beyond 38 significant digits, a string that is not an ISO 8601 date-time, a
non-boolean in a boolean column. A string column accepts any JSON value:
non-strings are kept as their JSON text exactly as sent. The typing itself
lives in ``spool/records.py`` (decoding) and ``spool/columns.py`` (Arrow).

Properties a record carries but its schema does not declare are kept, as a
JSON object, in the ``_sdc_extra`` column (see ``EXTRA_COLUMN``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import pyarrow as pa

from .errors import InputError

LOGICAL_TYPES = ("integer", "number", "decimal", "string", "timestamp", "date", "time", "boolean", "json")

ARROW_TYPES: dict[str, pa.DataType] = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "decimal": pa.string(),  # a number column's exact JSON text, when a segment holds non-doubles
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "time": pa.string(),
    "boolean": pa.bool_(),
    "json": pa.string(),
}

# Singer metadata columns added to every segment, in this order, after the
# stream's own properties. Their names are kept by destinations that allow
# a leading underscore (DuckDB); Oracle's naming module renames them.
EXTRACTED_AT = "_sdc_extracted_at"
RECEIVED_AT = "_sdc_received_at"
SEQUENCE = "_sdc_sequence"
TABLE_VERSION = "_sdc_table_version"
DELETED_AT = "_sdc_deleted_at"
EXTRA_COLUMN = "_sdc_extra"

METADATA_COLUMNS: tuple[tuple[str, str], ...] = (
    (EXTRACTED_AT, "timestamp"),
    (RECEIVED_AT, "timestamp"),
    (SEQUENCE, "integer"),
    (TABLE_VERSION, "integer"),
    (DELETED_AT, "timestamp"),
    (EXTRA_COLUMN, "json"),
)
METADATA_NAMES = frozenset(name for name, _ in METADATA_COLUMNS)

# Widening order for a column whose logical type changes between schemas or
# between a table and a segment. Anything not covered widens to "json"
# (text), which can hold every value losslessly.
_WIDER: dict[frozenset[str], str] = {
    # A double cannot hold every int64 (2^53 + 1): exact text holds both.
    frozenset({"integer", "number"}): "decimal",
    frozenset({"integer", "decimal"}): "decimal",
    frozenset({"number", "decimal"}): "decimal",
    frozenset({"date", "timestamp"}): "timestamp",
}


def widen(a: str, b: str) -> str:
    """The narrowest logical type that holds every value of both ``a`` and ``b``."""
    if a == b:
        return a
    pair = frozenset({a, b})
    if pair in _WIDER:
        return _WIDER[pair]
    if {"string", "time"} >= pair:
        return "string"
    # string, json, and mixed scalars: text holds them all.
    return "string" if "json" not in pair else "json"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    max_length: int | None = None  # from maxLength, for destinations' string sizes

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if d["max_length"] is None:
            del d["max_length"]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Column":
        return cls(d["name"], d["type"], d.get("nullable", True), d.get("max_length"))

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]


@dataclass(frozen=True)
class StreamSchema:
    """What a segment needs to know about its stream's schema."""

    stream: str
    columns: tuple[Column, ...]  # the stream's own properties, then metadata columns
    key_properties: tuple[str, ...]
    json_schema: dict[str, Any]
    bookmark_properties: tuple[str, ...] = ()

    @property
    def schema_id(self) -> str:
        """A stable hash: equal schemas share an id across runs."""
        payload = orjson.dumps(
            {
                "columns": [c.to_json() for c in self.columns],
                "key_properties": list(self.key_properties),
            },
        )
        return hashlib.sha256(payload).hexdigest()[:16]

    @property
    def property_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.name not in METADATA_NAMES)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=True) for c in self.columns])

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_id": self.schema_id,
            "columns": [c.to_json() for c in self.columns],
            "key_properties": list(self.key_properties),
            "bookmark_properties": list(self.bookmark_properties),
            # Kept as text so that DuckDB's read_json sees one simple type.
            "json_schema": orjson.dumps(self.json_schema).decode(),
        }

    @classmethod
    def from_json(cls, stream: str, d: dict[str, Any]) -> "StreamSchema":
        return cls(
            stream=stream,
            columns=tuple(Column.from_json(c) for c in d["columns"]),
            key_properties=tuple(d.get("key_properties") or ()),
            json_schema=orjson.loads(d.get("json_schema") or "{}"),
            bookmark_properties=tuple(d.get("bookmark_properties") or ()),
        )


def _types_of(node: dict[str, Any]) -> tuple[set[str], bool, dict[str, Any]]:
    """The non-null JSON types a schema node allows, whether null is allowed,
    and the node that carries ``format``/``maxLength`` (for anyOf branches)."""
    if not isinstance(node, dict):
        return set(), True, {}
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        types: set[str] = set()
        nullable = False
        detail: dict[str, Any] = {}
        for branch in branches:
            t, n, d = _types_of(branch)
            types |= t
            nullable = nullable or n
            if t and not detail:
                detail = d
        return types, nullable, detail
    declared = node.get("type")
    if declared is None:
        # {} or a schema with only "properties": anything goes.
        if "properties" in node:
            return {"object"}, True, node
        return set(), True, node
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list):
        return set(), True, node
    types = {t for t in declared if isinstance(t, str) and t != "null"}
    return types, "null" in declared, node


_SCALARS = frozenset({"string", "integer", "number", "boolean"})


def logical_type(node: dict[str, Any], *, key: bool = False) -> tuple[str, bool, int | None]:
    """Map one property's JSON Schema to (logical type, nullable, max_length).

    A key whose types mix strings with other scalars is a string column (other
    scalars kept as their JSON text), so that a key is stored the same way
    whether its schema says ``string`` or ``["string", "integer"]``."""
    types, nullable, detail = _types_of(node)
    fmt = detail.get("format")
    max_length = detail.get("maxLength")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length <= 0:
        max_length = None
    if types == {"integer"}:
        return "integer", nullable, None
    if types and types <= {"integer", "number"}:
        return "number", nullable, None
    if types == {"boolean"}:
        return "boolean", nullable, None
    if types == {"string"} or (key and "string" in types and types <= _SCALARS):
        if types != {"string"}:
            return "string", nullable, max_length
        if fmt == "date-time":
            return "timestamp", nullable, None
        if fmt == "date":
            return "date", nullable, None
        if fmt == "time":
            return "time", nullable, None
        return "string", nullable, max_length
    # objects, arrays, unknown or several types: JSON text keeps every value.
    return "json", True, None


def parse_schema_message(
    stream: str,
    json_schema: Any,
    key_properties: Any,
    bookmark_properties: Any = None,
    *,
    line: int | None = None,
) -> StreamSchema:
    if not isinstance(json_schema, dict):
        raise InputError(f"SCHEMA for stream {stream!r}: 'schema' must be a JSON object", line=line)
    props = json_schema.get("properties") or {}
    if not isinstance(props, dict):
        raise InputError(f"SCHEMA for stream {stream!r}: 'properties' must be an object", line=line)
    if key_properties is None:
        key_properties = []
    if not isinstance(key_properties, list) or not all(isinstance(k, str) for k in key_properties):
        raise InputError(
            f"SCHEMA for stream {stream!r}: 'key_properties' must be a list of property names",
            line=line,
        )
    missing = [k for k in key_properties if k not in props]
    if missing:
        raise InputError(
            f"SCHEMA for stream {stream!r}: key properties {missing} are not in its properties",
            line=line,
            hint="the tap's catalog and its key_properties disagree; fix the catalog",
        )
    columns: list[Column] = []
    for name, node in props.items():
        if name in METADATA_NAMES:
            continue  # _sdc_deleted_at and friends: always present as metadata
        ltype, nullable, max_length = logical_type(node, key=name in key_properties)
        if name in key_properties:
            nullable = False
        columns.append(Column(name, ltype, nullable, max_length))
    for name, ltype in METADATA_COLUMNS:
        columns.append(Column(name, ltype, True))
    if bookmark_properties is not None and not isinstance(bookmark_properties, list):
        bookmark_properties = [bookmark_properties]
    return StreamSchema(
        stream=stream,
        columns=tuple(columns),
        key_properties=tuple(key_properties),
        json_schema=json_schema,
        bookmark_properties=tuple(str(b) for b in (bookmark_properties or ())),
    )
