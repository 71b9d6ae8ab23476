"""Rows -> a segment's Arrow table, a column at a time.

``records.py`` turns each record into a row of plain values. Rows are
packed into ``RowBlock``s (a few thousand rows as Arrow arrays, so a big
buffer costs Arrow memory, not Python objects), and at commit time
``build_segment`` types each column with vectorised pyarrow kernels:
date-times, dates and times are parsed strictly (ISO 8601), numbers are
checked and kept exactly (``numbers.py``), JSON text stays byte for byte.
Python looks at single values only when a column has a value the fast
kernels refuse; each such value then gets its reason, and its row goes to
rejects instead of the segment.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..numbers import type_number_column
from ..schema import (
    DELETED_AT,
    EXTRA_COLUMN,
    EXTRACTED_AT,
    METADATA_NAMES,
    RECEIVED_AT,
    SEQUENCE,
    TABLE_VERSION,
    Column,
    StreamSchema,
)
from .records import BIG_NUMBER_HINT, RAW_TYPES, RowShape

UTC_MICROS = pa.timestamp("us", tz="UTC")
NAIVE_MICROS = pa.timestamp("us")

# Arrow types of the values in a row block, by logical type.
_BLOCK_TYPES = {
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "timestamp": pa.string(),
    "date": pa.string(),
    "time": pa.string(),
    "number": pa.binary(),
    "decimal": pa.binary(),
    "json": pa.binary(),
}
_JSON_NULLS = pa.array([b"", b"null"], pa.binary())


class RowBlock:
    """Some rows of one buffer, one Arrow array per row slot."""

    __slots__ = ("arrays",)

    def __init__(self, shape: RowShape, rows: Sequence[tuple[Any, ...]]):
        slots = list(zip(*rows))
        types = [c.type for c in shape.properties] + ["timestamp", "json", "timestamp", "integer"]
        self.arrays = [_block_array(t, values) for t, values in zip(types, slots)]

    @property
    def rows(self) -> int:
        return len(self.arrays[0])


def _block_array(ltype: str, values: Sequence[Any]) -> pa.Array:
    if ltype in RAW_TYPES:
        # JSON text as sent; JSON null (b"null") and absent (b"") become NULL.
        # Property slots always hold text (records.NO_VALUE when absent), so
        # map() converts in C; _sdc_extra is None unless a record had extras.
        try:
            arr = pa.array(list(map(bytes, values)), pa.binary())
        except TypeError:
            arr = pa.array([None if v is None else bytes(v) for v in values], pa.binary())
        return pc.if_else(pc.is_in(arr, _JSON_NULLS), None, arr)
    return pa.array(values, _BLOCK_TYPES[ltype])


@dataclass
class BuiltSegment:
    table: pa.Table  # accepted rows, in input order, the segment's columns without _sdc_sequence
    schema: StreamSchema  # the stream's schema with each number column as number or decimal
    problems: dict[int, str]  # row -> reason, for the rows left out


def build_segment(schema: StreamSchema, blocks: Sequence[RowBlock], received_at: datetime) -> BuiltSegment:
    shape = RowShape(schema)
    if not blocks:  # every record was refused while decoding
        empty = pa.schema([f for f in schema.arrow_schema() if f.name != SEQUENCE]).empty_table()
        return BuiltSegment(empty, schema, {})
    n_rows = sum(b.rows for b in blocks)
    slots = [pa.concat_arrays([b.arrays[i] for b in blocks]) for i in range(shape.width)]
    problems: dict[int, list[str]] = {}

    def refuse(rows: dict[int, str], label: str) -> None:
        for row, reason in rows.items():
            problems.setdefault(row, []).append(f"{label}: {reason}")

    keys = set(schema.key_properties)
    out: dict[str, pa.Array] = {}
    columns: list[Column] = []
    for i, col in enumerate(shape.properties):
        values = slots[i]
        if col.name in keys and values.null_count:
            for row in pc.indices_nonzero(pc.is_null(values)).to_pylist():
                problems.setdefault(row, []).append(f"key property {col.name!r} is missing or null")
        typed, logical, bad = _typed_column(col.type, values)
        refuse(bad, f"property {col.name!r}")
        out[col.name] = typed
        columns.append(replace(col, type=logical) if logical != col.type else col)
    for name, slot, label in (
        (EXTRACTED_AT, shape.time_extracted, "time_extracted"),
        (DELETED_AT, shape.deleted_at, DELETED_AT),
    ):
        typed, _, bad = _typed_column("timestamp", slots[slot])
        refuse(bad, label)
        out[name] = typed
    out[RECEIVED_AT] = pa.array([received_at] * n_rows, UTC_MICROS)
    out[TABLE_VERSION] = slots[shape.version]
    out[EXTRA_COLUMN] = slots[shape.extra].cast(pa.string())
    refuse(_json_problems(out[EXTRA_COLUMN]), EXTRA_COLUMN)
    refined = replace(schema, columns=tuple(columns) + tuple(c for c in schema.columns if c.name in METADATA_NAMES))
    names = [c.name for c in refined.columns if c.name != SEQUENCE]
    table = pa.table({name: out[name] for name in names})
    if problems:
        keep = pa.array([i not in problems for i in range(n_rows)], pa.bool_())
        table = table.filter(keep)
    return BuiltSegment(table, refined, {row: "; ".join(reasons) for row, reasons in problems.items()})


def _typed_column(ltype: str, values: pa.Array) -> tuple[pa.Array, str, dict[int, str]]:
    """(Arrow values, logical type, row -> reason) for one column's row-block values."""
    if ltype in ("number", "decimal"):
        col = type_number_column(values.cast(pa.string()))
        return col.array, col.logical, col.problems
    if ltype == "json":
        text = values.cast(pa.string())
        return text, ltype, _json_problems(text)
    if ltype == "timestamp":
        arr, bad = _instants(values)
        return arr, ltype, bad
    if ltype == "date":
        arr, bad = _dates(values)
        return arr, ltype, bad
    if ltype == "time":
        return values, ltype, _times(values)
    return values, ltype, {}


