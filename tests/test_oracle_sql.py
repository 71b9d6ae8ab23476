"""Golden tests for every statement the Oracle destination generates.

No Oracle server runs here, so these texts are what was reviewed; the README's Oracle section
says which of them were never executed against a live server.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from spool_target.load.destination import ColumnSpec
from spool_target.load.options import OracleOptions
from spool_target.load.oracle.binds import BindColumn, bind_order
from spool_target.load.oracle.connect import ConnectSettings
from spool_target.load.oracle.destination import OracleDestination
from spool_target.load.oracle.session import CatalogColumn, RecordingSession, render
from spool_target.load.oracle.sql import ColumnDDL, OracleSQL, StagedColumn, Statement, can_modify_in_place, h8, text_expr
from spool_target.load.oracle.types import OFFLINE_FEATURES, UNBOUNDED, parse_type
from spool_target.naming import ORACLE, ORACLE_30, TableRef

SQL = OracleSQL(ORACLE, "APP")
USERS = TableRef(None, "USERS")
T = parse_type


def test_ledger_statements():
    create = SQL.create_ledger()
    assert create.sql == (
        'CREATE TABLE "APP"."SPOOL_LEDGER" (\n'
        '  "SPOOL_ID" VARCHAR2(64 CHAR) NOT NULL,\n'
        '  "ITEM" VARCHAR2(512 CHAR) NOT NULL,\n'
        '  "KIND" VARCHAR2(32 CHAR) NOT NULL,\n'
        '  "STREAM" VARCHAR2(1000 CHAR) NOT NULL,\n'
        '  "TABLE_NAME" VARCHAR2(300 CHAR) NOT NULL,\n'
        '  "ROW_COUNT" NUMBER(19) NOT NULL,\n'
        '  "SHA256" VARCHAR2(64 CHAR),\n'
        '  "RUN_ID" VARCHAR2(64 CHAR) NOT NULL,\n'
        '  "LOADED_AT" TIMESTAMP(6) WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,\n'
        '  CONSTRAINT "SPOOL_LEDGER_PK" PRIMARY KEY ("SPOOL_ID", "ITEM")\n'
        ")"
    )
    assert create.done == ("ORA-00955",)
    assert SQL.read_ledger().sql == (
        'SELECT "ITEM", "KIND", "STREAM", "TABLE_NAME", "ROW_COUNT", SYS_EXTRACT_UTC("LOADED_AT") '
        'FROM "APP"."SPOOL_LEDGER" WHERE "SPOOL_ID" = :1'
    )
    assert SQL.ledger_items_in(3).sql == 'SELECT "ITEM" FROM "APP"."SPOOL_LEDGER" WHERE "SPOOL_ID" = :1 AND "ITEM" IN (:2, :3, :4)'
    assert SQL.insert_ledger().sql == (
        'INSERT INTO "APP"."SPOOL_LEDGER" ("SPOOL_ID", "ITEM", "KIND", "STREAM", "TABLE_NAME", "ROW_COUNT", "SHA256", "RUN_ID") '
        "VALUES (:1, :2, :3, :4, :5, :6, :7, :8)"
    )
    assert OracleSQL(ORACLE, None).ledger == '"SPOOL_LEDGER"'


def test_create_table_with_key_checks_and_a_long_name_at_30_bytes():
    cols = [ColumnDDL("ID", "NUMBER(38)"), ColumnDDL("OK", "NUMBER(1)", ' CHECK ("OK" IN (0, 1))'),
            ColumnDDL("DOC", "CLOB", ' CHECK ("DOC" IS JSON)')]
    assert SQL.create_table(TableRef("CRM", "USERS"), cols, ["ID"]).sql == (
        'CREATE TABLE "CRM"."USERS" (\n'
        '  "ID" NUMBER(38) NOT NULL,\n'
        '  "OK" NUMBER(1) CHECK ("OK" IN (0, 1)),\n'
        '  "DOC" CLOB CHECK ("DOC" IS JSON),\n'
        '  CONSTRAINT "USERS_PK" PRIMARY KEY ("ID")\n'
        ")"
    )
    assert SQL.create_table(USERS, cols[:1], []).sql == 'CREATE TABLE "APP"."USERS" (\n  "ID" NUMBER(38)\n)'
    long = "CUSTOMER_LIFETIME_VALUE_HISTORY"[:30]
    pk = OracleSQL(ORACLE_30, None).constraint_name(long, "PK")
    assert len(pk) == 30 and pk == f"{long[:18]}_{h8(long)}_PK"


def test_add_and_modify_columns():
    add = SQL.add_column(USERS, ColumnDDL("NOTE", "VARCHAR2(4000 CHAR)"))
    assert add.sql == 'ALTER TABLE "APP"."USERS" ADD ("NOTE" VARCHAR2(4000 CHAR))' and add.done == ("ORA-01430",)
    assert SQL.modify_column(USERS, "NOTE", "VARCHAR2(8000 CHAR)").sql == 'ALTER TABLE "APP"."USERS" MODIFY ("NOTE" VARCHAR2(8000 CHAR))'
    assert can_modify_in_place(T("VARCHAR2(10 CHAR)"), T("VARCHAR2(20 CHAR)"))
    assert can_modify_in_place(T("NUMBER(38)"), T("NUMBER"))
    assert not can_modify_in_place(T("VARCHAR2(10 CHAR)"), T("CLOB"))
    assert not can_modify_in_place(T("NUMBER(38)"), T("BINARY_DOUBLE"))
    assert not can_modify_in_place(T("DATE"), T("TIMESTAMP(6) WITH TIME ZONE"))


def test_clob_widening_is_four_idempotent_steps():
    steps = SQL.retype_steps(USERS, "BIO", T("VARCHAR2(4000 CHAR)"), "string", ColumnDDL("BIO", "CLOB"), T("CLOB"))
    tmp = f"SPOOL_W_{h8('BIO')}"
    assert [s.sql for s in steps] == [
        f'ALTER TABLE "APP"."USERS" ADD ("{tmp}" CLOB)',
        f'UPDATE "APP"."USERS" SET "{tmp}" = TO_CLOB("BIO") WHERE "BIO" IS NOT NULL AND "{tmp}" IS NULL',
        'ALTER TABLE "APP"."USERS" DROP COLUMN "BIO"',
        f'ALTER TABLE "APP"."USERS" RENAME COLUMN "{tmp}" TO "BIO"',
    ]
    assert [s.done for s in steps] == [("ORA-01430",), (), ("ORA-00904",), ()]
    assert [s.sql for s in SQL.retype_steps(USERS, "BIO", T("CLOB"), "string", ColumnDDL("BIO", "CLOB"), T("CLOB"), from_step=4)] == [
        f'ALTER TABLE "APP"."USERS" RENAME COLUMN "{tmp}" TO "BIO"'
    ]


@pytest.mark.parametrize(
    "old,logical,new,expr",
    [
        ("NUMBER(38)", "integer", "VARCHAR2(20 CHAR)", 'TO_CHAR("C")'),
        ("NUMBER", "number", "VARCHAR2(40 CHAR)",
         """CASE WHEN "C" > -1 AND "C" < 1 AND "C" <> 0 THEN REPLACE(TO_CHAR("C", 'TM9'), '.', '0.') ELSE TO_CHAR("C", 'TM9') END"""),
        ("NUMBER(1)", "boolean", "VARCHAR2(20 CHAR)", """CASE "C" WHEN 1 THEN 'true' WHEN 0 THEN 'false' END"""),
        ("BOOLEAN", "boolean", "VARCHAR2(20 CHAR)", """CASE WHEN "C" THEN 'true' WHEN NOT "C" THEN 'false' END"""),
        ("TIMESTAMP(6) WITH TIME ZONE", "timestamp", "VARCHAR2(27 CHAR)",
         """TO_CHAR(SYS_EXTRACT_UTC("C"), 'YYYY-MM-DD"T"HH24:MI:SS.FF6"Z"')"""),
        ("DATE", "date", "CLOB", """TO_CHAR("C", 'YYYY-MM-DD')"""),
        ("JSON", "json", "CLOB", 'JSON_SERIALIZE("C" RETURNING CLOB)'),
        ("DATE", "date", "TIMESTAMP(6) WITH TIME ZONE", """FROM_TZ(CAST("C" AS TIMESTAMP(6)), 'UTC')"""),
        ("DATE", "date", "TIMESTAMP(6)", 'CAST("C" AS TIMESTAMP(6))'),
        ("NUMBER(38)", "integer", "BINARY_DOUBLE", 'TO_BINARY_DOUBLE("C")'),
    ],
)
def test_values_are_converted_like_new_ones_during_a_widening(old: str, logical: str, new: str, expr: str):
    steps = SQL.retype_steps(USERS, "C", T(old, is_json=logical == "json"), logical, ColumnDDL("C", new), T(new))
    assert steps[1].sql == f'UPDATE "APP"."USERS" SET "SPOOL_W_{h8("C")}" = {expr} WHERE "C" IS NOT NULL AND "SPOOL_W_{h8("C")}" IS NULL'
    assert text_expr('"C"', T("VARCHAR2(5 CHAR)"), "string") == '"C"'


def test_insert_binds_timestamps_through_from_tz_and_clobs_last():
    binds = [
        BindColumn("BIO", "string", T("CLOB")),
        BindColumn("ID", "integer", T("NUMBER(38)")),
        BindColumn("AT", "timestamp", T("TIMESTAMP(6) WITH TIME ZONE")),
        BindColumn("DAY", "date", T("TIMESTAMP(6) WITH TIME ZONE")),
        BindColumn("PLAIN", "timestamp", T("TIMESTAMP(6)")),
    ]
    ordered = bind_order(binds)
    assert [b.name for b in ordered] == ["ID", "AT", "DAY", "PLAIN", "BIO"]
    assert SQL.insert_values(SQL.table(USERS), ordered).sql == (
        'INSERT INTO "APP"."USERS" ("ID", "AT", "DAY", "PLAIN", "BIO") '
        "VALUES (:1, FROM_TZ(:2, 'UTC'), FROM_TZ(:3, 'UTC'), :4, :5)"
    )


def S(name: str, target: str, stage: str | None = None) -> StagedColumn:
    """A staged column: the table's type, and the staging table's (by default what stage_type gives)."""
    t = T(target)
    return StagedColumn(name, t, T(stage or ("TIMESTAMP(6)" if t.family in ("tstz", "timestamp") else target)))


def test_merge_latest_record_per_key_soft_and_hard():
    staged = [S("ID", "NUMBER(38)"), S("NAME", "VARCHAR2(100 CHAR)"), S("SDC_SEQUENCE", "NUMBER(38)"),
              S("SDC_DELETED_AT", "TIMESTAMP(6) WITH TIME ZONE")]
    soft = SQL.merge(USERS, "SPOOL_STAGE_A_B", ["ID"], staged, ["OLD"], meta_sequence="SDC_SEQUENCE",
                     meta_deleted="SDC_DELETED_AT", hard=False)
    assert soft.sql == (
        'MERGE INTO "APP"."USERS" t\n'
        "USING (\n"
        '  SELECT "ID", "NAME", "SDC_SEQUENCE", "SDC_DELETED_AT"\n'
        "  FROM (\n"
        '    SELECT s.*, ROW_NUMBER() OVER (PARTITION BY s."ID" ORDER BY s."SDC_SEQUENCE" DESC) AS SPOOL_RN\n'
        '    FROM "APP"."SPOOL_STAGE_A_B" s\n'
        "  )\n"
        "  WHERE SPOOL_RN = 1\n"
        ") s\n"
        'ON (t."ID" = s."ID")\n'
        "WHEN MATCHED THEN UPDATE SET\n"
        '  t."NAME" = s."NAME",\n'
        '  t."SDC_SEQUENCE" = s."SDC_SEQUENCE",\n'
        """  t."SDC_DELETED_AT" = FROM_TZ(s."SDC_DELETED_AT", 'UTC'),\n"""
        '  t."OLD" = NULL\n'
        '  WHERE t."SDC_SEQUENCE" IS NULL OR t."SDC_SEQUENCE" < s."SDC_SEQUENCE"\n'  # a replayed reject never undoes a later record
        'WHEN NOT MATCHED THEN INSERT ("ID", "NAME", "SDC_SEQUENCE", "SDC_DELETED_AT")\n'
        """  VALUES (s."ID", s."NAME", s."SDC_SEQUENCE", FROM_TZ(s."SDC_DELETED_AT", 'UTC'))"""
    )
    hard = SQL.merge(USERS, "SPOOL_STAGE_A_B", ["ID"], staged, [], meta_sequence="SDC_SEQUENCE",
                     meta_deleted="SDC_DELETED_AT", hard=True)
    assert ('  WHERE t."SDC_SEQUENCE" IS NULL OR t."SDC_SEQUENCE" < s."SDC_SEQUENCE"\n'
            '  DELETE WHERE t."SDC_DELETED_AT" IS NOT NULL\nWHEN NOT MATCHED') in hard.sql
    assert hard.sql.endswith('\n  WHERE s."SDC_DELETED_AT" IS NULL')
    two_keys = SQL.merge(USERS, "S", ["A", "B"], [S("A", "NUMBER(38)"), S("B", "NUMBER(38)"), S("SDC_SEQUENCE", "NUMBER(38)")],
                         [], meta_sequence="SDC_SEQUENCE", meta_deleted="SDC_DELETED_AT", hard=False)
    assert 'PARTITION BY s."A", s."B"' in two_keys.sql and 'ON (t."A" = s."A" AND t."B" = s."B")' in two_keys.sql


def test_time_zone_keys_are_matched_as_instants_never_through_the_session_zone():
    """Finding 2: a TIME ZONE key column compared with a naive staged value converts the staged value
    through the session time zone, which thin mode takes from the client host
    (impl/thin/messages/auth.pyx, _get_alter_timezone_statement). Keys are compared as instants."""
    staged = [S("TENANT", "VARCHAR2(10 CHAR)"), S("AT", "TIMESTAMP(6) WITH TIME ZONE"), S("SEQ", "NUMBER(38)")]
    merge = SQL.merge(USERS, "STG", ["TENANT", "AT"], staged, [], meta_sequence="SEQ", meta_deleted="DEL", hard=False)
    assert """ON (t."TENANT" = s."TENANT" AND t."AT" = FROM_TZ(s."AT", 'UTC'))""" in merge.sql
    assert SQL.delete_deleted_keys(USERS, "STG", staged[:2], "DEL").sql == (
        'DELETE FROM "APP"."USERS" t\nWHERE (t."TENANT", t."AT") IN '
        """(SELECT d."TENANT", FROM_TZ(d."AT", 'UTC') FROM "APP"."STG" d WHERE d."DEL" IS NOT NULL)"""
    )
    # a key created by this loader is TIMESTAMP(6) holding UTC: compared as it is
    naive = SQL.merge(USERS, "STG", ["AT"], [S("AT", "TIMESTAMP(6)"), S("SEQ", "NUMBER(38)")], [],
                      meta_sequence="SEQ", meta_deleted="DEL", hard=False)
    assert 'ON (t."AT" = s."AT")' in naive.sql


def test_merge_leaves_columns_that_are_not_the_streams_alone():
    """Finding 7: columns of the table the stream does not have (a DBA's) are never set."""
    from pathlib import Path

    from spool_target.load.destination import (
        ColumnInfo, DeleteMode, LedgerRow, LoadUnit, MetaColumns, SegmentStep, SourceColumn, WriteMode,
    )
    from spool_target.load.oracle.types import OracleTypes, TypeSettings
    from spool_target.load.oracle.unit import UnitBuilder

    cols = {n: ColumnInfo(n, t, lg) for n, t, lg in [
        ("ID", "NUMBER(38)", "integer"), ("NAME", "VARCHAR2(100 CHAR)", "string"), ("PHONE", "VARCHAR2(20 CHAR)", "string"),
        ("SDC_SEQUENCE", "NUMBER(38)", "integer"), ("SDC_DELETED_AT", "TIMESTAMP(6) WITH TIME ZONE", "timestamp"),
        ("SDC_TABLE_VERSION", "NUMBER(38)", "integer"), ("AUDIT_NOTE", "VARCHAR2(200 CHAR)", "string")]}
    step = SegmentStep("streams/u/1.parquet", Path("/nonexistent"), 1, tuple(
        SourceColumn(i, n.lower(), n, t) for i, (n, t) in enumerate(
            [("ID", "integer"), ("NAME", "string"), ("SDC_SEQUENCE", "integer"), ("SDC_DELETED_AT", "timestamp")])), False)
    unit = LoadUnit("u", USERS, cols, WriteMode.UPSERT, DeleteMode.SOFT, ("ID",),
                    MetaColumns("SDC_SEQUENCE", "SDC_DELETED_AT", "SDC_TABLE_VERSION"), (step,),
                    (LedgerRow("s", step.item, "segment", "u", "USERS", 1, "x", "r"),),
                    stream_columns=("ID", "NAME", "PHONE", "SDC_SEQUENCE", "SDC_DELETED_AT", "SDC_TABLE_VERSION"))
    prog = UnitBuilder(SQL, OracleTypes(OFFLINE_FEATURES, TypeSettings()), unit, cols, direct=False, schema="APP").build()
    (merge,) = [a.stmt.sql for a in prog.work if hasattr(a, "stmt") and a.stmt.sql.startswith("MERGE")]
    assert 't."PHONE" = NULL' in merge and 't."SDC_TABLE_VERSION" = NULL' in merge  # the stream's, not in this record
    assert "AUDIT_NOTE" not in merge  # added by a DBA: kept


def test_append_with_hard_deletes_and_overwrite_and_activate_version():
    staged = [S("ID", "NUMBER(38)"), S("AT", "TIMESTAMP(6) WITH TIME ZONE")]
    assert SQL.insert_from_stage(USERS, "STG", staged).sql == (
        'INSERT INTO "APP"."USERS" ("ID", "AT")\nSELECT s."ID", FROM_TZ(s."AT", \'UTC\')\nFROM "APP"."STG" s'
    )
    assert SQL.insert_from_stage(USERS, "STG", staged, keys=["ID"], meta_deleted="DEL", meta_sequence="SEQ").sql.endswith(
        '\nWHERE s."DEL" IS NULL\n  AND NOT EXISTS (SELECT 1 FROM "APP"."STG" d WHERE d."DEL" IS NOT NULL AND d."ID" = s."ID" AND d."SEQ" > s."SEQ")'
    )
    assert SQL.delete_deleted_keys(USERS, "STG", [S("ID", "NUMBER(38)"), S("K2", "NUMBER(38)")], "DEL").sql == (
        'DELETE FROM "APP"."USERS" t\nWHERE (t."ID", t."K2") IN (SELECT d."ID", d."K2" FROM "APP"."STG" d WHERE d."DEL" IS NOT NULL)'
    )
    assert SQL.delete_all(USERS).sql == 'DELETE FROM "APP"."USERS"'
    assert SQL.activate_version(USERS, "V", "D", T("TIMESTAMP(6) WITH TIME ZONE"), hard=True).sql == (
        'DELETE FROM "APP"."USERS" WHERE "V" IS NULL OR "V" < :1')


def test_activate_version_binds_its_time_as_a_timestamp():
    """Finding 1: a datetime bound without setinputsizes is a DATE (python-oracledb
    impl/base/metadata.pyx, OracleMetadata.from_value: PY_TYPE_DATETIME -> DB_TYPE_DATE): FROM_TZ
    refuses it (ORA-00932) and a DATE keeps no microseconds. It is bound as DB_TYPE_TIMESTAMP."""
    import oracledb

    tstz = SQL.activate_version(USERS, "SDC_TABLE_VERSION", "SDC_DELETED_AT", T("TIMESTAMP(6) WITH TIME ZONE"), hard=False)
    assert tstz.sql == (
        """UPDATE "APP"."USERS" SET "SDC_DELETED_AT" = FROM_TZ(CAST(:1 AS TIMESTAMP(6)), 'UTC') """
        'WHERE "SDC_DELETED_AT" IS NULL AND ("SDC_TABLE_VERSION" IS NULL OR "SDC_TABLE_VERSION" < :2)'
    )
    plain = SQL.activate_version(USERS, "V", "D", T("TIMESTAMP(6)"), hard=False)
    assert plain.sql.startswith('UPDATE "APP"."USERS" SET "D" = CAST(:1 AS TIMESTAMP(6)) ')
    for stmt in (tstz, plain):
        # the names DriverSession.execute hands to Cursor.setinputsizes are the driver's own types
        assert [getattr(oracledb, t) if t else None for t in stmt.input_types] == [oracledb.DB_TYPE_TIMESTAMP, None]


def test_staging_names_fit_30_bytes_and_the_sweep_pattern_matches_only_this_spool():
    name = SQL.stage_name("3f0c-spool", "streams/users-1/000001.parquet")
    assert len(name) == 29 and name == f"SPOOL_STAGE_{h8('3f0c-spool')}_{h8('streams/users-1/000001.parquet')}"
    assert SQL.stage_pattern("3f0c-spool") == f"SPOOL\\_STAGE\\_{h8('3f0c-spool')}\\_%"
    assert SQL.drop_table("APP", name).sql == f'DROP TABLE "APP"."{name}" PURGE' and SQL.drop_table("APP", name).done == ("ORA-00942",)
    assert SQL.create_stage(name, [("ID", "NUMBER(38)"), ("AT", "TIMESTAMP(6)")]).sql == (
        f'CREATE TABLE "APP"."{name}" (\n  "ID" NUMBER(38),\n  "AT" TIMESTAMP(6)\n)'
    )


def test_scripts_wrap_idempotent_ddl_in_plsql():
    assert render(Statement("DELETE FROM T")) == "DELETE FROM T;"
    assert render(Statement("CREATE TABLE T (X NUMBER)", done=("ORA-00955",), note="n")) == (
        "-- n\nBEGIN\n  EXECUTE IMMEDIATE q'[CREATE TABLE T (X NUMBER)]';\nEXCEPTION\n  WHEN OTHERS THEN\n"
        "    IF SQLCODE = -955 THEN NULL;  -- ORA-00955: already done\n    ELSE RAISE; END IF;\nEND;\n/"
    )


def test_dropping_a_column_of_a_compressed_table_sets_it_unused():
    """ORA-39726: basic table compression allows no DROP COLUMN; SET UNUSED frees the name the
    same way (SQL Language Reference, ALTER TABLE, "Restrictions on Dropping Columns")."""
    drop = SQL.retype_steps(USERS, "BIO", T("VARCHAR2(10 CHAR)"), "string", ColumnDDL("BIO", "CLOB"), T("CLOB"))[2]
    assert drop.done == ("ORA-00904",) and [(c, a.sql) for c, a in drop.instead] == [
        ("ORA-39726", 'ALTER TABLE "APP"."USERS" SET UNUSED ("BIO")')]
    assert render(drop).endswith(
        "    IF SQLCODE = -904 THEN NULL;  -- ORA-00904: already done\n"
        "    ELSIF SQLCODE = -39726 THEN  -- ORA-39726: a compressed table allows no DROP COLUMN: set it unused\n"
        """      EXECUTE IMMEDIATE q'[ALTER TABLE "APP"."USERS" SET UNUSED ("BIO")]';\n"""
        "    ELSE RAISE; END IF;\nEND;\n/"
    )


# ---- the widening state machine, on a simulated catalog ------------------------------
CFG = dict(load_strategy="insert", batch_rows=10, load_method="append-only", column_types={}, varchar_length=4000,
           prefer_float=False, timestamp_type="timestamp_tz", max_identifier_length=None)


def _dest(columns: dict[str, str], *, json: tuple[str, ...] = (), objects: dict | None = None,
          **settings) -> tuple[OracleDestination, RecordingSession]:
    """A destination connected to a recording whose catalog holds APP.USERS with ``columns``."""
    cfg = OracleOptions(**{**CFG, **settings})
    tables = {("APP", "USERS"): [CatalogColumn(n, t, n in json) for n, t in columns.items()]} if columns else {}
    rec = RecordingSession(OFFLINE_FEATURES, tables=tables, objects=objects)
    dest = OracleDestination(ConnectSettings(user="u", label="oracle://u@h/s", target_schema="APP"), cfg, None,
                             session=lambda _: rec)
    dest.connect()
    return dest, rec


def test_widening_resumes_where_an_interrupted_one_stopped():
    tmp = f"SPOOL_W_{h8('BIO')}"
    fresh, rec = _dest({"ID": "NUMBER(38)", "BIO": "VARCHAR2(4000 CHAR)"})
    fresh.widen_column(USERS, ColumnSpec("BIO", "string", 100_000))
    text = "\n".join(rec.lines)
    assert text.count("EXECUTE IMMEDIATE q'[ALTER TABLE") == 3 and f'ADD ("{tmp}" CLOB)' in text and 'DROP COLUMN "BIO"' in text
    assert f'UPDATE "APP"."USERS" SET "{tmp}" = TO_CLOB("BIO")' in text and "COMMIT;" in text
    assert text.rstrip().endswith(f'ALTER TABLE "APP"."USERS" RENAME COLUMN "{tmp}" TO "BIO";')
    assert fresh.table_columns(USERS)["BIO"].sql_type == "CLOB"

    copied, rec = _dest({"ID": "NUMBER(38)", "BIO": "VARCHAR2(4000 CHAR)", tmp: "CLOB"})  # died after step 1 or 2
    copied.widen_column(USERS, ColumnSpec("BIO", "string", 100_000))
    assert "ADD (" not in "\n".join(rec.lines) and "UPDATE" in "\n".join(rec.lines)

    dropped, rec = _dest({"ID": "NUMBER(38)", tmp: "CLOB"})  # died after step 3: the engine asks to add BIO
    assert "BIO" not in dropped.table_columns(USERS) and tmp not in dropped.table_columns(USERS)
    dropped.add_column(USERS, ColumnSpec("BIO", "string", 100_000))
    assert rec.lines[-1].endswith(f'ALTER TABLE "APP"."USERS" RENAME COLUMN "{tmp}" TO "BIO";')
    assert "ADD (" not in "\n".join(rec.lines)

    longer, rec = _dest({"BIO": "VARCHAR2(100 CHAR)"})
    longer.widen_column(USERS, ColumnSpec("BIO", "string", 200))
    assert rec.lines[-1].endswith('ALTER TABLE "APP"."USERS" MODIFY ("BIO" VARCHAR2(200 CHAR));')


def test_json_text_widened_to_plain_text_loses_its_is_json_check():
    """Finding 4, across units: a CLOB IS JSON column that must also hold plain strings is the same
    type text (CLOB) but not the same column: it is copied into a plain CLOB."""
    dest, rec = _dest({"ID": "NUMBER(38)", "DOC": "CLOB"}, json=("DOC",))
    info = dest.table_columns(USERS)["DOC"]
    assert info.logical == "json"
    target = dest.widened(info, ColumnSpec("DOC", "string"))
    assert target == ColumnSpec("DOC", "string", UNBOUNDED)
    dest.widen_column(USERS, target)
    text = "\n".join(rec.lines)
    tmp = f"SPOOL_W_{h8('DOC')}"
    assert f'ADD ("{tmp}" CLOB)' in text and "CHECK" not in text and "widen DOC: CLOB IS JSON -> CLOB" in text
    assert f'UPDATE "APP"."USERS" SET "{tmp}" = "DOC" WHERE' in text and f'RENAME COLUMN "{tmp}" TO "DOC"' in text
    assert dest.table_columns(USERS)["DOC"].logical == "string"


def test_create_table_trusts_ora_00955_only_when_the_catalog_has_that_table():
    """ORA-00955 says the name is used -- by a table, or a view, synonym, sequence...
    (SQL Language Reference, "Database Object Namespaces")."""
    from spool_target.errors import DestinationError

    dest, rec = _dest({}, objects={("APP", "USERS"): "VIEW"})
    with pytest.raises(DestinationError, match=r"cannot create table APP.USERS: the name is used by view \(ORA-00955\)"):
        dest.create_table(USERS, [ColumnSpec("ID", "integer")], [])
    dest, rec = _dest({"ID": "NUMBER(38)"})  # a table: an earlier attempt made it; only missing columns are added
    dest.create_table(USERS, [ColumnSpec("ID", "integer"), ColumnSpec("NAME", "string", 10)], [])
    assert 'CREATE TABLE "APP"."USERS"' in rec.lines[-2]
    assert """q'[ALTER TABLE "APP"."USERS" ADD ("NAME" VARCHAR2(10 CHAR))]';""" in rec.lines[-1]
    assert [c.name for c in rec.columns("APP", "USERS")] == ["ID", "NAME"]


def test_a_table_never_grows_past_1000_columns():
    """ORA-01792: refused up front, with the table named, before any DDL runs."""
    from spool_target.errors import DestinationError

    dest, rec = _dest({f"C{i}": "NUMBER(38)" for i in range(1000)})
    before = list(rec.lines)
    with pytest.raises(DestinationError, match=r"table USERS: adding column NEW needs 1001 columns, and Oracle allows 1,000"):
        dest.add_column(USERS, ColumnSpec("NEW", "integer"))
    with pytest.raises(DestinationError, match=r"ORA-01792"):
        dest.widen_column(USERS, ColumnSpec("C1", "string", 10))  # a retype copies the column: one more for a moment
    fresh, _ = _dest({})
    with pytest.raises(DestinationError, match=r"needs 1001 columns"):
        fresh.create_table(TableRef(None, "WIDE"), [ColumnSpec(f"C{i}", "integer") for i in range(1001)], [])
    assert rec.lines == before


# ---- unit programs on real segments: what load binds, checked by the real driver -------------
def _programs(spool, features=None, **settings):
    """Plan offline (no server) through the real engine, keeping each unit's program."""
    from spool_target.cli.common import load_options, oracle_options
    from spool_target.config import load_config
    from spool_target.load.engine import LoadEngine, RunMode
    from spool_target.logs import NULL_LOG
    from spool_target.spool.layout import require_spool

    config = load_config([], {"spool_dir": str(spool), "target_schema": "APP", **settings}, environ={})
    programs: list = []
    rec = RecordingSession(features or OFFLINE_FEATURES)

    class Keeping(OracleDestination):
        def program(self, unit, columns, **kw):
            prog = super().program(unit, columns, **kw)
            programs.append(prog)
            return prog

    dest = Keeping(ConnectSettings(user="u", label="oracle://u@offline/X", target_schema="APP"), oracle_options(config), NULL_LOG,
                   session=lambda _: rec)
    reporter = SimpleNamespace(begin=lambda r: None, unit_loaded=lambda s, u: None, finish=lambda r: None)
    LoadEngine(require_spool(spool), dest, load_options(config, RunMode.FRESH), NULL_LOG, reporter).rehearse()
    return programs, "\n\n".join(rec.lines)


def _bound(feed):
    """The feed's batches as they are bound, each accepted by python-oracledb's own from_arrow."""
    import oracledb
    import pyarrow as pa

    from spool_target.load.oracle.binds import prepare

    tables = [prepare(batch, feed.binds) for batch in feed.step.batches(1000)]
    for t in tables:
        oracledb.from_arrow(t)
    return pa.concat_tables(tables)


def _feeds(prog):
    from spool_target.load.oracle.unit import Feed

    return [a for a in prog.prepare + prog.work if isinstance(a, Feed)]


def test_append_only_program_binds_segments_straight_into_the_table(spool):
    import pyarrow as pa

    from loadkit import ingest, users_stream
    from spool_target.load.oracle.unit import Ledger

    ingest(spool, users_stream(rows=[{"id": i, "name": f"n{i}"} for i in range(5)]), flush_rows=2)
    programs, script = _programs(spool, transaction_rows=2)
    assert len(programs) == 3 and all(not p.prepare and not p.cleanup for p in programs)  # no staging
    assert '"ID" NUMBER(38)' in script and '"SDC_EXTRA" CLOB CHECK ("SDC_EXTRA" IS JSON)' in script
    feeds = [f for p in programs for f in _feeds(p)]
    assert all(f.counted and f.stmt.sql.startswith('INSERT INTO "APP"."USERS" (') for f in feeds)
    assert all(isinstance(p.work[-1], Ledger) and len(p.work[-1].rows) == 1 for p in programs)  # one ledger row per unit
    tables = [_bound(f) for f in feeds]
    assert sum(t.num_rows for t in tables) == 5
    types = dict(zip(tables[0].column_names, tables[0].schema.types))
    assert types["ID"] == pa.int64() and types["NAME"] == pa.string()
    assert types["SDC_RECEIVED_AT"] == pa.timestamp("us")  # naive UTC; the SQL says FROM_TZ(:n, 'UTC')
    assert types["SDC_EXTRA"] == pa.large_string() and tables[0].column_names[-1] == "SDC_EXTRA"  # LONG, last


def test_upsert_program_stages_rejects_empty_keys_and_merges_once(spool):
    import pyarrow as pa

    from conftest import record_msg, schema_msg
    from loadkit import ingest
    from spool_target.load.oracle.binds import empty_key_mask

    codes = schema_msg("codes", {"code": {"type": "string"}, "label": {"type": "string"}, "ok": {"type": "boolean"}}, ["code"])
    rows = [{"code": "", "label": "empty-1", "ok": True}, {"code": "a", "label": "a-1", "ok": False},
            {"code": "", "label": "empty-2", "ok": None}]
    ingest(spool, [codes, *(record_msg("codes", r) for r in rows)])
    (prog,), script = _programs(spool, load_method="upsert")
    assert 'CONSTRAINT "CODES_PK" PRIMARY KEY ("CODE")' in script
    assert "rows whose key CODE is '' are rejected first (Oracle stores '' as NULL)" in script
    (feed,) = _feeds(prog)
    assert feed.reject_keys == ("CODE",) and feed.into.startswith('"APP"."SPOOL_STAGE_') and not feed.counted
    batch = next(feed.step.batches(1000))
    assert empty_key_mask(batch, feed.reject_keys).to_pylist() == [True, False, True]
    assert _bound(feed).column("OK").type == pa.int8()  # NUMBER(1) before 23ai
    merges = [a.stmt.sql for a in prog.work if hasattr(a, "stmt") and a.stmt.sql.startswith("MERGE")]
    assert len(merges) == 1 and 'ON (t."CODE" = s."CODE")' in merges[0]
    assert [a.stmt.sql for a in prog.cleanup] == [f'DROP TABLE {feed.into} PURGE']  # after the commit


def test_records_oracle_cannot_key_reach_the_spools_rejects_through_the_engine(spool):
    """The destination only hands back what it refuses ('' keys in an upsert); the engine journals
    it in the spool's rejects before the unit commits, once, with the record's _sdc_sequence and
    the ingest run that sent it -- what `rejects replay` needs to put it back in its place."""
    import orjson
    import pyarrow.parquet as pq

    from conftest import record_msg, schema_msg
    from loadkit import ingest
    from spool_target.cli.common import load_options, oracle_options
    from spool_target.config import load_config
    from spool_target.load.engine import LoadEngine, RunMode
    from spool_target.logs import NULL_LOG
    from spool_target.spool.layout import require_spool
    from spool_target.spool.manifest import read_manifest
    from spool_target.spool.rejects import iter_rejects

    sent = [{"code": "", "label": "empty-1"}, {"code": "a", "label": "a-1"}, {"code": "", "label": "empty-2"}]
    codes = schema_msg("codes", {"code": {"type": "string"}, "label": {"type": "string"}}, ["code"])
    ingest(spool, [codes, *(record_msg("codes", r) for r in sent)])
    layout = require_spool(spool)
    rejects_dir = layout.rejects_path("codes")
    at_commit: list[list[bytes]] = []

    class Reading(RecordingSession):
        """A recording that reads every row it is fed, as the driver does (which is where '' keys are found)."""

        def feed(self, feed, batches, *, batch_rows):
            for _ in batches:
                pass
            return super().feed(feed, [], batch_rows=batch_rows)

        def commit(self):
            at_commit.append([p.read_bytes() for p in sorted(rejects_dir.glob("load-*.jsonl"))])
            super().commit()

    rec = Reading(OFFLINE_FEATURES)
    config = load_config([], {"spool_dir": str(spool), "target_schema": "APP", "load_method": "upsert"}, environ={})
    dest = OracleDestination(ConnectSettings(user="u", label="oracle://u@offline/X", target_schema="APP"),
                             oracle_options(config), NULL_LOG, session=lambda _: rec)
    reporter = SimpleNamespace(begin=lambda r: None, unit_loaded=lambda s, u: None, finish=lambda r: None)
    engine = LoadEngine(layout, dest, load_options(config, RunMode.FRESH), NULL_LOG, reporter)
    handed: list = []
    write = engine._write_rejects
    engine._write_rejects = lambda unit, records: (handed.append((unit, records)), write(unit, records))[1]
    report = engine.run()

    (path,) = sorted(rejects_dir.glob("load-*.jsonl"))
    assert path.name == f"load-{report.run_id}.jsonl"
    assert at_commit[-1] == [path.read_bytes()]  # durable before the unit's COMMIT (I5)
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [orjson.loads(x["raw"]) for x in lines] == [sent[0], sent[2]]  # the records the tap sent, no metadata
    (segment,) = read_manifest(layout).segments("codes")
    held = pq.read_table(spool / segment.path).to_pylist()
    assert [x["sequence"] for x in lines] == [r["_sdc_sequence"] for r in held if r["code"] == ""]
    assert {x["run_id"] for x in lines} == {segment.run_id}  # the ingest run, not the load's
    assert all(x["line"] is None and x["stream"] == "codes" for x in lines)
    assert lines[0]["reason"].startswith("key property 'code' is an empty string, which Oracle stores as NULL")
    assert report.streams["codes"].rejected == 2
    assert [(r.sequence, r.run_id) for r in iter_rejects(layout, "codes")] == [(x["sequence"], x["run_id"]) for x in lines]

    # The same unit again (a retry after a lost connection): refused again, journaled once.
    (unit, records), = handed
    assert [r.item for r in records] == [segment.path] * 2
    before = path.read_bytes()
    engine._write_rejects(unit, records)
    assert path.read_bytes() == before

    # `rejects replay` brings them back as records of the run that sent them, in their places.
    from conftest import run_cli

    r = run_cli("rejects", "replay", "--spool", str(spool), "--log-format", "text")
    assert r.returncode == 0 and b"2 of 2 replayed" in r.stdout, r.stderr.decode()
    replayed = [s for s in read_manifest(layout).segments("codes") if s.replay_of]
    assert [s.replay_of for s in replayed] == [segment.run_id]
    back = pq.read_table(spool / replayed[0].path).to_pylist()
    assert [(x["code"], x["label"], x["_sdc_sequence"]) for x in back] == [
        ("", record["label"], x["sequence"]) for record, x in zip((sent[0], sent[2]), lines)
    ]


def test_direct_path_program_feeds_only_a_staging_table(spool):
    import pyarrow as pa

    from loadkit import ingest, users_stream

    ingest(spool, users_stream(rows=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]))
    (prog,), _ = _programs(spool, load_strategy="direct-path")
    assert prog.direct and not [a for a in prog.work if hasattr(a, "direct")]  # nothing direct in the transaction
    (feed,) = _feeds(prog)
    schema, stage = feed.direct
    assert schema == "APP" and stage.startswith("SPOOL_STAGE_") and feed in prog.prepare
    bound = _bound(feed)
    assert bound.num_rows == 2 and bound.column("SDC_EXTRA").type == pa.string()  # VARCHAR2 staging: no CLOB binds
    inserts = [a.stmt.sql for a in prog.work if hasattr(a, "stmt") and a.stmt.sql.startswith('INSERT INTO "APP"."USERS"')]
    assert len(inserts) == 1 and inserts[0].endswith(f'FROM "APP"."{stage}" s')
    assert [a.stmt.sql for a in prog.cleanup] == [f'DROP TABLE "APP"."{stage}" PURGE']


