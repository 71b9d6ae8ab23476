"""Recorded plans: what `load` would run on 19c, 21c and 23ai, and the Oracle rules it must keep.

No Oracle server runs here. `plan --offline --assume <version>` drives the real destination
code through a recording session (spool_target/load/oracle/session.py), so these plans are the
statements, bind types and session set-up `load` uses. Each rule is cited where it is checked.
Update the golden files with SPOOL_TARGET_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import DATA, record_msg, run_cli, schema_msg
from loadkit import ingest
from test_oracle_cli import _normalise

KEYS_SINGER = DATA / "oracle_keys_upsert.singer"


def on(version: str) -> list[str]:
    """plan's arguments for a server version (19c is the default: no option needed)."""
    return [] if version == "19c" else ["--assume", version]


def plan(spool: Path, *args: str, env: dict[str, str] | None = None, expect: int = 0) -> str:
    r = run_cli("plan", "--spool", str(spool), "--offline", "--quiet", *args, env=env)
    assert r.returncode == expect, r.stderr.decode()
    return r.stdout.decode() if expect == 0 else r.stderr.decode()


def create_table(script: str, table: str) -> str:
    m = re.search(rf'CREATE TABLE "{table}" \((.*?)\n\)\]', script, re.S)
    assert m, f"no CREATE TABLE {table} in the plan"
    return m.group(1)


def column_type(script: str, table: str, column: str) -> str:
    m = re.search(rf'^  "{column}" (.*?),?$', create_table(script, table), re.M)
    assert m, f"no column {column}"
    return m.group(1)


@pytest.fixture
def bookings(spool: Path) -> Path:
    r = run_cli("ingest", "--spool", str(spool), "--input", str(KEYS_SINGER), "--log-format", "json")
    assert r.returncode == 0, r.stderr.decode()
    return spool


@pytest.mark.parametrize("version", ["19c", "21c", "23ai"])
def test_upsert_keyed_on_a_date_time_plans_a_table_oracle_accepts(bookings: Path, version: str):
    """The acceptance case: an upsert keyed by (tenant, code, at), `at` a date-time.

    - no TIME ZONE column in the primary key (ORA-02329): `at` is TIMESTAMP(6) holding UTC;
    - the key fits one index entry (ORA-01450: the sum of the key columns' widths plus one byte
      per column, at most 6,398 bytes on an 8K block; VARCHAR2(n CHAR) counts 4n in AL32UTF8);
    - the MERGE matches keys whatever the client's time zone: the session is set to UTC first
      (thin mode would take the client host's zone: impl/thin/messages/auth.pyx) and the key
      is compared naive-UTC to naive-UTC.
    """
    script = plan(bookings, *on(version), "--load-method", "upsert")
    setup = script.index("ALTER SESSION SET TIME_ZONE = 'UTC';")
    assert setup < script.index("ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,';") < script.index("CREATE TABLE")
    body = create_table(script, "BOOKINGS")
    assert 'CONSTRAINT "BOOKINGS_PK" PRIMARY KEY ("TENANT", "CODE", "AT")' in body
    keys = {k: column_type(script, "BOOKINGS", k) for k in ("TENANT", "CODE", "AT")}
    assert keys == {"TENANT": "VARCHAR2(796 CHAR) NOT NULL", "CODE": "VARCHAR2(796 CHAR) NOT NULL", "AT": "TIMESTAMP(6) NOT NULL"}
    assert 796 * 4 * 2 + 11 + 3 <= 6398  # the index entry: both strings in AL32UTF8, the TIMESTAMP, a byte per column
    assert column_type(script, "BOOKINGS", "SDC_RECEIVED_AT") == "TIMESTAMP(6) WITH TIME ZONE"  # not a key: keeps its zone
    assert 'ON (t."TENANT" = s."TENANT" AND t."CODE" = s."CODE" AND t."AT" = s."AT")' in script
    json_type = {"19c": 'CLOB CHECK ("EXTRAS" IS JSON)', "21c": "JSON", "23ai": "JSON"}[version]
    assert column_type(script, "BOOKINGS", "EXTRAS") == json_type
    assert column_type(script, "BOOKINGS", "PAID") == ("BOOLEAN" if version == "23ai" else 'NUMBER(1) CHECK ("PAID" IN (0, 1))')
    golden = DATA / f"oracle_plan_keys_{version}.sql"  # and every other statement, as reviewed
    normal = _normalise(script, bookings)
    if os.environ.get("SPOOL_TARGET_UPDATE_GOLDEN"):
        golden.write_text(normal)
    assert normal == golden.read_text()


