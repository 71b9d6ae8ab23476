"""The ways the reader decodes a RECORD line must agree.

The *fast* path (a msgspec decoder built for the schema, types in C, line
by line or a block of lines at a time) takes plain records; the *exact*
path (``RecordDecoder.exact``, each property's JSON text typed in Python)
takes every record the fast one refuses. A buffer mixes rows of all three,
and ``RowBlock`` packs them alike, so they must give the same packed values
for every line the fast path accepts; and the fast path must refuse, never
bend, what only the exact path can type.
"""

from __future__ import annotations

import pytest

from spool_target.schema import parse_schema_message
from spool_target.spool.columns import RowBlock
from spool_target.spool.records import RecordDecoder

PROPS = {
    "id": {"type": "integer"},
    "name": {"type": ["null", "string"]},
    "ok": {"type": ["null", "boolean"]},
    "at": {"type": ["null", "string"], "format": "date-time"},
    "day": {"type": ["null", "string"], "format": "date"},
    "n": {"type": ["null", "number"]},
    "doc": {"type": ["null", "object"]},
    "": {"type": ["null", "string"]},
    "a.b/c": {"type": ["null", "integer"]},
}
SCHEMA = parse_schema_message("t", {"type": "object", "properties": PROPS}, ["id"], None, line=1)


def _lines(*records: bytes) -> list[bytes]:
    return [b'{"type":"RECORD","stream":"t","record":' + r + b"}" for r in records]


AGREE = _lines(
    b'{"id": 1, "name": "plain", "ok": true, "at": "2024-01-01T10:00:00Z", "n": 1.10, "doc": {"x": [1, 2.50]}}',
    b'{"id": -9223372036854775808, "name": "esc \\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0000 \\u00e9 \\ud83d\\ude00", "ok": false}',
    b'{"id": 9223372036854775807, "name": null, "ok": null, "at": null, "day": "2024-02-29", "": "empty name"}',
    b'{"id": 3, "name": "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 raw UTF-8", "a.b/c": 7, "undeclared": {"kept": 1.0}}',
    b'{ "id" : 4 ,\t"name" : "  spaced  " , "_sdc_deleted_at": "2024-03-01T00:00:00+02:00" }',
    b'{"id": 5, "at": "not a date-time: typed later, per column"}',
) + [
    b'{"type":"RECORD","stream":"t","time_extracted":"2024-01-01T00:00:00Z","version":17,"record":{"id":6}}',
    b'{"stream":"t","record":{"id":7,"name":"keys in another order"},"type":"RECORD","extra_top":[1]}',
]

# Each typed by the exact path only: (record, property, the value it keeps).
REFUSE = {
    "a number in a string column": (b'{"id": 8, "name": 1.10}', "name", "1.10"),
    "an integer spelled 1.0": (b'{"id": 1.0}', "id", 1),
    "a boolean in a string column": (b'{"id": 10, "name": true}', "name", "true"),
    "an undeclared property": (b'{"id": 11, "more": [1.50]}', "_sdc_extra", '{"more":[1.50]}'),
}
DECODER = RecordDecoder(SCHEMA)
SHAPE = DECODER.shape


def _packed(rows: list[object]) -> dict[int, list[object]]:
    return {slot: values.to_pylist() for slot, values in RowBlock(SHAPE, rows).arrays.items()}


def test_fast_and_exact_paths_pack_the_same_values() -> None:
    fast = [DECODER.fast(line) for line in AGREE]
    taken = [line for line, row in zip(AGREE, fast) if row is not None]
    assert len(taken) >= 6, "the fast path refused lines it should take: it is not exercised"
    via_fast = _packed([row for row in fast if row is not None])
    via_exact = _packed([DECODER.exact(line) for line in taken])
    via_block = _packed(DECODER.decode_block(b"\n".join(taken) + b"\n"))  # a whole input block in one call
    assert via_fast == via_exact == via_block
    ids = via_exact[0]
    assert ids[:3] == [1, -(2**63), 2**63 - 1]  # the source's integers, not ours
    assert via_exact[1][1] == 'esc " \\ / \b\f\n\r\t \x00 \u00e9 \U0001F600'
    number = [c.name for c in SHAPE.properties].index("n")
    assert via_exact[number][0] == b"1.10"  # a number's text as sent


def test_a_key_sent_twice_keeps_the_last_value_on_both_paths() -> None:
    line = _lines(b'{"id": 9, "name": "first", "name": "last"}')[0]
    for row in (DECODER.fast(line), DECODER.exact(line)):
        assert _packed([row])[1] == ["last"]


@pytest.mark.parametrize("case", sorted(REFUSE))
def test_the_fast_path_refuses_what_only_the_exact_path_types(case: str) -> None:
    record, prop, kept = REFUSE[case]
    line = _lines(record)[0]
    assert DECODER.fast(line) is None
    slot = SHAPE.extra if prop == "_sdc_extra" else [c.name for c in SHAPE.properties].index(prop)
    value = _packed([DECODER.exact(line)])[slot][0]
    assert (value.decode() if isinstance(value, bytes) else value) == kept



