"""`spool-target rejects` and `rejects replay` through the real CLI: after a schema fix, and across a crash."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import manifest_entries, record_msg, schema_msg
from opskit import cli, ingest, query, sql

PROPS = {"id": {"type": "integer"}, "age": {"type": "integer"}}


def spool_with_rejects(spool: Path) -> None:
    """ages 'x' and 'y' do not fit integer; one record has no key; 'nick' is undeclared (kept in _sdc_extra)."""
    ingest(spool, [
        schema_msg("users", PROPS, ["id"]),
        record_msg("users", {"id": 1, "age": 30}),
        record_msg("users", {"id": 2, "age": "x", "nick": "two"}),
        record_msg("users", {"age": 40}),
        record_msg("users", {"id": 3, "age": "y"}),
        record_msg("users", {"id": 4, "age": 50}),
    ])


def rejects_json(spool: Path, *args: str) -> list[dict]:
    out = cli("rejects", "--spool", str(spool), "--format", "json", *args).stdout.decode()
    return [json.loads(line) for line in out.splitlines()]


def test_rejects_lists_reasons_and_counts_and_replay_after_a_schema_fix(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool_with_rejects(spool)
    listed = rejects_json(spool)
    assert [(r["stream"], r["line"], r["state"]) for r in listed] == [("users", 3, "open"), ("users", 4, "open"), ("users", 5, "open")]
    assert listed[0]["reason"] == "property 'age': expected an integer that fits in 64 bits, got \"x\""
    counts = cli("rejects", "--spool", str(spool), "--counts").stdout.decode().splitlines()
    assert counts == ["stream,reason,count",
                      "users,\"property 'age': expected an integer that fits in 64 bits, got ...\",2",
                      "users,key property 'id' is missing or null,1"]

    # Replay with nothing fixed: all three are rejected again, nothing is committed, nothing is duplicated.
    same = cli("rejects", "replay", "--spool", str(spool), "--log-format", "text")
    assert b"stream 'users': 0 of 3 replayed into 0 new segment(s), 3 still rejected" in same.stdout
    assert len(rejects_json(spool)) == 3 and len([e for e in manifest_entries(spool) if e["kind"] == "segment"]) == 1

    fix = tmp_path / "users.schema.json"
    fix.write_text(json.dumps({"type": "object", "properties": {**PROPS, "age": {"type": "string"}, "nick": {"type": "string"}}}))
    r = cli("rejects", "replay", "--spool", str(spool), "--stream", "users", "--schema", str(fix), "--log-format", "text")
    assert b"stream 'users': 2 of 3 replayed into 1 new segment(s), 1 still rejected" in r.stdout
    assert b"with load_method upsert a row is only replaced by a later record of its key" in r.stderr

    every = rejects_json(spool, "--all")
    assert [(r["line"], r["state"]) for r in every] == [(3, "replayed"), (4, "open"), (5, "replayed")]
    assert every[1]["latest_reason"] == "key property 'id' is missing or null"
    # The undeclared property that ingest had moved into _sdc_extra is a column under the fixed schema,
    # and replayed records are back in the order the tap sent them.
    rows = sql(spool, "SELECT id, age, nick, _sdc_extra FROM users ORDER BY _sdc_sequence")
    assert rows == [
        {"id": 1, "age": "30", "nick": None, "_sdc_extra": None},
        {"id": 2, "age": "x", "nick": "two", "_sdc_extra": None},
        {"id": 3, "age": "y", "nick": None, "_sdc_extra": None},
        {"id": 4, "age": "50", "nick": None, "_sdc_extra": None},
    ]

    cli("load", "--spool", str(spool), "--log-format", "json")
    assert query(spool / "spool.duckdb", "SELECT id, age FROM users ORDER BY id") == [(1, "30"), (2, "x"), (3, "y"), (4, "50")]
    status = json.loads(cli("status", "--spool", str(spool), "--json").stdout)
    assert status["streams"][0]["rejects"] == 1  # only the open one

    again = cli("rejects", "replay", "--spool", str(spool), "--log-format", "text")
    assert b"0 of 1 replayed" in again.stdout  # replayed records are never replayed twice


def test_a_replay_killed_midway_loses_nothing_and_commits_nothing_twice(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, [schema_msg("users", PROPS, ["id"]), *(record_msg("users", {"id": i, "age": f"a{i}"}) for i in range(5))])
    fix = tmp_path / "fix.json"
    fix.write_text(json.dumps({"type": "SCHEMA", "stream": "users", "schema": {"properties": {**PROPS, "age": {"type": "string"}}},
                               "key_properties": ["id"]}))
    replay = ("rejects", "replay", "--spool", str(spool), "--stream", "users", "--schema", str(fix), "--log-format", "text")
    env = {"SPOOL_TARGET_FLUSH_MAX_ROWS": "2"}
    # Killed after its second segment is committed, then after a segment file is published but before its entry.
    killed = cli(*replay, expect=-9, env={**env, "SPOOL_TARGET_TEST_CRASH_AT": "ingest:segment-committed:2"})
    assert killed.stdout == b""
    assert len(rejects_json(spool)) == 5  # nothing is marked yet: the journal is written after ingest
    killed = cli(*replay, expect=-9, env={**env, "SPOOL_TARGET_TEST_CRASH_AT": "ingest:segment-published"})
    assert b"settled an interrupted replay: 4 record(s) it had committed are marked replayed" in killed.stderr
    assert [r["id"] for r in sql(spool, "SELECT id FROM users ORDER BY id")] == [0, 1, 2, 3]

    done = cli(*replay, env=env)
    assert b"settled an interrupted replay: 0 record(s)" in done.stderr  # its one segment never got its entry
    assert b"stream 'users': 1 of 1 replayed" in done.stdout
    assert [r["id"] for r in sql(spool, "SELECT id FROM users ORDER BY id")] == [0, 1, 2, 3, 4]
    assert rejects_json(spool) == [] and len(rejects_json(spool, "--all")) == 5
    assert len(list((spool / "quarantine").iterdir())) == 1  # the published-but-uncommitted file, never loaded