def test_extended_strings_still_give_keys_that_fit(bookings: Path):
    """With MAX_STRING_SIZE=EXTENDED (Autonomous Database's default) VARCHAR2(4000 CHAR) alone is 16,000 bytes."""
    script = plan(bookings, "--max-string-size", "EXTENDED", "--load-method", "upsert")
    assert "MAX_STRING_SIZE=EXTENDED" in script.splitlines()[2]
    assert column_type(script, "BOOKINGS", "TENANT") == "VARCHAR2(796 CHAR) NOT NULL"
    ingest(bookings, [schema_msg("notes", {"slug": {"type": "string"}, "body": {"type": "string"}}, ["slug"]),
                      record_msg("notes", {"slug": "a", "body": "x"})])
    script = plan(bookings, "--max-string-size", "EXTENDED", "--load-method", "upsert")
    assert column_type(script, "NOTES", "SLUG") == "VARCHAR2(1597 CHAR) NOT NULL"  # (6398 - 1 - 9) // 4
    assert column_type(script, "NOTES", "BODY") == "VARCHAR2(4000 CHAR)"  # not a key: the usual length


def test_a_key_too_long_for_an_index_or_a_clob_key_is_refused_before_anything_runs(spool: Path):
    """A CLOB key fails every MERGE (ORA-00932: a LOB cannot be compared), and keys whose declared
    lengths exceed one index entry fail the CREATE TABLE (ORA-01450): say so, with the fix."""
    ingest(spool, [schema_msg("docs", {"id": {"type": "string", "maxLength": 5000}, "v": {"type": "integer"}}, ["id"]),
                   record_msg("docs", {"id": "a", "v": 1})])
    err = plan(spool, "--load-method", "upsert", expect=6)
    assert "table DOCS: key column ID would be CLOB, which Oracle cannot compare or index" in err
    assert "give the key properties a maxLength" in err and "column_types" in err
    # append-only compares no keys: the same stream loads, without a primary key
    script = plan(spool)
    assert column_type(script, "DOCS", "ID") == "CLOB" and "PRIMARY KEY" not in create_table(script, "DOCS")


def test_two_long_declared_keys_are_refused_with_the_byte_count(spool: Path):
    props = {"a": {"type": "string", "maxLength": 1000}, "b": {"type": "string", "maxLength": 1000}}
    ingest(spool, [schema_msg("pairs", props, ["a", "b"]), record_msg("pairs", {"a": "x", "b": "y"})])
    err = plan(spool, "--load-method", "upsert", expect=6)
    assert "the key columns (A VARCHAR2(1000 CHAR), B VARCHAR2(1000 CHAR)) take more than the 6,398 bytes" in err
    assert "ORA-01450" in err


def test_json_and_text_in_one_unit_make_a_plain_clob(spool: Path):
    """Finding 4, within one unit: widen(json, string) is json in the spool; an IS JSON column would
    then refuse the string `hello` (ORA-02290; ORA-40441 for native JSON)."""
    ingest(spool, [schema_msg("m", {"id": {"type": "integer"}, "v": {"type": "object"}}, ["id"]),
                   record_msg("m", {"id": 1, "v": {"a": 1}}),
                   schema_msg("m", {"id": {"type": "integer"}, "v": {"type": "string"}}, ["id"]),
                   record_msg("m", {"id": 2, "v": "hello"})])
    for version in ("19c", "21c"):
        script = plan(spool, *on(version))
        assert column_type(script, "M", "V") == "CLOB"  # no IS JSON, not JSON


def test_json_then_text_in_a_later_unit_drops_the_json_check(spool: Path):
    """Finding 4, across units: the column is CLOB IS JSON already; the text must not meet the check."""
    ingest(spool, [schema_msg("m", {"id": {"type": "integer"}, "v": {"type": "object"}}, ["id"]),
                   record_msg("m", {"id": 1, "v": {"a": 1}})])
    ingest(spool, [schema_msg("m", {"id": {"type": "integer"}, "v": {"type": "string"}}, ["id"]),
                   record_msg("m", {"id": 2, "v": "hello"})])
    script = plan(spool, env={"SPOOL_TARGET_TRANSACTION_ROWS": "1"})
    assert column_type(script, "M", "V") == 'CLOB CHECK ("V" IS JSON)'  # the first unit's
    retype = script[script.index("-- table M: widen column V to CLOB (plain text: no IS JSON check)"):]
    tmp = re.search(r'ADD \("(SPOOL_W_[0-9A-F]{8})" CLOB\)', retype).group(1)
    assert f'UPDATE "M" SET "{tmp}" = "V" WHERE' in retype and f'RENAME COLUMN "{tmp}" TO "V"' in retype
    assert retype.index(f'RENAME COLUMN "{tmp}" TO "V"') < retype.index('INSERT INTO "M"')  # before the text is bound


