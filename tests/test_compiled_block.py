"""The compiled block path (``_blockdecode.c``) types exactly what the tap sent, or gives up.

Its contract: it types a block's lines from a given offset while they are
plain RECORDs of the stream or STATEs, and stops before the first line it
does not take (a *miss*: the caller takes that line and the rest the usual
way) or after a given number of records. What it types must be what the
msgspec block path packs. Four kinds of check:

- hand-made lines that must be typed (escapes, surrogate pairs, NUL, int64
  limits, key order, whitespace, a key sent twice, STATEs, a last line
  without its newline), compared with the values the line says;
- hand-made lines that must miss, one per rule;
- where it stops: before a miss, after ``max_records``, from an offset;
- a hypothesis property: random records, spelt any way JSON allows, typed
  values compared with what the generator sent (the source of truth); and
  random damage to those lines, where a block the compiled path takes must
  also be taken by msgspec, with the same packed values.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spool_target.schema import parse_schema_message
from spool_target.spool.columns import RowBlock
from spool_target.spool.records import COMPILED, RecordDecoder, StateLine

PROPS = {
    "id": {"type": "integer"},
    "name": {"type": ["null", "string"]},
    "ok": {"type": ["null", "boolean"]},
    "at": {"type": ["null", "string"], "format": "date-time"},
    "n": {"type": ["null", "number"]},
    "doc": {"type": ["null", "object"]},
    "tags": {"type": ["null", "array"]},
    "": {"type": ["null", "string"]},
    "日本": {"type": ["null", "integer"]},
}
SCHEMA = parse_schema_message("t", {"type": "object", "properties": PROPS}, ["id"], None, line=1)
DECODER = RecordDecoder(SCHEMA)
SHAPE = DECODER.shape
NAMES = [c.name for c in SHAPE.properties]

pytestmark = pytest.mark.skipif(
    not COMPILED, reason="the compiled path is not built here (no C compiler, or SPOOL_TARGET_TEST_PURE_PYTHON)"
)


def _record(body: bytes) -> bytes:
    return b'{"type":"RECORD","stream":"t","record":' + body + b"}"


def _typed(block: bytes, start: int = 0, max_records: int = 2**62) -> tuple[int, int, int, dict[int, list[Any]], list[Any]]:
    """(records, lines, end, packed values, STATEs) as the compiled path types them."""
    assert DECODER.plan is not None
    records, lines, end, buffers, states = DECODER.plan.decode(block, start, max_records)
    packed = RowBlock.from_buffers(SHAPE, records, buffers)
    for array in packed.arrays.values():
        array.validate(full=True)
    for at, line_start, next_line, value in states:  # a STATE's line, as the block holds it
        line = block[line_start:next_line].rstrip(b"\n")
        assert line.startswith(b"{") and value in line and block[start:].split(b"\n")[at] == line
    return records, lines, end, {slot: a.to_pylist() for slot, a in packed.arrays.items()}, states


def _compiled(block: bytes) -> tuple[dict[int, list[Any]], list[tuple[int, bytes]]] | None:
    """The whole block typed, or None if the compiled path stopped short of its end."""
    records, lines, end, packed, states = _typed(block)
    if end != len(block):
        return None
    assert lines == block.count(b"\n") + (not block.endswith(b"\n"))
    return packed, [(at, value) for at, _, _, value in states]


def _via_msgspec(block: bytes) -> tuple[dict[int, list[Any]], list[tuple[int, bytes]]] | None:
    try:
        msgs = DECODER.decode_block(block)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if len(msgs) != block.count(b"\n") + (not block.endswith(b"\n")):
        return None  # blank lines: ingest takes such a block line by line
    rows = [m for m in msgs if type(m) is not StateLine]
    states = [(i, bytes(m.value)) for i, m in enumerate(msgs) if type(m) is StateLine]
    if not rows:
        return {slot: [] for slot in range(SHAPE.width)}, states
    return {slot: a.to_pylist() for slot, a in RowBlock(SHAPE, rows).arrays.items()}, states


def _column(packed: dict[int, list[Any]], name: str) -> list[Any]:
    slot = {"_sdc_deleted_at": SHAPE.deleted_at, "time_extracted": SHAPE.time_extracted, "version": SHAPE.version}
    return packed[slot[name] if name in slot else NAMES.index(name)]


def test_plain_records_and_states_are_typed_as_sent() -> None:
    lines = [
        _record(b'{"id": 1, "name": "plain", "ok": true, "at": "2024-01-01T10:00:00Z", "n": 1.10, "doc": {"x": [1, 2.50]}}'),
        _record(b'{"id": -9223372036854775808, "name": "esc \\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0000 \\u00e9 \\ud83d\\ude00 \\uFFFF"}'),
        b'{"type":"STATE","value":{"bookmark": 12345678901234567890.10, "s": "\\ud83d\\ude00"},"extra":[true]}',
        _record(b'{"id": 9223372036854775807, "name": null, "ok": null, "n": null, "doc": null, "": "empty name"}'),
        _record('{"id": -0, "name": "日本 😀 raw UTF-8", "日本": 7, "tags": [ 1e400 , "x" ], "n": -1.5E-7}'.encode()),
        b' { "record" : { "name" : "first" , "id" : 5 , "name" : "last" } , "version" : 17 ,'
        b' "time_extracted" : "2024-05-01T00:00:00Z" , "stream" : "t" , "type" : "RECORD" , "other" : {"a": null} } \r',
        _record(b'{"id": 6, "_sdc_deleted_at": "2024-03-01T00:00:00+02:00", "at": "not a date-time: typed later"}'),
        b'{"value": "last", "type": "STATE"}',
        _record(b'{"id": 7, "n": "a string: the number column refuses it later", "doc": [], "tags": {}}'),
        # Names spelt with escapes, as Python's json.dumps spells every non-ASCII letter:
        b'{"type":"\\u0052ECORD","stream":"\\u0074","record":{"\\u0069d":8,"\\u65e5\\u672c":9}}',
    ]
    block = b"\n".join(lines)  # the last line without its newline, as at the end of input
    got = _compiled(block)
    assert got is not None
    packed, states = got
    assert _column(packed, "id") == [1, -(2**63), 2**63 - 1, 0, 5, 6, 7, 8]
    assert _column(packed, "name") == [
        "plain", 'esc " \\ / \b\f\n\r\t \x00 \u00e9 \U0001F600 \uffff', None, "日本 😀 raw UTF-8", "last", None, None, None,
    ]
    assert _column(packed, "ok") == [True, None, None, None, None, None, None, None]
    assert _column(packed, "n") == [
        b"1.10", None, None, b"-1.5E-7", None, None, b'"a string: the number column refuses it later"', None,
    ]
    assert _column(packed, "doc") == [b'{"x": [1, 2.50]}', None, None, None, None, None, b"[]", None]
    assert _column(packed, "tags") == [None, None, None, b'[ 1e400 , "x" ]', None, None, b"{}", None]
    assert _column(packed, "") == [None, None, "empty name", None, None, None, None, None]
    assert _column(packed, "日本") == [None, None, None, 7, None, None, None, 9]
    assert _column(packed, "at") == ["2024-01-01T10:00:00Z", None, None, None, None, "not a date-time: typed later", None, None]
    assert _column(packed, "_sdc_deleted_at") == [None] * 5 + ["2024-03-01T00:00:00+02:00", None, None]
    assert _column(packed, "time_extracted") == [None] * 4 + ["2024-05-01T00:00:00Z", None, None, None]
    assert _column(packed, "version") == [None] * 4 + [17, None, None, None]
    assert packed[SHAPE.extra] == [None] * 8
    assert states == [
        (2, b'{"bookmark": 12345678901234567890.10, "s": "\\ud83d\\ude00"}'),
        (7, b'"last"'),
    ]
    assert got == _via_msgspec(block)  # and msgspec, line by line in C too, agrees


MISSES = {
    "a blank line": b"",
    "a line of spaces": b"   ",
    "another stream": b'{"type":"RECORD","stream":"u","record":{"id":1}}',
    "a SCHEMA": b'{"type":"SCHEMA","stream":"t","schema":{},"key_properties":[]}',
    "a lower-case type": b'{"type":"record","stream":"t","record":{"id":1}}',
    "no type": b'{"stream":"t","record":{"id":1}}',
    "no stream": b'{"type":"RECORD","record":{"id":1}}',
    "no record": b'{"type":"RECORD","stream":"t"}',
    "a record that is not an object": b'{"type":"RECORD","stream":"t","record":null}',
    "a STATE without value": b'{"type":"STATE"}',
    "a top-level key twice": b'{"type":"RECORD","stream":"t","stream":"t","record":{"id":1}}',
    "an undeclared property": _record(b'{"id": 1, "more": 2}'),
    "an integer spelt 1.0": _record(b'{"id": 1.0}'),
    "an integer spelt 1e2": _record(b'{"id": 1e2}'),
    "2**63": _record(b'{"id": 9223372036854775808}'),
    "-2**63 - 1": _record(b'{"id": -9223372036854775809}'),
    "a huge integer": _record(b'{"id": 123456789012345678901234567890}'),
    "a string in an integer column": _record(b'{"id": "1"}'),
    "a number in a string column": _record(b'{"id": 1, "name": 1.10}'),
    "true in a string column": _record(b'{"id": 1, "name": true}'),
    "1 in a boolean column": _record(b'{"id": 1, "ok": 1}'),
    "a lone high surrogate": _record(b'{"id": 1, "name": "\\ud800"}'),
    "a lone low surrogate": _record(b'{"id": 1, "name": "\\udc00x"}'),
    "a high surrogate and a non-surrogate": _record(b'{"id": 1, "name": "\\ud800\\u0041"}'),
    "a lone surrogate inside JSON": _record(b'{"id": 1, "doc": {"k": "\\udfff"}}'),
    "a lone surrogate in a skipped key": b'{"type":"RECORD","stream":"t","record":{"id":1},"x":"\\ud800"}',
    "invalid UTF-8 in a string": _record(b'{"id": 1, "name": "\xff"}'),
    "an overlong UTF-8 sequence": _record(b'{"id": 1, "name": "\xc0\xaf"}'),
    "an encoded surrogate": _record(b'{"id": 1, "name": "\xed\xa0\x80"}'),
    "invalid UTF-8 inside JSON": _record(b'{"id": 1, "doc": {"k": "\xfe"}}'),
    "a raw control character": _record(b'{"id": 1, "name": "a\tb"}'),
    "a bad escape": _record(b'{"id": 1, "name": "\\x41"}'),
    "a short unicode escape": _record(b'{"id": 1, "name": "\\u12"}'),
    "NaN": _record(b'{"id": 1, "n": NaN}'),
    "Infinity": _record(b'{"id": 1, "n": -Infinity}'),
    "a leading zero": _record(b'{"id": 01}'),
    "a plus sign": _record(b'{"id": 1, "n": +1}'),
    "a bare point": _record(b'{"id": 1, "n": .5}'),
    "a point without digits": _record(b'{"id": 1, "n": 1.}'),
    "an exponent without digits": _record(b'{"id": 1, "n": 1e}'),
    "a lone minus": _record(b'{"id": 1, "n": -}'),
    "a misspelt literal": _record(b'{"id": 1, "ok": tru}'),
    "a trailing comma": _record(b'{"id": 1,}'),
    "a missing colon": _record(b'{"id" 1}'),
    "single quotes": _record(b"{'id': 1}"),
    "a truncated line": _record(b'{"id": 1, "name": "cut'),
    "something after the object": _record(b'{"id": 1}') + b" x",
    "two objects on a line": _record(b'{"id": 1}') + _record(b'{"id": 2}'),
    "nesting deeper than 64": _record(b'{"id": 1, "doc": ' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"}"),
    "an unclosed array": _record(b'{"id": 1, "tags": [1, 2}'),
    "a NUL byte outside a string": _record(b'{"id": 1}') + b"\x00",
}


@pytest.mark.parametrize("case", sorted(MISSES))
def test_anything_unusual_is_a_miss(case: str) -> None:
    good = _record(b'{"id": 0}') + b"\n"
    records, lines, end, packed, _ = _typed(good + MISSES[case] + b"\n" + good)
    assert (records, lines, end) == (1, 1, len(good))  # it stops before the line, and types nothing of it
    assert _column(packed, "id") == [0]


def test_it_stops_after_max_records_and_starts_at_an_offset() -> None:
    lines = [_record(b'{"id": %d}' % i) for i in range(5)]
    lines.insert(2, b'{"type":"STATE","value":2}')
    block = b"\n".join(lines) + b"\n"
    records, taken, end, packed, states = _typed(block, max_records=2)
    assert (records, taken, end) == (2, 2, len(lines[0]) + len(lines[1]) + 2)  # the STATE after is left
    assert _column(packed, "id") == [0, 1] and states == []
    records, taken, end2, packed, states = _typed(block, start=end, max_records=2)
    assert (records, taken) == (2, 3) and _column(packed, "id") == [2, 3]
    assert [(at, value) for at, _, _, value in states] == [(0, b"2")]
    assert _typed(block, start=end2)[:3] == (1, 1, len(block))
    assert _typed(block, start=len(block))[:3] == (0, 0, len(block))


# ----- the property -------------------------------------------------------

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@st.composite
def json_strings(draw: st.DrawFn) -> tuple[str, bytes]:
    """(a string, its JSON text spelt with a random mix of raw UTF-8 and escapes)."""
    value = draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=12))
    out = []
    for ch in value:
        how = draw(st.integers(0, 3)) if ch >= " " and ch not in '"\\' else 1 + draw(st.integers(0, 2))
        if how == 0:
            out.append(ch)
        elif how == 1 and ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        else:
            code = ch.encode("utf-16-be")
            hexes = [code[i : i + 2].hex() for i in range(0, len(code), 2)]
            upper = draw(st.booleans())
            out.append("".join("\\u" + (h.upper() if upper else h) for h in hexes))
    return value, ('"' + "".join(out) + '"').encode()


_numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["-0", "1.10", "1e400", "-1E-7", "0.1000000000000000000001", "12345678901234.5678"]),
)


def _json_values(strings: st.SearchStrategy[tuple[str, bytes]]) -> st.SearchStrategy[bytes]:
    leaves = st.one_of(_numbers.map(str.encode), strings.map(lambda s: s[1]), st.sampled_from([b"true", b"false", b"null"]))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda xs: b"[" + b", ".join(xs) + b"]"),
            st.lists(st.tuples(strings.map(lambda s: s[1]), inner), max_size=3).map(
                lambda kv: b"{" + b",".join(k + b":" + v for k, v in kv) + b"}"
            ),
        ),
        max_leaves=6,
    )


_raw_json = _json_values(json_strings())
_ws = st.sampled_from([b"", b"", b" ", b"\t", b"  ", b"\r"])


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """(a RECORD line, the value each slot must hold), keys in any order."""
    expected: dict[str, Any] = {}
    fields: list[tuple[bytes, bytes]] = []
    for col in SHAPE.properties:
        choice = draw(st.sampled_from(["absent", "null", "value", "value", "value"]))
        if choice == "absent" and col.name != "id":
            expected[col.name] = None
            continue
        text: bytes
        if choice == "null" and col.name != "id":
            text, value = b"null", None
        elif col.type == "integer":
            value = draw(st.integers(-(2**63), 2**63 - 1))
            text = str(value).encode()
        elif col.type == "boolean":
            value = draw(st.booleans())
            text = b"true" if value else b"false"
        elif col.type in ("number", "json"):
            text = draw(_numbers.map(str.encode) if col.type == "number" else _raw_json)
            value = None if text == b"null" else text
        else:
            value, text = draw(json_strings())
        expected[col.name] = value
        fields.append((json.dumps(col.name, ensure_ascii=draw(st.booleans())).encode(), text))
    order = draw(st.permutations(range(len(fields))))
    ws = draw(_ws)
    body = b"{" + ws + (b"," + ws).join(fields[i][0] + ws + b":" + ws + fields[i][1] for i in order) + ws + b"}"
    version = draw(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)))
    expected["version"] = version
    top = [b'"type":"RECORD"', b'"stream":"t"', b'"record":' + body]
    if version is not None:
        top.append(b'"version":' + str(version).encode())
    top = [top[i] for i in draw(st.permutations(range(len(top))))]
    return b"{" + (b"," + ws).join(top) + b"}", expected


@st.composite
def blocks(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]], list[tuple[int, bytes]]]:
    lines: list[bytes] = []
    expected: list[dict[str, Any]] = []
    states: list[tuple[int, bytes]] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 4)) == 0:
            value = draw(_raw_json)
            states.append((len(lines), value))
            lines.append(b'{"type":"STATE","value":' + value + b"}")
        else:
            line, values = draw(records())
            lines.append(line)
            expected.append(values)
    return b"\n".join(lines) + draw(st.sampled_from([b"\n", b""])), expected, states


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks())
def test_random_records_are_typed_as_the_generator_sent_them(case: tuple[bytes, list[dict[str, Any]], list[Any]]) -> None:
    block, expected, states = case
    got = _compiled(block)
    assert got is not None, block
    packed, got_states = got
    assert got_states == states
    for name in NAMES + ["version"]:
        assert _column(packed, name) == [row[name] for row in expected], name
    assert got == _via_msgspec(block)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks(), st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(
    [b"", b"\\", b'"', b"\xff", b"\xc3", b"}", b"{", b",", b"\n", b" ", b"1", b"e", b"\\ud800", b"-", b"."]
)), min_size=1, max_size=3))
def test_a_damaged_block_is_a_miss_or_typed_as_msgspec_types_it(
    case: tuple[bytes, list[Any], list[Any]], damage: list[tuple[int, bytes]]
) -> None:
    block = bytearray(case[0])
    for at, replacement in damage:
        at %= len(block) + 1
        block[at : at + 1] = replacement
    got = _compiled(bytes(block))
    if got is not None:
        assert got == _via_msgspec(bytes(block)), bytes(block)
