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
from typing import Any, Iterable, Sequence

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
NUMBER_TYPES = frozenset({"number", "decimal"})
_JSON_NULLS = pa.array([b"", b"null"], pa.binary())
# Rows per RowBlock: big enough for C loops, small enough to keep few Python objects alive.
BLOCK_ROWS = 16_384


class RowBlock:
    """Some rows of one buffer, packed as one Arrow array per slot (see
    ``RowShape``): a few thousand rows at a time, so that a full buffer costs
    compact Arrow memory rather than Python objects.

    Every slot is packed here, from the values the record decoder already
    made. (Parsing the lines a second time at commit, with Arrow's JSON
    reader off the GIL, cost more CPU than it saved on two cores: about 2 s
    per million records against 0.9 s of packing.)"""

    __slots__ = ("arrays", "rows")

    def __init__(self, shape: RowShape, rows: Sequence[Any]):
        slots = range(shape.width)
        values = shape.slot_values(rows, slots)
        self.arrays = {i: _block_array(shape.slot_types[i], v) for i, v in zip(slots, values)}
        self.rows = len(rows)

    @classmethod
    def from_buffers(cls, shape: RowShape, rows: int, buffers: Sequence[tuple[Any, ...]]) -> RowBlock:
        """The block the compiled path (``records.BlockPlan``) typed: per slot,
        (null count, validity, data, offsets) in Arrow's layout."""
        block = cls.__new__(cls)
        block.arrays = {}
        for i, (nulls, validity, data, offsets) in enumerate(buffers):
            arrow_type = _BLOCK_TYPES[shape.slot_types[i]]
            if data is None or nulls == rows:
                block.arrays[i] = pa.nulls(rows, arrow_type)
                continue
            parts = [pa.py_buffer(validity) if nulls else None]
            parts += [pa.py_buffer(data)] if offsets is None else [pa.py_buffer(offsets), pa.py_buffer(data)]
            block.arrays[i] = pa.Array.from_buffers(arrow_type, rows, parts, null_count=nulls)
        block.rows = rows
        return block


def _block_array(ltype: str, values: list[Any]) -> pa.Array:
    # _sdc_extra, _sdc_deleted_at, version: nearly always all None (the first
    # test keeps count(), which compares every value, off the other columns)
    if values and values[0] is None and values.count(None) == len(values):
        return pa.nulls(len(values), _BLOCK_TYPES[ltype])
    if ltype in RAW_TYPES:
        # JSON text as sent; JSON null (b"null") and absent (b"") become NULL.
        # Property slots always hold text (records.NO_VALUE when absent);
        # _sdc_extra is None unless a record had undeclared properties.
        try:
            arr = _joined(values)
        except TypeError:  # some None (``in`` would compare every value first)
            arr = _joined([b"" if v is None else v for v in values])
        return pc.if_else(pc.is_in(arr, _JSON_NULLS), None, arr)
    return pa.array(values, _BLOCK_TYPES[ltype])


def _joined(values: Sequence[Any]) -> pa.Array:
    """A binary array of JSON texts, made in C: no bytes object per value.

    The texts are joined with NUL bytes, which valid JSON never holds
    outside an escape (msgspec refuses a raw control character), and Arrow
    splits them apart again."""
    data = b"\x00".join(values)
    parts = pc.split_pattern(pa.array([data], pa.large_binary()), b"\x00").values
    if len(parts) != len(values):  # cannot happen with valid JSON; never trust it blindly
        return pa.array([bytes(v) for v in values], pa.binary())
    return parts.cast(pa.binary())


def row_numbers(count: int, start: int = 0) -> pa.Array:
    """``start, start + 1, ...``: ``count`` int64s made in C (``pa.array(range(n))`` boxes each one)."""
    if count == 0:
        return pa.array([], pa.int64())
    return pc.add(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), count)), start - 1)


def refused_mask(count: int, rows: Iterable[int]) -> pa.Array:
    """True at each of ``rows`` among ``count`` rows."""
    return pc.is_in(row_numbers(count), pa.array(sorted(rows), pa.int64()))


@dataclass
class BuiltSegment:
    table: pa.Table  # accepted rows, in input order, the segment's columns without _sdc_sequence
    schema: StreamSchema  # the stream's schema with each number column as number or decimal
    problems: dict[int, str]  # row -> reason, for the rows left out


