"""The end-to-end load scenarios of tests/test_load_e2e.py and test_load_faults.py, against a live Oracle.

Runs only where a database is reachable:

    export SPOOL_TARGET_TEST_ORACLE_DSN=localhost:1521/FREEPDB1
    export SPOOL_TARGET_TEST_ORACLE_USER=spool
    export SPOOL_TARGET_TEST_ORACLE_PASSWORD=...
    pytest tests/test_oracle_live.py

(docs/oracle.md shows how to start Oracle Database Free in a container.) The
DuckDB tests query their file directly, so they cannot be parametrised over
destinations; these are the same scenarios, each checked with Oracle SQL, with
the differences Oracle makes: upper-case names, '' stored as NULL and ''
keys rejected. Every test maps its streams onto tables with a unique prefix
(``table_mappings``) and drops them afterwards. Both load strategies run.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import record_msg, run_cli, schema_msg
from loadkit import ingest, messages, users_stream

DSN = os.environ.get("SPOOL_TARGET_TEST_ORACLE_DSN")
USER = os.environ.get("SPOOL_TARGET_TEST_ORACLE_USER")
PASSWORD = os.environ.get("SPOOL_TARGET_TEST_ORACLE_PASSWORD")

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(
        not (DSN and USER and PASSWORD),
        reason="no live Oracle: set SPOOL_TARGET_TEST_ORACLE_DSN, SPOOL_TARGET_TEST_ORACLE_USER and "
        "SPOOL_TARGET_TEST_ORACLE_PASSWORD (docs/oracle.md shows how to start Oracle Database Free)",
    ),
]


class Oracle:
    """One test's view of the database: its tables, its config, SQL to check them."""

    def __init__(self, tmp: Path, strategy: str):
        import oracledb

        self.conn = oracledb.connect(user=USER, password=PASSWORD, dsn=DSN)
        self.prefix = f"T{uuid.uuid4().hex[:6].upper()}_"
        self.tmp = tmp
        self.strategy = strategy
        self.streams: set[str] = set()

    def table(self, stream: str) -> str:
        self.streams.add(stream)
        return self.prefix + stream.upper().replace("-", "_")

    def config(self, streams: list[str], **settings: Any) -> Path:
        path = self.tmp / f"oracle-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps({
            "dsn": DSN, "user": USER, "load_strategy": self.strategy, "max_wait_seconds": 30,
            "table_mappings": {s: self.table(s) for s in streams}, **settings,
        }))
        return path

    def load(self, spool: Path, streams: list[str], *args: str, expect: int = 0, env: dict[str, str] | None = None, **settings: Any):
        r = run_cli("load", "--spool", str(spool), "--config", str(self.config(streams, **settings)), "--log-format", "json",
                    *args, env={"SPOOL_TARGET_ORACLE_PASSWORD": PASSWORD or "", **(env or {})}, timeout=600)
        assert r.returncode == expect, f"exit {r.returncode}, expected {expect}:\n{r.stderr.decode()}"
        assert (PASSWORD or "").encode() not in r.stderr + r.stdout
        return r

    def execute(self, sql: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params or [])
            return [tuple(r) for r in cur.fetchall()]

    def ledger(self, spool: Path) -> list[tuple]:
        spool_id = json.loads((spool / "manifest.jsonl").read_text().splitlines()[0])["spool_id"]
        return self.query('SELECT "KIND", "ROW_COUNT" FROM "SPOOL_LEDGER" WHERE "SPOOL_ID" = :1 ORDER BY "ITEM"', [spool_id])

    def close(self) -> None:
        for (name,) in self.query("SELECT TABLE_NAME FROM USER_TABLES WHERE TABLE_NAME LIKE :1", [self.prefix + "%"]):
            self.execute(f'DROP TABLE "{name}" PURGE')
        with self.conn.cursor() as cur:
            cur.execute('DELETE FROM "SPOOL_LEDGER" WHERE "TABLE_NAME" LIKE :1', [self.prefix + "%"])
        self.conn.commit()
        self.conn.close()


@pytest.fixture(params=["insert", "direct-path"])
def ora(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Oracle]:
    db = Oracle(tmp_path, request.param)
    try:
        yield db
    finally:
        db.close()


