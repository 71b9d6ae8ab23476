"""Decoding RECORD messages exactly, one decoder per stream schema.

Each record becomes a *row*: the decoded message, with one slot per
property column, then ``_sdc_deleted_at``, ``_sdc_extra``,
``time_extracted`` and ``version`` (``RowShape`` reads them). Slots hold
what the JSON said, not yet Arrow values:

- integer: an ``int`` within 64 bits;  boolean: a ``bool``;
- string, timestamp, date, time: a ``str`` (checked and converted later,
  a whole column at a time, in ``columns.py``);
- number and json: the value's JSON text exactly as sent (``msgspec.Raw``
  or ``bytes``; ``NO_VALUE`` when absent), so no digit, space or escape is
  ever re-rendered;
- ``None`` for an absent property or JSON null.

Three paths fill rows the same way:

- the *fast* one: a msgspec decoder built for the schema types the record
  in C (``forbid_unknown_fields``: a record with undeclared properties
  takes the exact path). It comes line by line (``decode``) and a block of
  lines at a time (``decode_block``, which also takes the STATE lines among
  them: most taps send long runs of one stream's records);
- the *exact* one, for every record the fast one refuses: each property's
  raw JSON text is typed by the rules of ``schema.py`` in Python, with a
  reason for anything that does not fit (the record then goes to rejects),
  and undeclared properties go to ``_sdc_extra`` as their original text.
- the *compiled* one, ahead of the fast one for whole blocks: a block of
  plain records and STATEs typed by ``_blockdecode.c`` straight into the
  Arrow buffers of a ``RowBlock`` (``BlockPlan``), with no Python object per
  value, and without holding the GIL. It is stricter than msgspec and
  stops before the first line it does not take; that line and the rest of
  the block take the fast path. Built where a C compiler is at hand
  (setup.py); without it, or with ``SPOOL_TARGET_TEST_PURE_PYTHON=1``, the
  fast path does the same work more slowly.

Duplicate keys in one JSON object: the last one wins, on every path.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from types import SimpleNamespace
from typing import Annotated, Any, Callable, Literal, Sequence

import msgspec
import orjson

from ..numbers import integer_from_text, number_problem
from ..schema import DELETED_AT, StreamSchema

try:
    from . import _blockdecode  # type: ignore[attr-defined]
except ImportError:  # installed without a C compiler: the fast path does the same, slower
    _blockdecode = None
if os.environ.get("SPOOL_TARGET_TEST_PURE_PYTHON"):  # tests compare the paths; benchmarks time them
    _blockdecode = None
COMPILED = _blockdecode is not None

INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
NO_VALUE = msgspec.Raw(b"")  # an absent raw property (JSON null arrives as b"null")

_FAST_TYPES: dict[str, Any] = {
    "integer": INT64 | None,
    "number": msgspec.Raw,
    "decimal": msgspec.Raw,
    "string": str | None,
    "timestamp": str | None,
    "date": str | None,
    "time": str | None,
    "boolean": bool | None,
    "json": msgspec.Raw,
}
RAW_TYPES = frozenset({"number", "decimal", "json"})
# Slot kinds of the compiled path (_blockdecode.c): integer, boolean, string, raw JSON text.
_COMPILED_KINDS = {
    "integer": "i", "boolean": "b", "string": "s", "timestamp": "s", "date": "s", "time": "s",
    "number": "r", "decimal": "r", "json": "r",
}

_EXPECTED = {
    "integer": "an integer that fits in 64 bits",
    "boolean": "true or false",
    "timestamp": "an ISO 8601 date-time string",
    "date": "an ISO 8601 date string",
    "time": "an ISO 8601 time string",
}


class RowShape:
    """Where each value sits in a row, for one stream schema.

    A row is a decoded message: msgspec's struct on the fast path, a
    ``SimpleNamespace`` of the same shape on the exact path. Its *slots*, in
    order: the property columns, then ``_sdc_deleted_at``, ``_sdc_extra``,
    ``time_extracted``, ``version``. ``slot_types`` gives each slot's logical
    type.
    """

    def __init__(self, schema: StreamSchema):
        self.properties = tuple(schema.property_columns)
        n = len(self.properties)
        self.deleted_at = n
        self.extra = n + 1
        self.time_extracted = n + 2
        self.version = n + 3
        self.width = n + 4
        self.slot_types = [c.type for c in self.properties] + ["timestamp", "json", "timestamp", "integer"]
        # One attribute per getter: a dotted attrgetter ("record.p0") costs
        # half as much again on every value.
        self._getters = [operator.attrgetter(f"p{i}") for i in range(n)] + [
            operator.attrgetter("deleted_at"), operator.attrgetter("extra"),
            operator.attrgetter("time_extracted"), operator.attrgetter("version"),
        ]

    def slot_values(self, rows: Sequence[Any], slots: Sequence[int]) -> list[list[Any]]:
        """The rows' values of each of ``slots``, a list per slot."""
        records = list(map(_RECORD_OF, rows))
        return [list(map(self._getters[i], records if i <= self.extra else rows)) for i in slots]


