"""`spool-target load` end to end: Singer input -> ingest -> load (real subprocesses) -> the DuckDB file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import record_msg, run_cli, schema_msg
from loadkit import columns, config_file, db_path, ingest, load, log_records, messages, query, users_stream


def test_append_only_loads_each_record_once_and_a_second_load_finds_nothing(spool: Path):
    ingest(spool, users_stream(rows=[{"id": i, "name": f"n{i}"} for i in range(7)]), flush_rows=3)
    first = load(spool)
    assert messages(first)[0] == f"no destination configured: loading into the embedded DuckDB file {spool / 'spool.duckdb'}"
    db = db_path(spool)
    assert query(db, "SELECT id, name FROM users ORDER BY id") == [(i, f"n{i}") for i in range(7)]
    assert query(db, "SELECT count(*), sum(rows), count(DISTINCT spool_id) FROM _spool_ledger WHERE kind = 'segment'") == [(3, 7, 1)]

    again = load(spool)
    assert "nothing to load: everything in this spool is in the destination's ledger" in messages(again)
    assert query(db, "SELECT count(*) FROM users") == [(7,)]

    ingest(spool, users_stream(rows=[{"id": 7, "name": "n7"}]))
    load(spool)
    assert query(db, "SELECT count(*), count(DISTINCT _sdc_sequence) FROM users") == [(8, 8)]
    runs = sorted((spool / "runs").glob("load-*.json"))
    assert [json.loads(p.read_text())["state"] for p in runs] == ["succeeded"] * 3
    summary = json.loads(runs[0].read_text())
    assert summary["streams"]["users"]["rows"] == 7 and summary["streams"]["users"]["segments"] == 3


def test_upsert_keeps_the_latest_record_per_key_within_and_across_segments(spool: Path, tmp_path: Path):
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
    cfg = config_file(tmp_path, load_method="upsert")
    load(spool, "--config", str(cfg))
    db = db_path(spool)
    assert query(db, "SELECT id, name FROM users ORDER BY id") == [(0, "zero-2"), (1, "one-3"), (2, "two-1")]
    assert query(db, "SELECT code, label FROM codes ORDER BY code") == [("", "empty-2"), ("a", "a-1")]

    # A later run: the key 0 and '' rows are replaced, not duplicated.
    ingest(spool, [*users_stream(rows=[{"id": 0, "name": "zero-3"}]), codes_schema,
                   record_msg("codes", {"code": "", "label": "empty-3"})])
    load(spool, "--config", str(cfg))
    assert query(db, "SELECT id, name FROM users ORDER BY id") == [(0, "zero-3"), (1, "one-3"), (2, "two-1")]
    assert query(db, "SELECT code, label FROM codes ORDER BY code") == [("", "empty-3"), ("a", "a-1")]


@pytest.mark.parametrize("method", ["upsert", "append-only"])
def test_hard_delete_removes_the_rows_of_a_deleted_key(spool: Path, tmp_path: Path, method: str):
    deleted = "2024-05-01T00:00:00Z"
    ingest(spool, users_stream(rows=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]))
    cfg = config_file(tmp_path, load_method=method, hard_delete=True)
    load(spool, "--config", str(cfg))
    # id 1 deleted; id 3 deleted then re-created in the same segment; id 2 updated
    ingest(spool, users_stream(rows=[
        {"id": 1, "name": "a", "_sdc_deleted_at": deleted},
        {"id": 3, "name": "c", "_sdc_deleted_at": deleted},
        {"id": 3, "name": "c-again"},
        {"id": 2, "name": "b-2"},
    ]))
    load(spool, "--config", str(cfg))
    rows = query(db_path(spool), "SELECT id, name, _sdc_deleted_at FROM users ORDER BY id, name")
    if method == "upsert":
        assert rows == [(2, "b-2", None), (3, "c-again", None)]
    else:
        assert rows == [(2, "b", None), (2, "b-2", None), (3, "c-again", None)]


def test_soft_delete_keeps_the_row_marked(spool: Path, tmp_path: Path):
    ingest(spool, users_stream(rows=[{"id": 1, "name": "a"}, {"id": 1, "name": "a", "_sdc_deleted_at": "2024-05-01T00:00:00Z"}]))
    load(spool, "--load-method", "upsert")
    rows = query(db_path(spool), "SELECT id, strftime(_sdc_deleted_at, '%Y-%m-%d') FROM users")
    assert rows == [(1, "2024-05-01")]


def test_overwrite_replaces_the_table_with_exactly_this_loads_records(spool: Path):
    ingest(spool, users_stream(rows=[{"id": i, "name": "old"} for i in range(3)]))
    load(spool, "--load-method", "overwrite")
    db = db_path(spool)
    assert query(db, "SELECT count(*) FROM users") == [(3,)]
    ingest(spool, users_stream(rows=[{"id": 10, "name": "new"}, {"id": 11, "name": "new"}, {"id": 10, "name": "new"}]),
           flush_rows=1)
    load(spool, "--load-method", "overwrite")
    assert query(db, "SELECT id, name FROM users ORDER BY id") == [(10, "new"), (10, "new"), (11, "new")]
    load(spool, "--load-method", "overwrite")  # nothing pending: the table stays as it is
    assert query(db, "SELECT count(*) FROM users") == [(3,)]


def test_schema_evolution_adds_and_widens_columns_without_losing_values(spool: Path):
    v1 = {"id": {"type": "integer"}, "score": {"type": "integer"}, "day": {"type": "string", "format": "date"}}
    ingest(spool, [schema_msg("s", v1, ["id"]), record_msg("s", {"id": 1, "score": 1, "day": "2024-01-01"})])
    load(spool)
    db = db_path(spool)
    assert columns(db, "s")["score"] == "BIGINT" and columns(db, "s")["day"] == "DATE"

    v2 = {"id": {"type": "integer"}, "score": {"type": "number"}, "day": {"type": "string", "format": "date-time"},
          "note": {"type": "string"}}
    v3 = {"id": {"type": "integer"}, "score": {"type": "string"}, "flag": {"type": "boolean"}}
    v4 = {"id": {"type": "integer"}, "score": {"type": "integer"}}  # narrower again: goes into the wide column
    ingest(spool, [
        schema_msg("s", v2, ["id"]), record_msg("s", {"id": 2, "score": 2.5, "day": "2024-01-02T03:04:05Z", "note": "n"}),
        schema_msg("s", v3, ["id"]), record_msg("s", {"id": 3, "score": "high", "flag": True}),
        schema_msg("s", v4, ["id"]), record_msg("s", {"id": 4, "score": 7}),
    ])
    r = load(spool, env={"SPOOL_TARGET_TRANSACTION_ROWS": "1"})  # one unit per segment: step-by-step widening
    cols = columns(db, "s")
    assert {k: cols[k] for k in ("id", "score", "day", "note", "flag")} == {
        "id": "BIGINT", "score": "VARCHAR", "day": "TIMESTAMP WITH TIME ZONE", "note": "VARCHAR", "flag": "BOOLEAN"}
    rows = query(db, "SELECT id, score, strftime(day, '%Y-%m-%d %H:%M:%S'), note, flag FROM s ORDER BY id")
    assert [(r[0], float(r[1]) if r[0] != 3 else r[1]) for r in rows] == [(1, 1.0), (2, 2.5), (3, "high"), (4, 7.0)]
    assert [r[2:] for r in rows] == [
        ("2024-01-01 00:00:00", None, None), ("2024-01-02 03:04:05", "n", None), (None, None, True), (None, None, None)]
    widened = [m for m in messages(r) if m.startswith("widened column")]
    assert widened == [
        "widened column score of table s: BIGINT -> DOUBLE (a segment holds number values)",
        "widened column day of table s: DATE -> TIMESTAMP WITH TIME ZONE (a segment holds timestamp values)",
        "widened column score of table s: DOUBLE -> VARCHAR (a segment holds string values)",
    ]
    assert "added column note (string) to table s" in messages(r)


@pytest.mark.parametrize("method,hard", [("append-only", False), ("append-only", True), ("upsert", False)])
def test_activate_version_before_the_table_exists_and_after_a_full_sync(spool: Path, tmp_path: Path, method: str, hard: bool):
    cfg = config_file(tmp_path, hard_delete=hard, load_method=method)
    schema = schema_msg("items", {"id": {"type": "integer"}}, ["id"])
    ingest(spool, [schema, {"type": "ACTIVATE_VERSION", "stream": "items", "version": 1}])
    load(spool, "--config", str(cfg))  # no table yet: recorded in the ledger, nothing else
    db = db_path(spool)
    assert query(db, "SELECT kind FROM _spool_ledger") == [("activate_version",)]
    assert query(db, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'items'") == [(0,)]

    ingest(spool, [schema, *(record_msg("items", {"id": i}, version=1) for i in (1, 2)),
                   {"type": "ACTIVATE_VERSION", "stream": "items", "version": 1}])
    load(spool, "--config", str(cfg))
    assert query(db, "SELECT id FROM items WHERE _sdc_deleted_at IS NULL ORDER BY id") == [(1,), (2,)]

    ingest(spool, [schema, {"type": "ACTIVATE_VERSION", "stream": "items", "version": 2},
                   *(record_msg("items", {"id": i}, version=2) for i in (1, 3)),
                   {"type": "ACTIVATE_VERSION", "stream": "items", "version": 2}])
    load(spool, "--config", str(cfg))
    alive = query(db, "SELECT id, _sdc_table_version FROM items WHERE _sdc_deleted_at IS NULL ORDER BY id")
    assert alive == [(1, 2), (3, 2)]
    gone = query(db, "SELECT id, _sdc_table_version FROM items WHERE _sdc_deleted_at IS NOT NULL ORDER BY id")
    assert gone == ([] if hard else [(2, 1)] if method == "upsert" else [(1, 1), (2, 1)])
    assert query(db, "SELECT count(*) FROM _spool_ledger WHERE kind = 'activate_version'") == [(4,)]


def test_unicode_special_characters_colliding_names_and_nul_round_trip(spool: Path):
    stream = "Sales Orders/ü-表 😀"
    props = {"id": {"type": "integer"}, "ID": {"type": "integer"}, "e-mail": {"type": "string"},
             "名前": {"type": "string"}, "select": {"type": "string"}}
    values = ["a\u0000b", "\u0000", "emoji 😀 and \u00e9", "", "quote \" and ' and \\"]
    ingest(spool, [schema_msg(stream, props, ["id"]),
                   *(record_msg(stream, {"id": i, "ID": 100 + i, "e-mail": v, "名前": v, "select": "x"})
                     for i, v in enumerate(values))])
    load(spool)
    db = db_path(spool)
    table = "Sales_Orders_ü_表_"
    cols = list(columns(db, table))
    assert cols[:2] == ["id", "ID_" + __import__("hashlib").sha256(b"ID").hexdigest()[:8]]
    assert cols[2:5] == ["e_mail", "名前", "select"]
    rows = query(db, f'SELECT id, "{cols[1]}", e_mail, "名前" FROM "{table}" ORDER BY id')
    assert rows == [(i, 100 + i, v, v) for i, v in enumerate(values)]
    status = json.loads(run_cli("status", "--spool", str(spool), "--json").stdout)
    assert status["streams"][0]["table"] == table and status["streams"][0]["stream"] == stream


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


def test_permanent_destination_error_fails_fast_with_exit_6_and_loads_nothing(spool: Path):
    import duckdb

    ingest(spool, users_stream(rows=[{"id": 1}, {"id": 2}]))
    con = duckdb.connect(str(db_path(spool)))
    con.execute("CREATE TABLE users (id BIGINT CHECK (id < 0), name VARCHAR)")
    con.close()
    r = load(spool, "--max-wait", "30", expect=6)
    text = r.stderr.decode()
    assert "loading 1 segment(s) (streams/users-" in text and "of stream 'users' into table users failed" in text
    assert "retrying" not in text
    assert query(db_path(spool), "SELECT count(*) FROM _spool_ledger") == [(0,)]
    assert query(db_path(spool), "SELECT count(*) FROM users") == [(0,)]


def test_quiet_load_prints_nothing_on_success(spool: Path):
    ingest(spool, users_stream(rows=[{"id": 1}]))
    r = run_cli("load", "--spool", str(spool), "--quiet", "--log-format", "text")
    assert r.returncode == 0 and r.stderr == b"" and r.stdout == b""
    r = run_cli("load", "--spool", str(spool), "--log-format", "text")
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("no destination configured") and lines[-1].split()[:2] == ["total", "succeeded"]
    assert log_records(r) == []


def test_load_while_ingest_is_still_running_sees_only_committed_segments(spool: Path):
    import subprocess
    import sys
    import time

    from conftest import cli_env, manifest_entries, singer_lines

    proc = subprocess.Popen([sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool), "--log-format", "json"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=cli_env({"SPOOL_TARGET_FLUSH_MAX_ROWS": "2"}))
    try:
        proc.stdin.write(singer_lines(users_stream(rows=[{"id": i} for i in range(5)])))  # 2 segments + 1 buffered
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while sum(e["kind"] == "segment" for e in manifest_entries(spool)) < 2 if (spool / "manifest.jsonl").exists() else True:
            assert time.monotonic() < deadline, "ingest did not commit its first segments"
            time.sleep(0.05)
        load(spool)
        assert query(db_path(spool), "SELECT count(*) FROM users") == [(4,)]
        proc.stdin.write(singer_lines([record_msg("users", {"id": 5})]))
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
    load(spool)
    assert query(db_path(spool), "SELECT count(*), count(DISTINCT id) FROM users") == [(6, 6)]


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
    from spool_target.config import load_config
    from spool_target.load.engine import RunMode, run_load
    from spool_target.logs import Log

    ingest(spool, [*users_stream(rows=[{"id": i} for i in range(5)]),
                   *users_stream("other", rows=[{"id": 1}])], flush_rows=2)
    terminal = _Terminal()
    report = run_load(load_config([], {"spool_dir": str(spool)}, environ={}), Log("text", stream=terminal), RunMode.FRESH)
    out = terminal.buffer.getvalue()
    assert report.rows == 6 and report.state.value == "succeeded"
    assert "no destination configured" in out.splitlines()[0]
    assert "load succeeded" in out and "6/6" in out  # the table title and the total bar
    assert "┃ stream" in out or "│ users" in out