def test_append_only_loads_each_record_once_and_a_second_load_finds_nothing(spool: Path, ora: Oracle):
    ingest(spool, users_stream(rows=[{"id": i, "name": f"n{i}"} for i in range(7)]), flush_rows=3)
    ora.load(spool, ["users"])
    t = ora.table("users")
    assert ora.query(f'SELECT "ID", "NAME" FROM "{t}" ORDER BY "ID"') == [(i, f"n{i}") for i in range(7)]
    assert ora.ledger(spool) == [("segment", 3), ("segment", 3), ("segment", 1)]
    again = ora.load(spool, ["users"])
    assert "nothing to load: everything in this spool is in the destination's ledger" in messages(again)
    ingest(spool, users_stream(rows=[{"id": 7, "name": "n7"}]))
    ora.load(spool, ["users"])
    assert ora.query(f'SELECT COUNT(*), COUNT(DISTINCT "SDC_SEQUENCE") FROM "{t}"') == [(8, 8)]


def test_upsert_keeps_the_latest_record_per_key_and_rejects_empty_keys(spool: Path, ora: Oracle):
    users = [{"id": 0, "name": "zero-1"}, {"id": 1, "name": "one-1"}, {"id": 0, "name": "zero-2"},
             {"id": 2, "name": "two-1"}, {"id": 1, "name": "one-2"}, {"id": 1, "name": "one-3"}]
    codes_schema = schema_msg("codes", {"code": {"type": "string"}, "label": {"type": "string"}}, ["code"])
    codes = [record_msg("codes", r) for r in ({"code": "", "label": "empty-1"}, {"code": "a", "label": "a-1"})]
    ingest(spool, [*users_stream(rows=users), codes_schema, *codes], flush_rows=2)
    ora.load(spool, ["users", "codes"], load_method="upsert")
    u, c = ora.table("users"), ora.table("codes")
    assert ora.query(f'SELECT "ID", "NAME" FROM "{u}" ORDER BY "ID"') == [(0, "zero-2"), (1, "one-3"), (2, "two-1")]
    assert ora.query(f'SELECT "CODE", "LABEL" FROM "{c}"') == [("a", "a-1")]  # '' would be NULL: rejected
    rejects = [json.loads(x) for p in (spool / "rejects").rglob("load-*.jsonl") for x in p.read_text().splitlines()]
    assert [json.loads(r["raw"])["label"] for r in rejects] == ["empty-1"]
    ingest(spool, users_stream(rows=[{"id": 0, "name": "zero-3"}]))
    ora.load(spool, ["users", "codes"], load_method="upsert")
    assert ora.query(f'SELECT "ID", "NAME" FROM "{u}" ORDER BY "ID"') == [(0, "zero-3"), (1, "one-3"), (2, "two-1")]


@pytest.mark.parametrize("method", ["upsert", "append-only"])
def test_hard_delete_removes_the_rows_of_a_deleted_key(spool: Path, ora: Oracle, method: str):
    deleted = "2024-05-01T00:00:00Z"
    ingest(spool, users_stream(rows=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]))
    ora.load(spool, ["users"], load_method=method, hard_delete=True)
    ingest(spool, users_stream(rows=[{"id": 1, "name": "a", "_sdc_deleted_at": deleted},
                                     {"id": 3, "name": "c", "_sdc_deleted_at": deleted},
                                     {"id": 3, "name": "c-again"}, {"id": 2, "name": "b-2"}]))
    ora.load(spool, ["users"], load_method=method, hard_delete=True)
    rows = ora.query(f'SELECT "ID", "NAME", "SDC_DELETED_AT" FROM "{ora.table("users")}" ORDER BY "ID", "NAME"')
    if method == "upsert":
        assert rows == [(2, "b-2", None), (3, "c-again", None)]
    else:
        assert rows == [(2, "b", None), (2, "b-2", None), (3, "c-again", None)]


def test_soft_delete_keeps_the_row_marked_in_utc(spool: Path, ora: Oracle):
    ingest(spool, users_stream(rows=[{"id": 1, "name": "a"}, {"id": 1, "name": "a", "_sdc_deleted_at": "2024-05-01T12:34:56Z"}]))
    ora.load(spool, ["users"], load_method="upsert")
    rows = ora.query(f"""SELECT "ID", TO_CHAR(SYS_EXTRACT_UTC("SDC_DELETED_AT"), 'YYYY-MM-DD HH24:MI:SS') FROM "{ora.table("users")}" """)
    assert rows == [(1, "2024-05-01 12:34:56")]