_RECORD_OF = operator.attrgetter("record")


class Rejected(Exception):
    """A record that cannot be typed; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Envelope(msgspec.Struct, gc=False):
    """Just enough of any message to route it and keep raw texts."""

    type: Any = None
    stream: Any = None
    record: msgspec.Raw = NO_VALUE
    time_extracted: msgspec.Raw = NO_VALUE
    version: msgspec.Raw = NO_VALUE


_envelope = msgspec.json.Decoder(_Envelope)
# A number that may lie beyond any double (1e400, a 400-digit integer): such
# text is looked at closely; strict JSON parsers refuse it.
BIG_NUMBER_HINT = "[0-9][eE][+-]?[0-9]{3,}|[0-9]{300,}"
# msgspec's ``rename`` refuses these characters in a field's JSON name.
_UNNAMEABLE = re.compile(r'["\\\x00-\x1f]')
_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_text = msgspec.json.Decoder(str)
FAST_PATH_MISSES = (msgspec.DecodeError, msgspec.ValidationError)


class StateLine(msgspec.Struct, tag_field="type", tag="STATE", gc=False):
    """A STATE line met inside a block of records (``RecordDecoder.decode_block``)."""

    value: msgspec.Raw  # the value's JSON text exactly as sent


def _refuse(line: bytes) -> Any:
    raise msgspec.ValidationError("no fast decoder for this schema")


class BlockPlan:
    """What the compiled path needs to know of one stream schema."""

    __slots__ = ("stream", "keys", "kinds")

    def __init__(self, shape: RowShape, stream: str):
        self.stream = stream.encode()
        # The record's keys: the properties, then _sdc_deleted_at; then one
        # kind per slot, with _sdc_extra ('x': always null), time_extracted, version.
        self.keys = tuple(c.name.encode() for c in shape.properties) + (DELETED_AT.encode(),)
        self.kinds = "".join(_COMPILED_KINDS[c.type] for c in shape.properties).encode() + b"sxsi"

    def decode(self, block: bytes, start: int = 0, max_records: int = 2**62) -> tuple[int, int, int, list[Any], list[Any]]:
        """Type ``block``'s lines from byte ``start`` while they are plain
        RECORDs of this stream or STATEs, at most ``max_records`` records:
        (records, lines, the offset of the first line not taken, each slot's
        Arrow buffers, per STATE (line from ``start``, its first byte, the next
        line's first byte, its value's text)). See ``_blockdecode.c``."""
        return _blockdecode.decode_block(  # type: ignore[no-any-return]
            block, start, max_records, self.stream, self.keys, self.kinds
        )


class RecordDecoder:
    """Turns one stream's RECORD lines into rows (see the module docstring)."""

    def __init__(self, schema: StreamSchema):
        self.schema = schema
        self.shape = RowShape(schema)
        self.declared = frozenset(c.name for c in self.shape.properties) | {DELETED_AT}
        self.keys = frozenset(schema.key_properties)
        # ``decode(line)`` is the whole fast path (the hot loop calls it directly):
        # it returns the row, or raises (DecodeError, ValidationError) for anything
        # but a plain RECORD of this stream whose values fit the schema.
        self.decode: Callable[[bytes], Any] = _refuse
        # ``decode_block(lines)`` does the same for a block of whole lines: the
        # rows, with a ``StateLine`` for each STATE among them, or it raises as
        # ``decode`` does if any line is something else. It skips blank lines.
        self.decode_block: Callable[[bytes], list[Any]] = _refuse
        # The compiled path for whole blocks, where it is built (None: use decode_block).
        self.plan: BlockPlan | None = None
        if any(_UNNAMEABLE.search(c.name) for c in self.shape.properties):
            return  # msgspec cannot match such a key: every record takes the exact path
        if COMPILED:
            self.plan = BlockPlan(self.shape, schema.stream)
        fields: list[tuple[str, Any, Any]] = []
        rename: dict[str, str] = {}
        for i, col in enumerate(self.shape.properties):
            kind = _FAST_TYPES[col.type]
            fields.append((f"p{i}", kind, NO_VALUE if kind is msgspec.Raw else None))
            rename[f"p{i}"] = col.name
        fields.append(("deleted_at", str | None, None))
        rename["deleted_at"] = DELETED_AT
        record = msgspec.defstruct(
            "Record", fields, rename=rename, forbid_unknown_fields=True, gc=False, namespace={"extra": None}
        )
        message: list[Any] = [
            # Literal types: another stream's record, or another message, fails in C.
            ("stream", Literal[schema.stream]),  # type: ignore[valid-type]
            ("record", record),
            ("time_extracted", str | None, None),
            ("version", INT64 | None, None),
        ]
        envelope = msgspec.defstruct("RecordMessage", [("type", Literal["RECORD"]), *message], gc=False)
        self.decode = msgspec.json.Decoder(envelope).decode
        # The same message as a tagged union member, beside STATE: one C call
        # types a whole block of lines (``decode_block``). The tag is only
        # required in a union, so the line decoder keeps ``type`` as a field.
        tagged = msgspec.defstruct("RecordLine", message, tag_field="type", tag="RECORD", gc=False)
        self.decode_block = msgspec.json.Decoder(tagged | StateLine).decode_lines  # type: ignore[operator]

    def fast(self, line: bytes) -> Any:
        """The row of a plain RECORD line of this stream, or None (then use ``exact``)."""
        try:
            return self.decode(line)
        except FAST_PATH_MISSES:
            return None

    # ----- the exact path ----------------------------------------------------
    def exact(self, line: bytes) -> Any:
        """The row of any RECORD line of this stream; raises ``Rejected``."""
        try:
            env = _envelope.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise Rejected(_why_not_json(line)) from None
        record_text = bytes(env.record)
        if record_text[:1] != b"{":
            raise Rejected("RECORD has no 'record' object")
        values = _raw_object.decode(record_text)
        row: list[Any] = [NO_VALUE if c.type in RAW_TYPES else None for c in self.shape.properties]
        row += [None] * (self.shape.width - len(row))
        reasons: list[str] = []
        for i, col in enumerate(self.shape.properties):
            raw = values.get(col.name)
            if raw is None or bytes(raw) == b"null":
                if col.name in self.keys:
                    reasons.append(f"key property {col.name!r} is missing or null")
                continue
            try:
                row[i] = _typed(col.type, bytes(raw))
            except Rejected as err:
                reasons.append(f"property {col.name!r}: {err.reason}")
        deleted = values.get(DELETED_AT)
        if deleted is not None and bytes(deleted) != b"null":
            try:
                row[self.shape.deleted_at] = _typed("timestamp", bytes(deleted))
            except Rejected as err:
                reasons.append(f"{DELETED_AT}: {err.reason}")
        undeclared = [(k, v) for k, v in values.items() if k not in self.declared]
        if undeclared:
            row[self.shape.extra] = _json_object(undeclared)
        for slot, raw, ltype, label in (
            (self.shape.time_extracted, env.time_extracted, "timestamp", "time_extracted"),
            (self.shape.version, env.version, "integer", "version"),
        ):
            if bytes(raw) not in (b"", b"null"):
                try:
                    row[slot] = _typed(ltype, bytes(raw))
                except Rejected as err:
                    reasons.append(f"{label}: {err.reason}")
        if reasons:
            raise Rejected("; ".join(reasons))
        shape = self.shape
        record = SimpleNamespace(**{f"p{i}": v for i, v in enumerate(row[: shape.deleted_at])})
        record.deleted_at, record.extra = row[shape.deleted_at], row[shape.extra]
        return SimpleNamespace(record=record, time_extracted=row[shape.time_extracted], version=row[shape.version])


