"""`spool-target load` end to end: Singer input -> ingest -> load (real subprocesses) -> the destination.

The engine's scenarios take ``dest`` (tests/destinations.py): they run on the
DuckDB file here, and on a live Oracle (both load strategies) where
SPOOL_TARGET_TEST_ORACLE_DSN is set. Where the dialects differ (Oracle: ''
is NULL, so '' keys are rejected; its own types and names) the test says so.
The others test the CLI around the embedded DuckDB destination."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import record_msg, run_cli, schema_msg
from destinations import Destination, utc
from loadkit import db_path, ingest, load, log_records, messages, query, users_stream

BUCKET_SPOOLS = True  # the `dest` tests run once more with the spool in a bucket (conftest.py)


def test_append_only_loads_each_record_once_and_a_second_load_finds_nothing(dest: Destination):
    spool = dest.spool
    ingest(spool, users_stream(rows=[{"id": i, "name": f"n{i}"} for i in range(7)]), flush_rows=3)
    first = dest.load()
    if dest.dialect == "duckdb":
        assert messages(first)[0] == f"no destination configured: loading into the embedded DuckDB file {spool / 'spool.duckdb'}"
    assert dest.rows("users", ["id", "name"]) == [(i, f"n{i}") for i in range(7)]
    assert [(kind, n) for _, kind, _, n in dest.ledger()] == [("segment", 3), ("segment", 3), ("segment", 1)]

    again = dest.load()
    assert "nothing to load: everything in this spool is in the destination's ledger" in messages(again)
    assert dest.count("users") == 7

    ingest(spool, users_stream(rows=[{"id": 7, "name": "n7"}]))
    dest.load()
    sequences = [r[0] for r in dest.rows("users", ["_sdc_sequence"])]
    assert len(sequences) == len(set(sequences)) == 8
    runs = sorted((spool / "runs").glob("load-*.json"))
    assert [json.loads(p.read_text())["state"] for p in runs] == ["succeeded"] * 3
    summary = json.loads(runs[0].read_text())
    assert summary["streams"]["users"]["rows"] == 7 and summary["streams"]["users"]["segments"] == 3


def _load_rejects(spool: Path) -> list[dict]:
    return [json.loads(x) for p in sorted((spool / "rejects").rglob("load-*.jsonl")) for x in p.read_text().splitlines()]


def test_upsert_keeps_the_latest_record_per_key_within_and_across_segments(dest: Destination):
    spool = dest.spool
    users = [
        {"id": 0, "name": "zero-1"},
        {"id": 1, "name": "one-1"},
        {"id": 0, "name": "zero-2"},  # second segment: replaces a key of the first
        {"id": 2, "name": "two-1"},
        {"id": 1, "name": "one-2"},
        {"id": 1, "name": "one-3"},  # same segment as one-2: deduplicated before the merge
    ]
    codes_schema = schema_msg("codes", {"code": {"type": "string"}, "label": {"type": "string"}}, ["code"])
    codes = [record_msg("codes", r) for r in ({"code": "", "label": "empty-1"}, {"code": "a", "label": "a-1"},
                                               {"code": "", "label": "empty-2"})]
    ingest(spool, [*users_stream(rows=users), codes_schema, *codes], flush_rows=2)
    dest.load(load_method="upsert")
    assert dest.rows("users", ["id", "name"]) == [(0, "zero-2"), (1, "one-3"), (2, "two-1")]
    if dest.dialect == "oracle":
        # Oracle stores '' as NULL, so a '' key cannot be merged: those records go to the rejects file.
        assert dest.rows("codes", ["code", "label"]) == [("a", "a-1")]
        rejects = _load_rejects(spool)
        assert [json.loads(r["raw"])["label"] for r in rejects] == ["empty-1", "empty-2"]
        assert rejects[0]["stream"] == "codes" and rejects[0]["line"] is None
        assert rejects[0]["reason"].startswith("key property 'code' is an empty string, which Oracle stores as NULL")
        summary = json.loads(next((spool / "runs").glob("load-*.json")).read_text())
        assert summary["streams"]["codes"]["rejected"] == 2
    else:
        assert dest.rows("codes", ["code", "label"]) == [("", "empty-2"), ("a", "a-1")]

    # A later run: the key 0 and '' rows are replaced, not duplicated.
    ingest(spool, [*users_stream(rows=[{"id": 0, "name": "zero-3"}]), codes_schema,
                   record_msg("codes", {"code": "", "label": "empty-3"})])
    dest.load(load_method="upsert")
    assert dest.rows("users", ["id", "name"]) == [(0, "zero-3"), (1, "one-3"), (2, "two-1")]
    if dest.dialect == "oracle":
        assert dest.rows("codes", ["code", "label"]) == [("a", "a-1")]
        assert [json.loads(r["raw"])["label"] for r in _load_rejects(spool)] == ["empty-1", "empty-2", "empty-3"]
    else:
        assert dest.rows("codes", ["code", "label"]) == [("", "empty-3"), ("a", "a-1")]


@pytest.mark.parametrize("method", ["upsert", "append-only"])
def test_hard_delete_removes_the_rows_of_a_deleted_key(dest: Destination, method: str):
    spool = dest.spool
    deleted = "2024-05-01T00:00:00Z"
    ingest(spool, users_stream(rows=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]))
    dest.load(load_method=method, hard_delete=True)
    # id 1 deleted; id 3 deleted then re-created in the same segment; id 2 updated
    ingest(spool, users_stream(rows=[
        {"id": 1, "name": "a", "_sdc_deleted_at": deleted},
        {"id": 3, "name": "c", "_sdc_deleted_at": deleted},
        {"id": 3, "name": "c-again"},
        {"id": 2, "name": "b-2"},
    ]))
    dest.load(load_method=method, hard_delete=True)
    rows = dest.rows("users", ["id", "name", "_sdc_deleted_at"])
    if method == "upsert":
        assert rows == [(2, "b-2", None), (3, "c-again", None)]
    else:
        assert rows == [(2, "b", None), (2, "b-2", None), (3, "c-again", None)]


def test_soft_delete_keeps_the_row_marked_in_utc(dest: Destination):
    ingest(dest.spool, users_stream(rows=[{"id": 1, "name": "a"},
                                          {"id": 1, "name": "a", "_sdc_deleted_at": "2024-05-01T12:34:56+02:00"}]))
    dest.load("--load-method", "upsert")
    assert dest.rows("users", ["id", "_sdc_deleted_at"]) == [(1, utc(2024, 5, 1, 10, 34, 56))]


def test_overwrite_replaces_the_table_with_exactly_this_loads_records(dest: Destination):
    spool = dest.spool
    ingest(spool, users_stream(rows=[{"id": i, "name": "old"} for i in range(3)]))
    dest.load("--load-method", "overwrite")
    assert dest.count("users") == 3
    ingest(spool, users_stream(rows=[{"id": 10, "name": "new"}, {"id": 11, "name": "new"}, {"id": 10, "name": "new"}]),
           flush_rows=1)
    dest.load("--load-method", "overwrite")
    assert dest.rows("users", ["id", "name"]) == [(10, "new"), (10, "new"), (11, "new")]
    dest.load("--load-method", "overwrite")  # nothing pending: the table stays as it is
    assert dest.count("users") == 3


SCHEMA_EVOLUTION_TYPES = {
    "duckdb": {"id": "BIGINT", "score": "VARCHAR", "day": "TIMESTAMP WITH TIME ZONE", "bio": "VARCHAR", "note": "VARCHAR",
               "flag": "BOOLEAN"},
    # FLAG: NUMBER(1) before 23ai, BOOLEAN from 23ai (at COMPATIBLE 23)
    "oracle": {"ID": "NUMBER", "SCORE": "VARCHAR2", "DAY": "TIMESTAMP(6) WITH TIME ZONE", "BIO": "CLOB", "NOTE": "VARCHAR2",
               "FLAG": ("NUMBER", "BOOLEAN")},
}


def test_schema_evolution_adds_and_widens_columns_without_losing_values(dest: Destination):
    spool = dest.spool
    v1 = {"id": {"type": "integer"}, "score": {"type": "integer"}, "day": {"type": "string", "format": "date"},
          "bio": {"type": "string", "maxLength": 10}}
    ingest(spool, [schema_msg("s", v1, ["id"]), record_msg("s", {"id": 1, "score": 1, "day": "2024-01-01", "bio": "short"})])
    dest.load()
    first = dest.column_types("s")
    if dest.dialect == "duckdb":
        assert first["score"] == "BIGINT" and first["day"] == "DATE"
    else:
        assert first["SCORE"] == "NUMBER" and first["DAY"] == "DATE"

    v2 = {"id": {"type": "integer"}, "score": {"type": "number"}, "day": {"type": "string", "format": "date-time"},
          "bio": {"type": "string"}, "note": {"type": "string"}}
    v3 = {"id": {"type": "integer"}, "score": {"type": "string"}, "flag": {"type": "boolean"}}
    v4 = {"id": {"type": "integer"}, "score": {"type": "integer"}}  # narrower again: goes into the wide column
    ingest(spool, [
        schema_msg("s", v2, ["id"]),
        record_msg("s", {"id": 2, "score": 2.5, "day": "2024-01-02T03:04:05Z", "bio": "é" * 5000, "note": "n"}),
        schema_msg("s", v3, ["id"]), record_msg("s", {"id": 3, "score": "high", "flag": True}),
        schema_msg("s", v4, ["id"]), record_msg("s", {"id": 4, "score": 7}),
    ])
    r = dest.load(env={"SPOOL_TARGET_TRANSACTION_ROWS": "1"})  # one unit per segment: step-by-step widening
    types = dest.column_types("s")
    for name, expected in SCHEMA_EVOLUTION_TYPES[dest.dialect].items():
        assert types[name] in (expected if isinstance(expected, tuple) else (expected,)), (name, types[name])
    rows = dest.rows("s", ["id", "score", "day", "bio", "note", "flag"], order_by=["id"])
    assert [(r[0], float(r[1]) if r[0] != 3 else r[1]) for r in rows] == [(1, 1.0), (2, 2.5), (3, "high"), (4, 7.0)]
    assert [r[2:] for r in rows] == [
        (utc(2024, 1, 1), "short", None, None), (utc(2024, 1, 2, 3, 4, 5), "é" * 5000, "n", None),
        (None, None, None, True), (None, None, None, None)]
    widened = [m for m in messages(r) if m.startswith("widened column")]
    if dest.dialect == "duckdb":
        # integer + number: a DOUBLE cannot hold every BIGINT exactly (2^53 + 1), so exact text (I8)
        assert widened == [
            "widened column score of table s: BIGINT -> VARCHAR (a segment holds number values)",
            "widened column day of table s: DATE -> TIMESTAMP WITH TIME ZONE (a segment holds timestamp values)",
        ]
        assert "added column note (string) to table s" in messages(r)
    else:  # the three type changes, and BIO: VARCHAR2(10 CHAR) -> CLOB for a 10000-byte value
        assert len(widened) == 4 and any(m.startswith("widened column BIO of table ") for m in widened)


@pytest.mark.parametrize("method,hard", [("append-only", False), ("append-only", True), ("upsert", False)])
def test_activate_version_before_the_table_exists_and_after_a_full_sync(dest: Destination, method: str, hard: bool):
    spool = dest.spool
    schema = schema_msg("items", {"id": {"type": "integer"}}, ["id"])
    ingest(spool, [schema, {"type": "ACTIVATE_VERSION", "stream": "items", "version": 1}])
    dest.load(hard_delete=hard, load_method=method)  # no table yet: recorded in the ledger, nothing else
    assert [(kind, n) for _, kind, _, n in dest.ledger()] == [("activate_version", 0)]
    assert not dest.table_exists("items")

    ingest(spool, [schema, *(record_msg("items", {"id": i}, version=1) for i in (1, 2)),
                   {"type": "ACTIVATE_VERSION", "stream": "items", "version": 1}])
    dest.load(hard_delete=hard, load_method=method)
    assert [r[:1] for r in dest.rows("items", ["id", "_sdc_deleted_at"]) if r[1] is None] == [(1,), (2,)]

    ingest(spool, [schema, {"type": "ACTIVATE_VERSION", "stream": "items", "version": 2},
                   *(record_msg("items", {"id": i}, version=2) for i in (1, 3)),
                   {"type": "ACTIVATE_VERSION", "stream": "items", "version": 2}])
    dest.load(hard_delete=hard, load_method=method)
    rows = dest.rows("items", ["id", "_sdc_table_version", "_sdc_deleted_at"])
    assert [r[:2] for r in rows if r[2] is None] == [(1, 2), (3, 2)]
    gone = [r[:2] for r in rows if r[2] is not None]
    assert gone == ([] if hard else [(2, 1)] if method == "upsert" else [(1, 1), (2, 1)])
    assert sum(kind == "activate_version" for _, kind, _, _ in dest.ledger()) == 4


def test_unicode_special_characters_colliding_names_and_nul_round_trip(dest: Destination):
    spool = dest.spool
    stream = "Sales Orders/ü-表 😀"
    props = {"id": {"type": "integer"}, "ID": {"type": "integer"}, "e-mail": {"type": "string"},
             "名前": {"type": "string"}, "select": {"type": "string"}}
    values = ["a\u0000b", "\u0000", "emoji 😀 and \u00e9", "", "quote \" and ' and \\"]
    ingest(spool, [schema_msg(stream, props, ["id"]),
                   *(record_msg(stream, {"id": i, "ID": 100 + i, "e-mail": v, "名前": v, "select": "x"})
                     for i, v in enumerate(values))])
    dest.load()
    cols = dest.column_names(stream)
    hashed = hashlib.sha256(b"ID").hexdigest()[:8]
    if dest.dialect == "duckdb":
        assert dest.table_name(stream) == "Sales_Orders_ü_表_"
        assert cols[:5] == ["id", "ID_" + hashed, "e_mail", "名前", "select"]
    else:  # upper case; a name with nothing usable left is C_ + hash; reserved words get a trailing _
        assert cols[:5] == ["ID", "ID_" + hashed.upper(), "E_MAIL",
                            "C_" + hashlib.sha256("名前".encode()).hexdigest()[:8].upper(), "SELECT_"]
    rows = dest.rows(stream, [cols[0], cols[1], cols[2], cols[3]], order_by=[cols[0]])
    assert rows == [(i, 100 + i, dest.stored(v), dest.stored(v)) for i, v in enumerate(values)]
    status = json.loads(dest.cli("status", "--json").stdout)
    assert status["streams"][0]["table"].endswith(dest.table_name(stream)) and status["streams"][0]["stream"] == stream


def test_status_before_and_after_loading_with_rejects(spool: Path):
    ingest(spool, [*users_stream(rows=[{"id": 1, "name": "a"}, {"id": "not a number", "name": "b"}, {"id": 2}])])
    before = run_cli("status", "--spool", str(spool), "--json")
    assert before.returncode == 0, before.stderr.decode()
    s = json.loads(before.stdout)
    assert s["destination_state"] == "not created"
    assert {k: s["streams"][0][k] for k in ("table", "rows", "loaded_rows", "pending_rows", "rejects")} == {
        "table": "users", "rows": 2, "loaded_rows": 0, "pending_rows": 2, "rejects": 1}
    assert s["streams"][0]["oldest_pending_age_seconds"] >= 0
    assert not db_path(spool).exists()  # status never creates the destination

    load(spool)
    after = json.loads(run_cli("status", "--spool", str(spool), "--json").stdout)
    assert after["destination_state"] == "reachable"
    assert {k: after["streams"][0][k] for k in ("loaded_rows", "pending_rows", "pending_segments", "oldest_pending")} == {
        "loaded_rows": 2, "pending_rows": 0, "pending_segments": 0, "oldest_pending": None}
    assert after["last_load"]["state"] == "succeeded"
    text = run_cli("status", "--spool", str(spool)).stdout.decode()
    assert "destination duckdb:///" in text and "reachable" in text and "users" in text


def test_destination_urls_relative_absolute_and_oracle_without_its_module(spool: Path, tmp_path: Path):
    ingest(spool, users_stream(rows=[{"id": 1}]))
    r = run_cli("load", "--spool", str(spool), "--destination", "duckdb:///rel.duckdb", "--log-format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    assert query(tmp_path / "rel.duckdb", "SELECT count(*) FROM users") == [(1,)]
    absolute = tmp_path / "sub" / "abs.duckdb"
    load(spool, "--destination", f"duckdb:///{absolute}")
    assert query(absolute, "SELECT count(*) FROM users") == [(1,)]

    bad = run_cli("load", "--spool", str(spool), "--destination", "oracle://scott:tiger@db:1521/FREEPDB1")
    assert bad.returncode == 2 and b"destination URL holds a password" in bad.stderr and b"tiger" not in bad.stderr
    nope = run_cli("load", "--spool", str(spool), "--destination", "mysql://x")
    assert nope.returncode == 2 and b"unknown kind 'mysql'" in nope.stderr


PERMANENT_ERROR = {  # a table the load cannot write into, and how the destination says so
    "duckdb": ('CREATE TABLE {table} (id BIGINT CHECK (id < 0), name VARCHAR)', "of stream 'users' into table users failed"),
    "oracle": ('CREATE TABLE {table} ("ID" NUMBER(38) CHECK ("ID" < 0), "NAME" VARCHAR2(10 CHAR))', "ORA-02290"),
}


def test_permanent_destination_error_fails_fast_with_exit_6_and_loads_nothing(dest: Destination):
    ingest(dest.spool, users_stream(rows=[{"id": 1}, {"id": 2}]))
    ddl, said = PERMANENT_ERROR[dest.dialect]
    dest.execute(ddl.format(table=f'"{dest.table_name("users")}"'))
    r = dest.load("--max-wait", "30", expect=6)
    text = r.stderr.decode()
    assert "loading 1 segment(s) (streams/users-" in text and said in text
    assert "retrying" not in text
    assert dest.ledger() == []
    assert dest.count("users") == 0


def test_quiet_load_prints_nothing_on_success(spool: Path):
    ingest(spool, users_stream(rows=[{"id": 1}]))
    r = run_cli("load", "--spool", str(spool), "--quiet", "--log-format", "text")
    assert r.returncode == 0 and r.stderr == b"" and r.stdout == b""
    r = run_cli("load", "--spool", str(spool), "--log-format", "text")
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("no destination configured") and lines[-1].split()[:2] == ["total", "succeeded"]
    assert log_records(r) == []


def test_load_while_ingest_is_still_running_sees_only_committed_segments(dest: Destination):
    import subprocess
    import sys
    import time

    from conftest import cli_env, committed_segments, singer_lines, spool_args

    spool = dest.spool
    proc = subprocess.Popen([sys.executable, "-m", "spool_target", "ingest", *spool_args(spool), "--log-format", "json"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=cli_env({"SPOOL_TARGET_FLUSH_MAX_ROWS": "2"}))
    try:
        proc.stdin.write(singer_lines(users_stream(rows=[{"id": i} for i in range(5)])))  # 2 segments + 1 buffered
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while committed_segments(spool) < 2:
            assert time.monotonic() < deadline, "ingest did not commit its first segments"
            time.sleep(0.05)
        dest.load()
        assert dest.count("users") == 4
        proc.stdin.write(singer_lines([record_msg("users", {"id": 5})]))
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
    dest.load()
    assert dest.rows("users", ["id"]) == [(i,) for i in range(6)]


class _Terminal:
    """A text stream that says it is a terminal, so the rich progress bar runs."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_progress_bar_and_summary_table_on_a_terminal(spool: Path):
    from spool_target.cli.common import destination_from_config, load_options, open_spool
    from spool_target.config import load_config
    from spool_target.load.engine import RunMode, run_load
    from spool_target.logs import Log

    ingest(spool, [*users_stream(rows=[{"id": i} for i in range(5)]),
                   *users_stream("other", rows=[{"id": 1}])], flush_rows=2)
    terminal = _Terminal()
    config = load_config([], {"spool_dir": str(spool)}, environ={})
    layout = open_spool(config)
    report = run_load(layout, destination_from_config(config, layout.root), load_options(config, RunMode.FRESH),
                      Log("text", stream=terminal))
    out = terminal.buffer.getvalue()
    assert report.rows == 6 and report.state.value == "succeeded"
    assert "no destination configured" in out.splitlines()[0]
    assert "load succeeded" in out and "6/6" in out  # the table title and the total bar
    assert "┃ stream" in out or "│ users" in out