def test_values_too_long_for_their_varchar2_widen_the_column_before_binding(spool):
    import pyarrow as pa

    from conftest import record_msg, schema_msg
    from loadkit import ingest

    props = {"id": {"type": "integer"}, "short": {"type": "string", "maxLength": 10}, "bio": {"type": "string"}}
    ingest(spool, [schema_msg("p", props, ["id"]), record_msg("p", {"id": 1, "short": "é" * 30, "bio": "x" * 5000})])
    (prog,), script = _programs(spool)
    assert 'ALTER TABLE "APP"."P" MODIFY ("SHORT" VARCHAR2(30 CHAR));' in script  # in place
    tmp = f"SPOOL_W_{h8('BIO')}"
    assert f'ADD ("{tmp}" CLOB)' in script and f'RENAME COLUMN "{tmp}" TO "BIO"' in script  # 5000 bytes: CLOB, 4 steps
    (feed,) = _feeds(prog)
    names = [b.name for b in feed.binds]
    assert all(b.target.is_long_text for b in feed.binds[names.index("BIO"):])  # LONG binds (CLOB columns) last
    assert _bound(feed).column("BIO").type == pa.large_string()


def test_23ai_programs_bind_booleans_and_json_as_such(spool):
    import pyarrow as pa

    from conftest import record_msg, schema_msg
    from loadkit import ingest
    from spool_target.load.oracle.types import ServerFeatures

    props = {"id": {"type": "integer"}, "ok": {"type": "boolean"}, "doc": {"type": "object"}}
    ingest(spool, [schema_msg("f", props, ["id"]), record_msg("f", {"id": 1, "ok": True, "doc": {"a": [1]}})])
    (prog,), script = _programs(spool, features=ServerFeatures.from_version((23, 5), current_schema="APP"))
    assert '"OK" BOOLEAN' in script and '"DOC" JSON' in script
    bound = _bound(_feeds(prog)[0])
    assert bound.column("OK").type == pa.bool_() and bound.column("DOC").to_pylist() == ['{"a": [1]}']  # the text as sent (I8)