def _typed(ltype: str, raw: bytes) -> Any:
    """One value's JSON text -> its row slot, by the rules of schema.py."""
    first = raw[:1]
    if ltype in RAW_TYPES:
        if ltype != "json":
            reason = number_problem(raw.decode())
            if reason:
                raise Rejected(f"{reason}, got {_show(raw)}")
        return raw
    if ltype == "string":
        # Any JSON value fits a string column; non-strings keep their text as sent.
        if first == b'"':
            return _text.decode(raw)
        text = raw.decode()
        if re.search(BIG_NUMBER_HINT, text):
            try:
                json.loads(text, parse_float=_check_float, parse_int=_check_int)
            except _NotStorable as err:
                raise Rejected(str(err)) from None
        return text
    if ltype == "integer":
        if first not in b"-0123456789" or not first:
            raise Rejected(f"expected {_EXPECTED[ltype]}, got {_show(raw)}")
        value = integer_from_text(raw.decode())
        if value is None or not -(2**63) <= value < 2**63:
            raise Rejected(f"expected {_EXPECTED[ltype]}, got {_show(raw)}")
        return value
    if ltype == "boolean":
        if raw in (b"true", b"false"):
            return raw == b"true"
        raise Rejected(f"expected {_EXPECTED[ltype]}, got {_show(raw)}")
    # timestamp, date, time: strings here, checked a column at a time in columns.py
    if first != b'"':
        raise Rejected(f"expected {_EXPECTED[ltype]}, got {_show(raw)}")
    return _text.decode(raw)