def test_overwrite_replaces_the_table_with_exactly_this_loads_records(spool: Path, ora: Oracle):
    ingest(spool, users_stream(rows=[{"id": i, "name": "old"} for i in range(3)]))
    ora.load(spool, ["users"], load_method="overwrite")
    ingest(spool, users_stream(rows=[{"id": 10, "name": "new"}, {"id": 11, "name": "new"}, {"id": 10, "name": "new"}]), flush_rows=1)
    ora.load(spool, ["users"], load_method="overwrite")
    assert ora.query(f'SELECT "ID", "NAME" FROM "{ora.table("users")}" ORDER BY "ID"') == [(10, "new"), (10, "new"), (11, "new")]


def test_schema_evolution_adds_and_widens_columns_without_losing_values(spool: Path, ora: Oracle):
    v1 = {"id": {"type": "integer"}, "score": {"type": "integer"}, "day": {"type": "string", "format": "date"},
          "bio": {"type": "string", "maxLength": 10}}
    ingest(spool, [schema_msg("s", v1, ["id"]), record_msg("s", {"id": 1, "score": 1, "day": "2024-01-01", "bio": "short"})])
    ora.load(spool, ["s"])
    v2 = {"id": {"type": "integer"}, "score": {"type": "number"}, "day": {"type": "string", "format": "date-time"},
          "bio": {"type": "string"}, "note": {"type": "string"}}
    v3 = {"id": {"type": "integer"}, "score": {"type": "string"}, "flag": {"type": "boolean"}}
    ingest(spool, [
        schema_msg("s", v2, ["id"]), record_msg("s", {"id": 2, "score": 2.5, "day": "2024-01-02T03:04:05Z", "bio": "é" * 5000, "note": "n"}),
        schema_msg("s", v3, ["id"]), record_msg("s", {"id": 3, "score": "high", "flag": True}),
    ])
    ora.load(spool, ["s"], env={"SPOOL_TARGET_TRANSACTION_ROWS": "1"})
    t = ora.table("s")
    types = dict(ora.query("SELECT COLUMN_NAME, DATA_TYPE FROM USER_TAB_COLUMNS WHERE TABLE_NAME = :1", [t]))
    assert {k: types[k] for k in ("ID", "SCORE", "DAY", "BIO", "NOTE", "FLAG")} == {
        "ID": "NUMBER", "SCORE": "VARCHAR2", "DAY": "TIMESTAMP(6) WITH TIME ZONE", "BIO": "CLOB", "NOTE": "VARCHAR2", "FLAG": "NUMBER"}
    rows = ora.query(f"""SELECT "ID", "SCORE", TO_CHAR(SYS_EXTRACT_UTC("DAY"), 'YYYY-MM-DD HH24:MI:SS'), DBMS_LOB.GETLENGTH("BIO"), "FLAG"
                         FROM "{t}" ORDER BY "ID" """)
    assert rows == [(1, "1", "2024-01-01 00:00:00", 5, None), (2, "2.5", "2024-01-02 03:04:05", 5000, None), (3, "high", None, None, 1)]


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_activate_version_before_the_table_exists_and_after_a_full_sync(spool: Path, ora: Oracle, hard: bool):
    schema = schema_msg("items", {"id": {"type": "integer"}}, ["id"])
    ingest(spool, [schema, {"type": "ACTIVATE_VERSION", "stream": "items", "version": 1}])
    ora.load(spool, ["items"], hard_delete=hard)
    assert ora.ledger(spool) == [("activate_version", 0)]
    t = ora.table("items")
    assert ora.query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = :1", [t]) == [(0,)]
    ingest(spool, [schema, *(record_msg("items", {"id": i}, version=1) for i in (1, 2)),
                   {"type": "ACTIVATE_VERSION", "stream": "items", "version": 1}])
    ora.load(spool, ["items"], hard_delete=hard)
    ingest(spool, [schema, {"type": "ACTIVATE_VERSION", "stream": "items", "version": 2},
                   *(record_msg("items", {"id": i}, version=2) for i in (1, 3)),
                   {"type": "ACTIVATE_VERSION", "stream": "items", "version": 2}])
    ora.load(spool, ["items"], hard_delete=hard)
    alive = ora.query(f'SELECT "ID", "SDC_TABLE_VERSION" FROM "{t}" WHERE "SDC_DELETED_AT" IS NULL ORDER BY "ID"')
    assert alive == [(1, 2), (3, 2)]
    gone = ora.query(f'SELECT "ID", "SDC_TABLE_VERSION" FROM "{t}" WHERE "SDC_DELETED_AT" IS NOT NULL ORDER BY "ID"')
    assert gone == ([] if hard else [(1, 1), (2, 1)])