def build_segment(schema: StreamSchema, blocks: Sequence[RowBlock], received_at: datetime) -> BuiltSegment:
    """The segment of one buffer, from its rows packed in ``blocks``."""
    shape = RowShape(schema)
    n_rows = sum(b.rows for b in blocks)
    if not n_rows:  # every record was refused while decoding
        empty = pa.schema([f for f in schema.arrow_schema() if f.name != SEQUENCE]).empty_table()
        return BuiltSegment(empty, schema, {})
    slots = {i: pa.concat_arrays([b.arrays[i] for b in blocks]) for i in range(shape.width)}
    problems: dict[int, list[str]] = {}

    def refuse(rows: dict[int, str], label: str) -> None:
        for row, reason in rows.items():
            problems.setdefault(row, []).append(f"{label}: {reason}")

    keys = set(schema.key_properties)
    out: dict[str, pa.Array] = {}
    logical: dict[str, str] = {}
    numbers: list[tuple[int, Column]] = []
    for i, col in enumerate(shape.properties):
        values = slots[i]
        if col.name in keys and values.null_count:
            for row in pc.indices_nonzero(pc.is_null(values)).to_pylist():
                problems.setdefault(row, []).append(f"key property {col.name!r} is missing or null")
        if col.type in NUMBER_TYPES:
            numbers.append((i, col))
            continue
        out[col.name], logical[col.name], bad = _typed_column(col.type, values)
        refuse(bad, f"property {col.name!r}")
    for name, slot, label in (
        (EXTRACTED_AT, shape.time_extracted, "time_extracted"),
        (DELETED_AT, shape.deleted_at, DELETED_AT),
    ):
        typed, _, bad = _typed_column("timestamp", slots[slot])
        refuse(bad, label)
        out[name] = typed
    out[RECEIVED_AT] = pa.repeat(pa.scalar(received_at, UTC_MICROS), n_rows)
    out[TABLE_VERSION] = slots[shape.version]
    out[EXTRA_COLUMN] = slots[shape.extra].cast(pa.string())
    refuse(_json_problems(out[EXTRA_COLUMN]), EXTRA_COLUMN)
    # Number columns last: a column is float64 only if all its values are
    # double-exact, and a record refused for any reason must not decide that.
    # So they are typed over the rows nothing else refused -- again if one of
    # them refuses a row another one saw.
    number_problems: dict[str, dict[int, str]] = {col.name: {} for _, col in numbers}
    refused: set[int] | None = None
    while numbers:  # the refused rows only grow, so this ends; one pass, as a rule
        seen = set(problems).union(*number_problems.values())
        if seen == refused:
            break
        refused = seen
        mask = refused_mask(n_rows, refused) if refused else None
        for i, col in numbers:
            values = slots[i] if mask is None else pc.if_else(mask, None, slots[i])
            out[col.name], logical[col.name], bad = _typed_column(col.type, values)
            number_problems[col.name].update(bad)  # a row once refused stays refused
    for i, col in numbers:
        refuse(number_problems[col.name], f"property {col.name!r}")
    columns = [replace(col, type=logical[col.name]) if logical[col.name] != col.type else col for col in shape.properties]
    refined = replace(schema, columns=tuple(columns) + tuple(c for c in schema.columns if c.name in METADATA_NAMES))
    names = [c.name for c in refined.columns if c.name != SEQUENCE]
    table = pa.table({name: out[name] for name in names})
    if problems:
        table = table.filter(pc.invert(refused_mask(n_rows, problems)))
    return BuiltSegment(table, refined, {row: "; ".join(reasons) for row, reasons in problems.items()})


def _typed_column(ltype: str, values: pa.Array) -> tuple[pa.Array, str, dict[int, str]]:
    """(Arrow values, logical type, row -> reason) for one column's row-block values."""
    if ltype in NUMBER_TYPES:
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
    data = texts.buffers()[2] if texts.null_count < len(texts) else None
    if data is None:
        return {}
    # One search through the column's text buffer (shared, not copied) finds
    # nothing in the common case, for far less than a search per value. Two
    # values side by side may match where neither does: then the search per
    # value decides.
    ends = pa.array([0, data.size], pa.int64()).buffers()[1]
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, ends, data])
    if not pc.any(pc.match_substring_regex(whole, BIG_NUMBER_HINT)).as_py():
        return {}
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
_TIME_SEPARATORS = pa.array(["T", "t", " "])
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
    return _halving(values, _cast_instants, parse_instant, UTC_MICROS)


def _cast_instants(values: pa.Array) -> pa.Array:
    """The vectorised conversion; raises ArrowInvalid if any value needs a closer look."""
    # Arrow's parser would also take a date alone: a date-time has its time
    # after a T or a space at position 10 (the cast checks the rest).
    shaped = pc.is_in(pc.utf8_slice_codeunits(values, 10, 11), _TIME_SEPARATORS)
    if not pc.all(pc.or_(pc.is_null(values), shaped)).as_py():
        raise pa.ArrowInvalid("not shaped like a date-time")
    try:
        return pc.cast(values, UTC_MICROS)
    except pa.ArrowInvalid:
        return pc.cast(values, NAIVE_MICROS).cast(UTC_MICROS)  # no value has an offset: they are UTC


def _halving(values: pa.Array, cast: Any, parse: Any, arrow_type: pa.DataType) -> tuple[pa.Array, dict[int, str]]:
    """``cast`` the whole column; if it refuses, cast each half again, so one
    bad value among 100,000 costs a few dozen casts, not 100,000 Python parses.
    Small pieces are parsed one by one, each failure with its reason."""
    try:
        return cast(values), {}
    except pa.ArrowInvalid:
        pass
    if len(values) <= 256:
        return _one_by_one(values, parse, arrow_type)
    mid = len(values) // 2
    head, head_bad = _halving(values.slice(0, mid), cast, parse, arrow_type)
    tail, tail_bad = _halving(values.slice(mid), cast, parse, arrow_type)
    return pa.concat_arrays([head, tail]), head_bad | {mid + row: why for row, why in tail_bad.items()}


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
    return _halving(values, lambda v: pc.cast(v, pa.date32()), _date_of, pa.date32())


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
