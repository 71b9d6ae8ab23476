"""`spool-target sql` and `inspect` on real spools, and the docs' three questions run exactly as written."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from conftest import DATA, record_msg, run_cli, schema_msg
from opskit import cli, ingest, query, sql, users

ROOT = Path(__file__).resolve().parent.parent
OPERATING = ROOT / "README.md"


def doc_queries() -> list[str]:
    section = OPERATING.read_text().split("### Three questions, answered", 1)[1].split("\n### ", 1)[0]
    return [q.strip() for q in re.findall(r"```sql\n(.*?)```", section, re.S)]


@pytest.fixture
def history_spool(tmp_path: Path) -> Path:
    """The docs' scenario: users changes schema (email added), user 42 in both; some records rejected."""
    spool = tmp_path / "spool"
    r = run_cli("ingest", "--spool", str(spool), "--input", str(DATA / "ops_users_history.singer"), "--log-format", "json")
    assert r.returncode == 0, r.stderr.decode()
    return spool


def test_the_docs_three_questions_run_as_written(history_spool: Path, tmp_path: Path) -> None:
    queries = doc_queries()
    assert len(queries) == 6, "the README's three questions changed: update this test with them"
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    per_day, extracted, before_after, schemas, reasons, records = (sql(history_spool, q) for q in queries)

    assert [(r["stream"], r["day"], r["segments"], r["rows"]) for r in per_day] == [
        ("orders", today, 1, 2),
        ("users", today, 2, 7),
    ]
    assert [(r["day"], r["rows"]) for r in extracted] == [("2024-05-01", 4), ("2024-05-02", 3)]
    assert [(r["schema_version"], r["name"], r["email"]) for r in before_after] == [
        (1, "Ada", None),
        (2, "Ada Lovelace", "ada@example.com"),
    ]
    assert [sorted(json.loads(r["json_schema"])["properties"]) for r in schemas] == [["id", "name"], ["email", "id", "name"]]
    assert sorted((r["stream"], r["reason"], r["records"]) for r in reasons) == [
        ("orders", "property 'amount': expected a number, got \"12,50\"", 1),
        ("users", "key property 'id' is missing or null", 1),
        ("users", "property 'id': expected an integer that fits in 64 bits, got \"seven\"", 1),
    ]
    assert sorted((r["stream"], r["line"]) for r in records) == [("orders", 15), ("users", 6), ("users", 12)]
    assert json.loads(next(r["raw"] for r in records if r["line"] == 6))["record"] == {"id": "seven", "name": "Seven"}

    # The same queries, unchanged, in DuckDB itself on the database `inspect` writes.
    out = cli("inspect", "--spool", str(history_spool)).stdout.decode()
    db = history_spool / "inspect.duckdb"
    assert f"duckdb -readonly {db.resolve()}" in out
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        results = [con.sql(q).fetchall() for q in queries]
    finally:
        con.close()
    assert [len(r) for r in results] == [2, 2, 2, 2, 3, 3]
    assert results[2][1][2:] == (42, "Ada Lovelace", "ada@example.com")


def test_views_read_only_committed_segments_and_follow_load_and_prune(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, users(range(5)), env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "2"})
    # Files nobody committed: a stray segment (a crash before its manifest entry) and a quarantined one.
    stream_dir = next((spool / "streams").iterdir())
    committed = sorted(stream_dir.glob("*.parquet"))
    shutil.copy(committed[0], stream_dir / "999999999-stray.parquet")
    (spool / "quarantine").mkdir()
    shutil.copy(committed[0], spool / "quarantine" / "x--000000009-x.parquet")

    before = "SELECT (SELECT list(id ORDER BY id) FROM users) AS ids, (SELECT list(state ORDER BY n) FROM segments) AS states"
    assert sql(spool, before) == [{"ids": [0, 1, 2, 3, 4], "states": ["pending"] * 3}]
    cli("load", "--spool", str(spool), "--log-format", "json")
    states = "SELECT list(state ORDER BY n) AS states FROM segments"
    assert sql(spool, states) == [{"states": ["loaded"] * 3}]
    assert sql(spool, states, "--offline") == [{"states": ["unknown"] * 3}]
    r = cli("inspect", "--spool", str(spool), "--db", str(spool / "spool.duckdb"), "--log-format", "text", expect=2)
    assert b"is not a database written by `spool-target inspect`; it is left alone" in r.stderr
    assert query(spool / "spool.duckdb", "SELECT count(*) FROM users") == [(5,)]

    (stream_dir / "999999999-stray.parquet").unlink()
    cli("prune", "--spool", str(spool), "--log-format", "json")
    after = ("SELECT (SELECT list(state ORDER BY n) FROM segments) AS states, (SELECT count(*) FROM users) AS rows, "
             "(SELECT list(column_name) FROM (DESCRIBE users)) AS columns, "
             "(SELECT count(*) FROM manifest WHERE kind = 'pruned') AS pruned")
    (found,) = sql(spool, after)
    assert found["states"] == ["pruned"] * 3 and found["rows"] == 0 and found["pruned"] == 3
    assert found["columns"][:2] == ["id", "name"]  # no files left, the columns stay


def test_output_formats_and_names_that_need_quoting(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, [
        schema_msg("public-Orders", {"id": {"type": "integer"}, "note": {"type": "string"}}, ["id"]),
        record_msg("public-Orders", {"id": 1, "note": "a, \"quoted\" | piped"}),
        schema_msg("segments", {"id": {"type": "integer"}}, ["id"]),  # a stream named like a spool view
        record_msg("segments", {"id": 7}),
    ])
    csv_out = cli("sql", "--spool", str(spool), 'SELECT id, note FROM "public-Orders"').stdout.decode()
    assert csv_out == 'id,note\n1,"a, ""quoted"" | piped"\n'  # csv is the default off a terminal
    md = cli("sql", "--spool", str(spool), "-f", "markdown", 'SELECT id, note FROM "public-Orders"').stdout.decode()
    assert md.splitlines() == ["| id | note |", "| ---: | --- |", '| 1 | a, "quoted" \\| piped |']
    table = cli("sql", "--spool", str(spool), "-f", "table", "-", input=b"SELECT 1 AS x, NULL AS y").stdout.decode()
    assert table.splitlines() == ["x  y", "-  ----", "1  NULL", "(1 row)"]
    # A stream named like a spool view wins the name; the spool's view stays in the schema spool.
    both = "SELECT (SELECT list(id) FROM segments) AS ids, (SELECT list(stream ORDER BY stream) FROM spool.segments) AS streams"
    assert sql(spool, both) == [{"ids": [7], "streams": ["public-Orders", "segments"]}]

    bad = cli("sql", "--spool", str(spool), "--log-format", "text", "SELECT * FROM public-Orders", expect=5)
    assert b"query failed" in bad.stderr and b'double quotes: SELECT * FROM "public-users"' in bad.stderr
    assert cli("sql", "--spool", str(spool), "--log-format", "text", "-f", "yaml", "SELECT 1", expect=2).stderr.startswith(b"error: --format 'yaml'")
