"""A replayed reject keeps its original place in its stream's order (I6), so upserts still resolve to the latest record.

Key 1 is rejected at first (its age does not fit the schema), and a later
record for key 1 is accepted. After a schema fix, `rejects replay` commits
the old record again; loading with `load_method: upsert` must keep the later
record -- whether the replayed record loads in the same transaction as the
later one or long after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import manifest_entries, record_msg, schema_msg
from destinations import Destination
from opskit import cli, ingest

PROPS = {"id": {"type": "integer"}, "age": {"type": "integer"}}


def tap_messages() -> list[dict]:
    return [
        schema_msg("users", PROPS, ["id"]),
        record_msg("users", {"id": 1, "age": "thirty"}),  # rejected: not an integer
        record_msg("users", {"id": 2, "age": 20}),
        record_msg("users", {"id": 1, "age": 31}),  # the latest record of key 1
    ]


def fix_schema_and_replay(spool: Path, tmp: Path) -> None:
    fix = tmp / "users.schema.json"
    fix.write_text(json.dumps({"type": "object", "properties": {**PROPS, "age": {"type": "string"}}}))
    r = cli("rejects", "replay", "--spool", str(spool), "--stream", "users", "--schema", str(fix), "--log-format", "text")
    assert b"1 of 1 replayed" in r.stdout


def reject_lines(spool: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((spool / "rejects").glob("*/*.jsonl")) for line in f.read_text().splitlines()]


@pytest.mark.parametrize("load_before_replay", [True, False], ids=["replayed-later", "replayed-before-any-load"])
def test_a_replayed_reject_never_overwrites_a_later_record_of_its_key(dest: Destination, tmp_path: Path,
                                                                    load_before_replay: bool) -> None:
    spool = dest.spool
    ingest(spool, tap_messages())
    (reject,) = reject_lines(spool)
    (segment,) = [e for e in manifest_entries(spool) if e["kind"] == "segment"]
    # The reject holds the place the tap gave it: before both accepted records.
    assert reject["line"] == 2 and reject["sequence"] < segment["first_sequence"]
    if load_before_replay:
        dest.load(load_method="upsert")
        assert dest.rows("users", ["id", "age"]) == [(1, 31), (2, 20)]

    fix_schema_and_replay(spool, tmp_path)
    replayed = [e for e in manifest_entries(spool) if e["kind"] == "segment"][-1]
    assert (replayed["first_sequence"], replayed["last_sequence"]) == (reject["sequence"], reject["sequence"])

    dest.load(load_method="upsert")
    rows = dest.rows("users", ["id", "age", "_sdc_sequence"])
    assert [(i, str(a)) for i, a, _ in rows] == [(1, "31"), (2, "20")]
    # Key 1's row is the tap's last record for it, not the replayed one.
    assert rows[0][2] == segment["last_sequence"]


def test_replayed_records_keep_the_order_the_tap_sent_them_in(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, tap_messages())
    fix_schema_and_replay(spool, tmp_path)
    r = cli("sql", "--spool", str(spool), "--format", "json", "SELECT id, age FROM users ORDER BY _sdc_sequence")
    assert [json.loads(line) for line in r.stdout.decode().splitlines()] == [
        {"id": 1, "age": "thirty"}, {"id": 2, "age": "20"}, {"id": 1, "age": "31"},
    ]