def _json_problems(texts: pa.Array) -> dict[int, str]:
    """JSON text is kept as sent, but a number no double can hold (1e400)
    would break every reader of it: refuse those, as strict parsers do."""
    look = pc.fill_null(pc.match_substring_regex(texts, BIG_NUMBER_HINT), False)
    problems: dict[int, str] = {}
    for row in pc.indices_nonzero(look).to_pylist():
        try:
            json.loads(texts[row].as_py(), parse_float=_finite, parse_int=_finite)
        except ValueError as err:
            problems[row] = str(err)
    return problems


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:60]} is beyond any storable range")
    return value


# ISO 8601 extended format date-time (RFC 3339 and its relatives): date, T or a
# space, hours with optional minutes, seconds and fraction, optional offset.
_INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?\Z"
)
_INSTANT_SHAPE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}"
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
_TIME = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.,][0-9]+)?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?$"


def parse_instant(text: str) -> datetime:
    """One ISO 8601 date-time -> an aware UTC datetime; ValueError with a reason otherwise."""
    m = _INSTANT.match(text)
    if not m:
        raise ValueError("expected an ISO 8601 date-time string")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = m.groups()
    fraction = fraction or ""
    if fraction[6:].strip("0"):
        raise ValueError("more precise than a microsecond, which is the most the spool keeps")
    micros = int((fraction[:6] or "0").ljust(6, "0"))
    offset = timedelta(0)
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        if sign == "-":
            offset = -offset
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0), micros)
    except ValueError:
        raise ValueError("not a valid date-time") from None
    return (local - offset).replace(tzinfo=timezone.utc)


def _instants(values: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    """Date-time strings -> timestamp[us, UTC]; no offset means UTC."""
    shaped = pc.fill_null(pc.match_substring_regex(values, _INSTANT_SHAPE), True)
    if not pc.all(shaped).as_py():  # Arrow would also take a date alone: look at each value
        return _one_by_one(values, parse_instant, UTC_MICROS)
    try:
        return pc.cast(values, UTC_MICROS), {}
    except pa.ArrowInvalid:
        pass
    try:  # no value has an offset: they are UTC
        return pc.cast(values, NAIVE_MICROS).cast(UTC_MICROS), {}
    except pa.ArrowInvalid:
        pass
    return _one_by_one(values, parse_instant, UTC_MICROS)


def _date_of(text: str) -> date:
    if _DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError("not a valid date") from None
    try:
        return parse_instant(text).date()  # a full date-time: its date in UTC
    except ValueError:
        raise ValueError("expected an ISO 8601 date string") from None


def _dates(values: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    try:
        return pc.cast(values, pa.date32()), {}
    except pa.ArrowInvalid:
        return _one_by_one(values, _date_of, pa.date32())


def _times(values: pa.Array) -> dict[int, str]:
    ok = pc.fill_null(pc.match_substring_regex(values, _TIME), True)
    if pc.all(ok).as_py():
        return {}
    return {
        row: f"expected an ISO 8601 time string, got {values[row].as_py()[:200]}"
        for row in pc.indices_nonzero(pc.invert(ok)).to_pylist()
    }


def _one_by_one(values: pa.Array, parse: Any, arrow_type: pa.DataType) -> tuple[pa.Array, dict[int, str]]:
    """The slow path: each value on its own, so each failure gets its reason."""
    out: list[Any] = []
    problems: dict[int, str] = {}
    for row, text in enumerate(values.to_pylist()):
        if text is None:
            out.append(None)
            continue
        try:
            out.append(parse(text))
        except ValueError as err:
            problems[row] = f"{err}, got {text[:200]}"
            out.append(None)
    return pa.array(out, arrow_type), problems