def test_direct_path_stages_what_the_driver_accepts(spool):
    """Direct path is stricter than executemany (python-oracledb 26.1):

    - it compares each value's bytes with the column's describe size (direct_path_load_stream.pyx,
      add_column_value), which for VARCHAR2(n CHAR) is n characters: `é` * 10 (20 bytes) would fail
      DPY-8000 in VARCHAR2(10 CHAR), so text is staged as VARCHAR2(4n BYTE);
    - only NUMBER takes Arrow integers, and no NUMBER takes text (check_convert_from_arrow, DPY-3039):
      numbers that bind as exact text are staged as text and converted by TO_NUMBER in SQL;
      a BINARY_DOUBLE column (column_types) gets doubles.
    The recording itself refuses a direct path feed the driver would refuse (session.RecordingSession.feed).
    """
    import pyarrow as pa

    from conftest import record_msg, schema_msg
    from loadkit import ingest
    from spool_target.load.oracle.binds import direct_path_accepts

    props = {"id": {"type": "integer"}, "name": {"type": "string", "maxLength": 10}, "amount": {"type": "number"},
             "n": {"type": "integer"}}
    ingest(spool, [schema_msg("p", props, ["id"]), record_msg("p", {"id": 1, "name": "é" * 10, "amount": 0.1, "n": 7})])
    (prog,), script = _programs(spool, load_strategy="direct-path", column_types={"p": {"n": "BINARY_DOUBLE"}})
    (feed,) = _feeds(prog)
    stage = {b.name: b.target for b in feed.binds}
    assert stage["NAME"].text == "VARCHAR2(40 BYTE)" and stage["AMOUNT"].text == "VARCHAR2(4000 BYTE)"
    assert stage["ID"].text == "NUMBER(38)" and stage["N"].text == "BINARY_DOUBLE"
    bound = _bound(feed)
    assert bound.column("NAME").to_pylist() == ["é" * 10] and len(("é" * 10).encode()) == 20
    assert bound.column("AMOUNT").to_pylist() == ["0.1"] and bound.column("N").type == pa.float64()
    assert all(direct_path_accepts(f.type, stage[f.name]) for f in bound.schema)
    (insert,) = [a.stmt.sql for a in prog.work if hasattr(a, "stmt") and a.stmt.sql.startswith('INSERT INTO "APP"."P"')]
    assert 'TO_NUMBER(s."AMOUNT")' in insert and 's."NAME"' in insert
    assert '"NAME" VARCHAR2(10 CHAR)' in script  # the table keeps character semantics
