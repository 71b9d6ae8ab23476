"""The two ways a commit reads a buffer's non-text values must agree.

At commit, the values other than JSON text (strings, integers, booleans,
date-time strings, time_extracted, version) are parsed from the buffer's
work file by Arrow's JSON reader, off the GIL (``columns._parsed_slots``).
When Arrow refuses anything, the lines are decoded again as the reader
decoded them (``columns._decoded_slots``). Both must give the same values
for every line the reader accepted; and Arrow must refuse, never bend, what
only the exact path can type.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spool_target.schema import parse_schema_message
from spool_target.spool.columns import _decoded_slots, _parsed_slots
from spool_target.spool.records import RecordDecoder, RowShape

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

# Each typed by the exact path (its text kept, or an integer read exactly):
# Arrow must refuse the whole read rather than give another value.
REFUSE = {
    "a number in a string column": b'{"id": 8, "name": 1.10}',
    "an integer spelled 1.0": b'{"id": 1.0}',
    "a key sent twice": b'{"id": 9, "name": "first", "name": "last"}',
    "a boolean in a string column": b'{"id": 10, "name": true}',
}


def _work_file(tmp_path: Path, lines: list[bytes]) -> tuple[Path, RowShape]:
    decoder = RecordDecoder(SCHEMA)
    for line in lines:  # every line here is one the reader accepts
        assert decoder.fast(line) is not None or decoder.exact(line) is not None
    path = tmp_path / "work.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, decoder.shape


def test_arrow_and_the_decoder_agree_on_every_accepted_line(tmp_path: Path) -> None:
    path, shape = _work_file(tmp_path, AGREE)
    parsed = _parsed_slots(shape, path, len(AGREE))
    assert parsed is not None, "Arrow refused lines it should read: the fast commit path is not exercised"
    decoded = _decoded_slots(SCHEMA, path)
    assert set(parsed) == set(decoded) and set(parsed).isdisjoint(shape.text_slots)
    for slot in parsed:
        assert parsed[slot].type == decoded[slot].type, slot
        assert parsed[slot].to_pylist() == decoded[slot].to_pylist(), shape.slot_types[slot]
    names = decoded[0].to_pylist(), decoded[1].to_pylist()
    assert names[0] == [1, -(2**63), 2**63 - 1, 3, 4, 5, 6, 7]  # the source's integers, not ours
    assert names[1][1] == 'esc " \\ / \b\f\n\r\t \x00 \u00e9 \U0001F600'


@pytest.mark.parametrize("case", sorted(REFUSE))
def test_arrow_refuses_what_only_the_exact_path_types(tmp_path: Path, case: str) -> None:
    lines = AGREE + _lines(REFUSE[case])
    path, shape = _work_file(tmp_path, lines)
    assert _parsed_slots(shape, path, len(lines)) is None
    decoded = _decoded_slots(SCHEMA, path)  # the commit's way on: decoding again, as the reader did
    assert len(decoded[0]) == len(lines)
