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

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from conftest import DATA, manifest_entries, run_cli
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


# ---- load_strategy object-storage: the server reads the segments with DBMS_CLOUD.COPY_DATA ----------------
# Also needs a bucket Oracle can read and the test can write, and a DBMS_CLOUD credential for it
# (the README's "Oracle reads the Parquet itself" section says what a DBA sets up):
#   SPOOL_TARGET_TEST_ORACLE_CLOUD_URL         s3://bucket/prefix (az://, gs://) the test uploads spools under,
#                                              with the store's usual variables (AWS_*, AZURE_STORAGE_*...)
#   SPOOL_TARGET_TEST_ORACLE_CLOUD_CREDENTIAL  the credential's name (DBMS_CLOUD.CREATE_CREDENTIAL)
CLOUD_URL = os.environ.get("SPOOL_TARGET_TEST_ORACLE_CLOUD_URL", "")
CLOUD_CREDENTIAL = os.environ.get("SPOOL_TARGET_TEST_ORACLE_CLOUD_CREDENTIAL", "")
needs_cloud = pytest.mark.skipif(
    not (CLOUD_URL and CLOUD_CREDENTIAL),
    reason="set SPOOL_TARGET_TEST_ORACLE_CLOUD_URL and SPOOL_TARGET_TEST_ORACLE_CLOUD_CREDENTIAL for object-storage",
)


def _to_bucket(ora: Oracle) -> dict[str, str]:
    """The spool's manifest and segments copied to a fresh prefix, as they are; the settings that use it."""
    from spool_target.storage import open_storage

    url = f"{CLOUD_URL.rstrip('/')}/{ora.prefix.lower()}{uuid.uuid4().hex[:8]}"
    store = open_storage(url)
    for f in sorted(ora.spool.rglob("*")):
        rel = f.relative_to(ora.spool).as_posix()
        if f.is_file() and (rel == "manifest.jsonl" or rel.startswith("streams/")):
            store.put(rel, f.read_bytes())
    return {"load_strategy": "object-storage", "object_storage_url": url, "cloud_credential": CLOUD_CREDENTIAL,
            "load_method": "upsert"}


def _orders(ora: Oracle) -> list[tuple]:
    """ORDERS as exact text: what the tap sent, in Oracle's own spelling of it."""
    t = ora.table_name("orders")
    return ora.query(
        f'SELECT "ID", "CUSTOMER_NAME", TO_CHAR("AMOUNT", \'TM9\'), '
        f'TO_CHAR(SYS_EXTRACT_UTC("PLACED_AT"), \'YYYY-MM-DD"T"HH24:MI:SS.FF6\'), TO_CHAR("DUE", \'YYYY-MM-DD\'), '
        f'"PAID", "EXTRAS" FROM "{t}" ORDER BY "ID"')


EXPECTED_ORDERS = [  # tests/data/oracle_object_storage.singer, the latest record per id
    (1, "Zoë B.", ".1", "2024-03-10T06:30:00.000001", None, None, '{"gift": false}'),
    (2, "Bob", ".0000001", "2024-10-27T01:30:00.000000", "2024-04-02", 0, None),
]


@needs_cloud
def test_object_storage_loads_what_the_tap_sent_exactly_once(ora: Oracle):
    r = run_cli("ingest", "--spool", str(ora.spool), "--input", str(DATA / "oracle_object_storage.singer"))
    assert r.returncode == 0, r.stderr.decode()
    settings = _to_bucket(ora)
    check = run_cli("check", "--spool", str(ora.spool), *ora.cli_args(**settings), env=ora.env(), timeout=ora.timeout)
    assert "DBMS_CLOUD" in check.stdout.decode() and "cloud credential" in check.stdout.decode()
    assert check.returncode == 0, check.stdout.decode()  # the package, the credential and the bucket are usable
    ora.load(**settings)
    assert [tuple(row) for row in _orders(ora)] == EXPECTED_ORDERS
    assert ora.rows("readings", ["sensor", "value"]) == [("t1", 0.1)]  # through executemany (a double into NUMBER)
    assert {item for item, kind, _, _ in ora.ledger() if kind == "segment"} == \
        {e["path"] for e in manifest_entries(ora.spool) if e.get("kind") == "segment"}
    assert ora.staging_tables() == []
    ora.load(**settings)  # nothing pending: nothing loaded twice
    assert [tuple(row) for row in _orders(ora)] == EXPECTED_ORDERS


@needs_cloud
def test_object_storage_killed_after_copy_data_loads_nothing_twice(ora: Oracle):
    """COPY_DATA has committed the staging rows; the unit's transaction has not. The next run
    drops that staging table and copies again; the table gets each record once."""
    r = run_cli("ingest", "--spool", str(ora.spool), "--input", str(DATA / "oracle_object_storage.singer"))
    assert r.returncode == 0, r.stderr.decode()
    settings = _to_bucket(ora)
    ora.load(expect=-9, env={"SPOOL_TARGET_TEST_CRASH_AT": "load:before-commit:1"}, **settings)
    assert ora.staging_tables()  # what COPY_DATA committed is there, in staging only
    ora.load("--resume", **settings)
    assert [tuple(row) for row in _orders(ora)] == EXPECTED_ORDERS
    assert ora.staging_tables() == []