def _show(raw: bytes) -> str:
    return raw[:200].decode("utf-8", "replace")


def _json_object(items: list[tuple[str, msgspec.Raw]]) -> bytes:
    """A JSON object of undeclared properties, each value's text as sent."""
    return b"{" + b",".join(orjson.dumps(k) + b":" + bytes(v) for k, v in items) + b"}"


def lenient_message(line: bytes) -> Any:
    """What Python's json module reads in a line that strict parsers refuse
    (NaN, Infinity, 1e400, lone surrogates), or None if it is not JSON at all."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _why_not_json(line: bytes) -> str:
    """Name what keeps a RECORD line from being stored, for its reject entry."""
    try:
        parsed = json.loads(line, parse_constant=_refuse_constant, parse_float=_check_float)
    except _NotStorable as err:
        return str(err)
    except (ValueError, RecursionError) as err:
        return f"not valid JSON ({err})"
    try:
        orjson.dumps(parsed)
    except orjson.JSONEncodeError:
        return "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which UTF-8 text cannot store"
    return "not valid JSON"


class _NotStorable(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotStorable(f"{name} is not a JSON number (JSON has no NaN or Infinity); the tap must send null or a string")


def _check_int(text: str) -> int:
    _check_float(text)
    return int(text)


def _check_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotStorable(f"the number {text[:60]} is beyond any storable range")
    return value
