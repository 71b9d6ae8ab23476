"""Oracle-only commands against a live server: `check` and `plan` (online).

The engine's load scenarios run on Oracle through the ``dest`` fixture of
tests/test_load_e2e.py and tests/test_load_faults.py (tests/destinations.py);
these are the commands DuckDB has no counterpart for. Like those, they carry
the ``oracle`` marker and run only where a database is reachable:

    scripts/oracle_live.sh [--db xe]     # Oracle in Docker, then pytest -m oracle

or, with SPOOL_TARGET_TEST_ORACLE_DSN, _USER and _PASSWORD set for a server of
your own, ``pytest -m oracle``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from destinations import NO_ORACLE, ORACLE_CONFIGURED, Oracle
from loadkit import ingest, users_stream

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(not ORACLE_CONFIGURED, reason=NO_ORACLE)]


@pytest.fixture
def ora(tmp_path: Path) -> Iterator[Oracle]:
    db = Oracle(tmp_path, "insert")
    try:
        yield db
    finally:
        db.close()


def test_check_reports_the_server_the_privileges_and_what_is_pending(ora: Oracle):
    ingest(ora.spool, users_stream(rows=[{"id": 1, "name": "a"}]))
    r = ora.cli("check")
    assert r.returncode in (0, 6), r.stderr.decode()  # 6: something is missing, and the report says what
    out = r.stdout.decode()
    assert "max identifier length" in out and "MAX_STRING_SIZE" in out and "JSON columns" in out
    assert "privilege CREATE TABLE" in out and "tablespace quota" in out
    assert "1 segment(s), 1 row(s) of 1 stream(s)" in out
    if r.returncode == 6:
        assert "GRANT " in out or "QUOTA UNLIMITED ON" in out


def test_plan_online_reads_the_tables_and_the_ledger_and_writes_nothing(ora: Oracle):
    table = ora.table_name("users")
    ingest(ora.spool, users_stream(rows=[{"id": 1, "name": "a"}], properties={
        "id": {"type": "integer"}, "name": {"type": ["string", "null"], "maxLength": 10}}))
    ora.load()
    ingest(ora.spool, users_stream(rows=[{"id": 2, "name": "b" * 40}]))
    ledger = ora.ledger()
    r = ora.cli("plan", "--quiet")
    assert r.returncode == 0, r.stderr.decode()
    script = r.stdout.decode()
    assert not [line for line in script.splitlines() if "CREATE TABLE" in line and table in line]  # it exists
    assert 'MODIFY ("NAME" VARCHAR2(' in script  # 40 characters do not fit the VARCHAR2(10 CHAR) column
    assert script.count('INSERT INTO "') >= 1 and script.rstrip().endswith("COMMIT;")
    assert "1 transaction(s), 1 segment(s), 1 row(s) pending" in script
    # a plan only reads: the table, its columns and the ledger are as they were
    assert ora.ledger() == ledger and ora.rows("users", ["id", "name"]) == [(1, "a")]
    assert ora.column_types("users")["NAME"] == "VARCHAR2"
    assert ora.query("SELECT CHAR_LENGTH FROM USER_TAB_COLUMNS WHERE TABLE_NAME = :1 AND COLUMN_NAME = 'NAME'",
                     [table]) == [(10,)]