def test_unicode_colliding_names_and_oracle_empty_strings(spool: Path, ora: Oracle):
    props = {"id": {"type": "integer"}, "ID": {"type": "integer"}, "e-mail": {"type": "string"},
             "名前": {"type": "string"}, "select": {"type": "string"}, "doc": {"type": "object"}}
    values = ["a\u0000b", "emoji 😀 and \u00e9", "", "quote \" and ' and \\"]
    ingest(spool, [schema_msg("uni", props, ["id"]),
                   *(record_msg("uni", {"id": i, "ID": 100 + i, "e-mail": v, "名前": v, "select": "x", "doc": {"v": v}})
                     for i, v in enumerate(values))])
    ora.load(spool, ["uni"])
    t = ora.table("uni")
    cols = [r[0] for r in ora.query("SELECT COLUMN_NAME FROM USER_TAB_COLUMNS WHERE TABLE_NAME = :1 ORDER BY COLUMN_ID", [t])]
    assert cols[:5] == ["ID", "ID_" + __import__("hashlib").sha256(b"ID").hexdigest()[:8].upper(), "E_MAIL",
                        "C_" + __import__("hashlib").sha256("名前".encode()).hexdigest()[:8].upper(), "SELECT_"]
    rows = ora.query(f'SELECT "ID", "{cols[1]}", "E_MAIL" FROM "{t}" ORDER BY "ID"')
    assert rows == [(i, 100 + i, v or None) for i, v in enumerate(values)]  # Oracle stores '' as NULL


def test_permanent_error_fails_fast_with_exit_6_and_loads_nothing(spool: Path, ora: Oracle):
    ingest(spool, users_stream(rows=[{"id": 1}, {"id": 2}]))
    t = ora.table("users")
    ora.execute(f'CREATE TABLE "{t}" ("ID" NUMBER(38) CHECK ("ID" < 0), "NAME" VARCHAR2(10 CHAR))')
    r = ora.load(spool, ["users"], expect=6)
    assert "ORA-02290" in r.stderr.decode() and "retrying" not in r.stderr.decode()
    assert ora.ledger(spool) == [] and ora.query(f'SELECT COUNT(*) FROM "{t}"') == [(0,)]


@pytest.mark.parametrize("point", ["load:after-ddl:1", "load:before-commit:2", "load:after-commit:2"])
def test_sigkill_then_resume_loads_every_record_exactly_once(spool: Path, ora: Oracle, point: str):
    ingest(spool, [schema_msg("kv", {"k": {"type": "integer"}, "v": {"type": "integer"}}, ["k"]),
                   *(record_msg("kv", {"k": i % 7, "v": i}) for i in range(40))], flush_rows=5)
    ora.load(spool, ["kv"], expect=-signal.SIGKILL, env={"SPOOL_TARGET_TEST_CRASH_AT": point}, load_method="upsert", transaction_rows=10)
    ora.load(spool, ["kv"], "--resume", load_method="upsert", transaction_rows=10)
    expected = [(k, max(i for i in range(40) if i % 7 == k)) for k in range(7)]
    assert ora.query(f'SELECT "K", "V" FROM "{ora.table("kv")}" ORDER BY "K"') == expected
    assert len(ora.ledger(spool)) == 8
    stage = ora.query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME LIKE 'SPOOL\\_STAGE\\_%' ESCAPE '\\'")
    assert stage == [(0,)]  # swept by --resume, or dropped after the commit


def test_check_and_plan_against_the_live_server(spool: Path, ora: Oracle):
    ingest(spool, users_stream(rows=[{"id": 1, "name": "a"}]))
    cfg = ora.config(["users"])
    env = {"SPOOL_TARGET_ORACLE_PASSWORD": PASSWORD or ""}
    r = run_cli("check", "--spool", str(spool), "--config", str(cfg), env=env)
    assert r.returncode in (0, 6), r.stderr.decode()
    assert b"max identifier length" in r.stdout and b"1 segment(s), 1 row(s) of 1 stream(s)" in r.stdout
    r = run_cli("plan", "--spool", str(spool), "--config", str(cfg), "--quiet", env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert f'"{ora.table("users")}"'.encode() in r.stdout
    assert ora.query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = :1", [ora.table("users")]) == [(0,)]  # plan wrote nothing