def test_json_scalars_make_the_column_plain_text_where_is_json_refuses_them(spool: Path):
    """Finding 6: before COMPATIBLE 20, IS JSON takes only objects and arrays (RFC 4627; JSON Developer's
    Guide, "Support for RFC 8259: JSON Scalars"). A mixed-type property spools "abc" and 5 as JSON text."""
    ingest(spool, [schema_msg("m", {"id": {"type": "integer"}, "v": {"type": ["object", "string", "integer"]},
                                    "doc": {"type": "object"}}, ["id"]),
                   record_msg("m", {"id": 1, "v": {"a": 1}, "doc": {"x": 1}}),
                   record_msg("m", {"id": 2, "v": "abc", "doc": {"y": [2]}}),
                   record_msg("m", {"id": 3, "v": 5, "doc": None})])
    r = run_cli("plan", "--spool", str(spool), "--offline", "--log-format", "json")
    assert r.returncode == 0, r.stderr.decode()
    script = r.stdout.decode()
    assert "column V of table M holds JSON scalars" in r.stderr.decode()
    retype = script[script.index("-- table M: widen column V to CLOB (plain text: no IS JSON check)"):]
    assert retype.index("RENAME COLUMN") < retype.index('INSERT INTO "M"')
    assert column_type(script, "M", "DOC") == 'CLOB CHECK ("DOC" IS JSON)'  # objects only: keeps its check
    assert "widen column DOC" not in script
    on21 = plan(spool, "--assume", "21c")  # scalars are JSON from COMPATIBLE 20 on
    assert column_type(on21, "M", "V") == "JSON" and "widen column" not in on21


def test_long_json_for_a_native_json_column_is_staged_as_clob(spool: Path):
    """A VARCHAR bind longer than the server's string limit is sent as a long bind
    (impl/thin/messages/base.pyx, _write_bind_params: buffer_size > max_string_size), which a
    JSON column does not take; as LONG into a CLOB staging column it works (the driver's test 1212),
    and INSERT ... SELECT converts the CLOB's text to JSON."""
    big = {"k": "x" * 5000}
    ingest(spool, [schema_msg("m", {"id": {"type": "integer"}, "doc": {"type": "object"}}, ["id"]),
                   record_msg("m", {"id": 1, "doc": big})])
    script = plan(spool, "--assume", "21c")
    assert column_type(script, "M", "DOC") == "JSON"
    stage = re.search(r'CREATE TABLE "(SPOOL_STAGE_\w+)" \((.*?)\n\)', script, re.S)
    assert stage and '"DOC" CLOB' in stage.group(2)
    feed = re.search(rf'INSERT INTO "{stage.group(1)}" \(.*\n-- executemany: .*', script).group(0)
    assert feed.endswith("DB_TYPE_LONG")  # DOC goes last, as LONG
    assert 'INSERT INTO "M" ("ID", "DOC", ' in script and f'FROM "{stage.group(1)}" s' in script
    small = spool.parent / "small"
    ingest(small, [schema_msg("m", {"id": {"type": "integer"}, "doc": {"type": "object"}}, ["id"]),
                   record_msg("m", {"id": 1, "doc": {"k": "short"}})])
    assert "SPOOL_STAGE_" not in plan(small, "--assume", "21c")  # short JSON binds straight into the table


def test_plan_online_only_options_are_refused_without_offline(spool: Path):
    ingest(spool, [schema_msg("m", {"id": {"type": "integer"}}, ["id"]), record_msg("m", {"id": 1})])
    r = run_cli("plan", "--spool", str(spool), "--assume", "21c", "--destination", "oracle://u@127.0.0.1:1/X")
    assert r.returncode == 2 and b"--assume and --max-string-size only apply with --offline" in r.stderr
    r = run_cli("plan", "--spool", str(spool), "--offline", "--assume", "18c")
    assert r.returncode == 2 and b"--assume '18c' is not a server this plan knows" in r.stderr
