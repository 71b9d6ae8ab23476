"""Oracle names and types: golden values for the documented rules (the README's Oracle section)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from spool_target.errors import ConfigError
from spool_target.load.destination import ColumnInfo, ColumnSpec
from spool_target.load.options import OracleOptions
from spool_target.load.oracle.destination import column_type_text
from spool_target.load.oracle.types import (
    OFFLINE_FEATURES,
    UNBOUNDED,
    OracleTypes,
    ServerFeatures,
    TypeSettings,
    check_override,
    logical_of,
    parse_type,
)
from spool_target.naming import ORACLE, ORACLE_30, column_names, oracle_rules, table_names
from spool_target.schema import METADATA_COLUMNS


def h8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8].upper()


@pytest.mark.parametrize(
    "source,legal",
    [
        ("users", "USERS"),
        ("_sdc_sequence", "SDC_SEQUENCE"),  # no leading underscore in Oracle
        ("__x", "X"),
        ("public-users", "PUBLIC_USERS"),
        ("Café Orders", "CAFE_ORDERS"),  # accents folded to ASCII
        ("Sales Orders/ü-表 😀", "SALES_ORDERS_U_"),
        ("名前", "C_" + h8("名前")),  # nothing readable survives: the hash alone
        ("---", "C_" + h8("---")),
        ("2024 sales", "X_2024_SALES"),  # no leading digit
        ("_1st", "X_1ST"),
        ("date", "DATE_"),  # reserved words get a trailing _
        ("level", "LEVEL_"),
        ("Size", "SIZE_"),
        ("rows", "ROWS_"),
        ("a$b#c", "A_B_C"),  # $ and # are replaced although Oracle allows them
        ("e-mail", "E_MAIL"),
    ],
)
def test_oracle_legal_names(source: str, legal: str):
    assert ORACLE.legalize(source) == legal
    assert ORACLE.quote(legal) == f'"{legal}"'


def test_long_names_are_cut_with_a_hash_at_128_and_30_bytes():
    long = "customer_lifetime_value_" * 8  # 192 characters
    name128, name30 = ORACLE.legalize(long), ORACLE_30.legalize(long)
    assert len(name128) == 128 and name128 == long.upper()[:119] + "_" + h8(long)
    assert len(name30) == 30 and name30 == long.upper()[:21] + "_" + h8(long)
    # two long names sharing a prefix stay apart
    other = long + "x"
    assert ORACLE_30.legalize(other) != name30 and ORACLE_30.legalize(other)[:21] == name30[:21]
    # non-ASCII never reaches the byte count: it is folded or replaced first
    assert ORACLE_30.legalize("é" * 40) == "E" * 21 + "_" + h8("é" * 40)


def test_collisions_resolved_in_first_seen_order_and_metadata_wins():
    meta = [name for name, _ in METADATA_COLUMNS]
    cols = column_names("s", ["id", "ID", "sdc_sequence", "date", "DATE_"], ORACLE, reserved_first=meta)
    assert cols["_sdc_sequence"] == "SDC_SEQUENCE" and cols["_sdc_extra"] == "SDC_EXTRA"
    assert cols["id"] == "ID" and cols["ID"] == "ID_" + h8("ID")
    assert cols["sdc_sequence"] == "SDC_SEQUENCE_" + h8("sdc_sequence")
    assert cols["date"] == "DATE_" and cols["DATE_"] == "DATE__" + h8("DATE_")
    # stable: the same input gives the same names, and new properties only append
    again = column_names("s", ["id", "ID", "sdc_sequence", "date", "DATE_", "new"], ORACLE, reserved_first=meta)
    assert {k: again[k] for k in cols} == cols and again["new"] == "NEW"


def test_tables_avoid_the_ledger_and_staging_names_and_honour_mappings():
    tables = table_names(["spool_ledger", "spool_stage_x", "orders", "crm-users"], ORACLE,
                         mappings={"crm-users": "crm.users"})
    assert tables["spool_ledger"].name == "SPOOL_LEDGER_" + h8("spool_ledger")
    assert tables["spool_stage_x"].name == "TSPOOL_STAGE_X"
    assert tables["orders"].name == "ORDERS" and tables["orders"].schema is None
    assert (tables["crm-users"].schema, tables["crm-users"].name) == ("CRM", "USERS")
    with pytest.raises(ConfigError, match="'Orders Table' is not a legal Oracle name"):
        table_names(["o"], ORACLE, mappings={"o": "Orders Table"})
    with pytest.raises(ConfigError, match="not a legal Oracle name"):
        table_names(["o"], ORACLE, mappings={"o": "date"})  # reserved: DATE_ would be legal
    with pytest.raises(ConfigError, match="both mapped to"):
        table_names(["a", "b"], ORACLE, mappings={"a": "T", "b": "t"})


def test_rules_follow_the_limit():
    assert oracle_rules(30).max_bytes == 30 and ORACLE.max_bytes == 128
    assert ORACLE.ledger_table == "SPOOL_LEDGER" and ORACLE.stage_prefix == "SPOOL_STAGE_"


# ---- types -----------------------------------------------------------------------
V19 = ServerFeatures.from_version((19, 22))
V21 = ServerFeatures.from_version((21, 3))
V23 = ServerFeatures.from_version((23, 5))
EXT = ServerFeatures.from_version((19, 22), max_string_bytes=32767)


@pytest.mark.parametrize(
    "features,settings,expected",
    [
        (V19, TypeSettings(), {
            "integer": "NUMBER(38)", "number": "NUMBER", "string": "VARCHAR2(4000 CHAR)", "time": "VARCHAR2(64 CHAR)",
            "timestamp": "TIMESTAMP(6) WITH TIME ZONE", "date": "DATE", "boolean": "NUMBER(1)", "json": "CLOB"}),
        (V21, TypeSettings(), {"json": "JSON", "boolean": "NUMBER(1)"}),
        (V23, TypeSettings(), {"json": "JSON", "boolean": "BOOLEAN"}),
        (V19, TypeSettings(prefer_float=True, varchar_length=255, timestamp_tz=False),
         {"number": "BINARY_DOUBLE", "string": "VARCHAR2(255 CHAR)", "timestamp": "TIMESTAMP(6)"}),
    ],
)
def test_type_mapping(features: ServerFeatures, settings: TypeSettings, expected: dict[str, str]):
    types = OracleTypes(features, settings)
    assert {k: types.sql_type(k) for k in expected} == expected


def test_strings_past_the_servers_limit_become_clob():
    std, ext = OracleTypes(V19, TypeSettings()), OracleTypes(EXT, TypeSettings())
    assert std.sql_type("string", 4000) == "VARCHAR2(4000 CHAR)" and std.sql_type("string", 4001) == "CLOB"
    assert ext.sql_type("string", 4001) == "VARCHAR2(4001 CHAR)" and ext.sql_type("string", 40000) == "CLOB"
    assert std.sql_type("string", UNBOUNDED) == "CLOB"
    assert OracleTypes(V19, TypeSettings(varchar_length=5000)).sql_type("string") == "CLOB"


def test_check_constraints_for_booleans_and_json_text():
    t19, t23 = OracleTypes(V19, TypeSettings()), OracleTypes(V23, TypeSettings())
    assert t19.check_constraint("boolean", "NUMBER(1)", '"OK"') == ' CHECK ("OK" IN (0, 1))'
    assert t19.check_constraint("json", "CLOB", '"DOC"') == ' CHECK ("DOC" IS JSON)'
    assert t23.check_constraint("boolean", "BOOLEAN", '"OK"') == ""
    assert t23.check_constraint("json", "JSON", '"DOC"') == ""


@pytest.mark.parametrize(
    "text,is_json,family,logical",
    [
        ("NUMBER(38)", False, "number", "integer"),
        ("NUMBER(*,0)", False, "number", "integer"),
        ("NUMBER", False, "number", "number"),
        ("NUMBER(1)", False, "number", "boolean"),
        ("NUMBER(12,2)", False, "number", None),  # not a type this loader creates: left alone
        ("BINARY_DOUBLE", False, "float", "number"),
        ("VARCHAR2(100 CHAR)", False, "varchar", "string"),
        ("VARCHAR2(100 BYTE)", False, "varchar", None),
        ("CLOB", False, "clob", "string"),
        ("CLOB", True, "json", "json"),
        ("JSON", False, "json", "json"),
        ("TIMESTAMP(6) WITH TIME ZONE", False, "tstz", "timestamp"),
        ("TIMESTAMP(6)", False, "timestamp", "timestamp"),
        ("TIMESTAMP(6) WITH LOCAL TIME ZONE", False, "tsltz", None),
        ("DATE", False, "date", "date"),
        ("BOOLEAN", False, "boolean", "boolean"),
        ("RAW(16)", False, "other", None),
    ],
)
def test_existing_column_types_read_back(text: str, is_json: bool, family: str, logical: str | None):
    t = parse_type(text, is_json=is_json)
    assert (t.family, logical_of(t)) == (family, logical)


def test_dictionary_rows_are_spelled_like_generated_types():
    assert column_type_text("NUMBER", 38, 0, None, None) == "NUMBER(38)"
    assert column_type_text("NUMBER", None, None, None, None) == "NUMBER"
    assert column_type_text("NUMBER", None, 0, None, None) == "NUMBER(*,0)"
    assert column_type_text("NUMBER", 12, 2, None, None) == "NUMBER(12,2)"
    assert column_type_text("VARCHAR2", None, None, 100, "C") == "VARCHAR2(100 CHAR)"
    assert column_type_text("VARCHAR2", None, None, 100, "B") == "VARCHAR2(100 BYTE)"
    assert column_type_text("TIMESTAMP(6) WITH TIME ZONE", None, 6, None, None) == "TIMESTAMP(6) WITH TIME ZONE"


@pytest.mark.parametrize(
    "have,have_type,want,want_len,expected",
    [
        ("integer", "NUMBER(38)", "integer", None, None),
        ("integer", "NUMBER(38)", "number", None, ("decimal", None)),  # every digit of both: NUMBER, MODIFY in place
        ("number", "NUMBER", "decimal", None, None),  # NUMBER holds decimals already
        ("number", "BINARY_DOUBLE", "decimal", None, ("decimal", None)),  # a double cannot: re-typed to NUMBER
        ("decimal", "NUMBER", "string", 5, ("string", 200)),
        ("number", "NUMBER", "integer", None, None),
        ("date", "DATE", "timestamp", None, ("timestamp", None)),
        ("timestamp", "TIMESTAMP(6)", "timestamp", None, None),  # never re-typed by a changed setting
        ("string", "VARCHAR2(100 CHAR)", "string", 50, None),
        ("string", "VARCHAR2(100 CHAR)", "string", 200, ("string", 200)),
        ("string", "VARCHAR2(100 CHAR)", "string", None, ("string", 4000)),  # maxLength dropped: the default
        ("string", "VARCHAR2(100 CHAR)", "time", None, None),
        ("string", "VARCHAR2(10 CHAR)", "time", None, ("string", 64)),
        ("string", "CLOB", "string", None, None),
        ("integer", "NUMBER(38)", "string", 10, ("string", 20)),  # integers need 20 characters as text
        ("boolean", "NUMBER(1)", "integer", None, ("string", 20)),
        ("json", "CLOB", "json", None, None),
        ("json", "CLOB", "string", 10, ("string", UNBOUNDED)),  # IS JSON would refuse plain text
        ("string", "VARCHAR2(100 CHAR)", "json", None, ("string", UNBOUNDED)),
        ("json", "JSON", "integer", None, ("string", UNBOUNDED)),
    ],
)
def test_widening_decisions(have: str, have_type: str, want: str, want_len: int | None, expected):
    types = OracleTypes(V19, TypeSettings())
    assert types.widened_to(have, parse_type(have_type, is_json=have == "json"), want, want_len) == expected


def test_column_type_overrides_are_checked():
    assert check_override("clob", "[x]") == "CLOB"
    assert check_override("varchar2(200  char)", "[x]") == "VARCHAR2(200 CHAR)"
    assert check_override("NUMBER(12, 2)", "[x]") == "NUMBER(12, 2)"
    assert check_override("timestamp(3) with local time zone", "[x]") == "TIMESTAMP(3) WITH LOCAL TIME ZONE"
    for bad in ("CLOB) ; DROP TABLE x --", "NUMBER, X NUMBER", "", 5, "VARCHAR2(10) DEFAULT 'a'"):
        with pytest.raises(ConfigError, match="is not an Oracle column type"):
            check_override(bad, "['users']['bio']")


def test_offline_assumptions_are_19c():
    f = OFFLINE_FEATURES
    assert (f.version, f.max_identifier_length, f.max_string_bytes, f.json_type, f.boolean_type) == ((19, 0), 128, 4000, False, False)
    assert ServerFeatures.from_version((12, 1)).max_identifier_length == 30


def test_destination_widened_uses_the_oracle_rules():
    from spool_target.load.oracle.connect import ConnectSettings
    from spool_target.load.oracle.destination import OracleDestination

    cfg = OracleOptions(load_strategy="insert", batch_rows=10, load_method="upsert", column_types={},
                        varchar_length=4000, prefer_float=False, timestamp_type="timestamp_tz", max_identifier_length=None)
    dest = OracleDestination(ConnectSettings(user="u", label="oracle://u@h/s", password="p"), cfg)
    assert dest.widened(ColumnInfo("C", "VARCHAR2(10 CHAR)", "string"), ColumnSpec("C", "string", 20)) == ColumnSpec("C", "string", 20)
    assert dest.widened(ColumnInfo("C", "NUMBER(12,2)", None), ColumnSpec("C", "string")) is None
    assert dest.sql_type(ColumnSpec("C", "string", 5000)) == "CLOB"
    cfg = replace(cfg, max_identifier_length=31)
    assert OracleDestination(ConnectSettings(user="u", label="x", password="p"), cfg).rules.max_bytes == 31
    cfg = replace(cfg, max_identifier_length=20)
    with pytest.raises(ConfigError, match="between 30 and 128"):
        OracleDestination(ConnectSettings(user="u", label="x", password="p"), cfg)


def test_batches_are_cast_to_what_the_target_columns_bind():
    """Widened columns get values as text in the same format SQL writes for old rows."""
    from datetime import date, datetime, timezone

    import oracledb
    import pyarrow as pa

    from spool_target.load.oracle.binds import BindColumn, empty_key_mask, prepare, text_extent

    batch = pa.RecordBatch.from_pydict({
        "I": pa.array([7, None], pa.int64()),
        "F": pa.array([0.5, 2.0], pa.float64()),
        "B": pa.array([True, None]),
        "TS": pa.array([datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), None], pa.timestamp("us", tz="UTC")),
        "D": pa.array([date(2024, 1, 2), None], pa.date32()),
        "S": pa.array(["", "é"]),
    })
    cols = [
        BindColumn("I", "integer", parse_type("VARCHAR2(20 CHAR)")),
        BindColumn("F", "number", parse_type("CLOB")),
        BindColumn("B", "boolean", parse_type("NUMBER(1)")),
        BindColumn("TS", "timestamp", parse_type("TIMESTAMP(6) WITH TIME ZONE")),
        BindColumn("D", "date", parse_type("TIMESTAMP(6) WITH TIME ZONE")),
        BindColumn("S", "string", parse_type("JSON")),
    ]
    out = prepare(batch, cols)
    assert out.column("I").to_pylist() == ["7", None]
    assert out.column("F").type == pa.large_string() and out.column("F").to_pylist() == ["0.5", "2"]
    assert out.column("B").type == pa.int8() and out.column("B").to_pylist() == [1, None]
    assert out.column("TS").type == pa.timestamp("us") and out.column("TS")[0].as_py() == datetime(2024, 1, 2, 3, 4, 5, 6)
    assert out.column("D").type == pa.timestamp("us")
    oracledb.from_arrow(out)  # the driver accepts every column
    text = prepare(batch, [BindColumn("TS", "timestamp", parse_type("VARCHAR2(27 CHAR)"))])
    assert text.column("TS").to_pylist() == ["2024-01-02T03:04:05.000006Z", None]
    assert empty_key_mask(batch, ["S", "I"]).to_pylist() == [True, False]
    assert empty_key_mask(batch, ["I"]) is None
    assert text_extent(batch.column("S"), "string") == (1, 2)


@pytest.mark.parametrize("version,extended,compatible,ident,expect", [
    # V$PARAMETER not granted (None): the version decides
    ("19.22.0.0.0", False, None, 128, (128, 4000, False, False)),
    ("23.5.0.24.7", True, "23.0.0", 128, (128, 32767, True, True)),
    ("23.5.0.24.7", False, "19.0.0", 128, (128, 4000, False, False)),  # a 23ai server at COMPATIBLE 19: no JSON/BOOLEAN
    ("21.3.0.0.0", False, "20.0.0", 0, (128, 4000, True, False)),  # no max_identifier_length from the driver: by version
    ("12.1.0.2.0", False, None, 0, (30, 4000, False, False)),
])
def test_server_features_from_the_version_and_the_probes(version: str, extended: bool, compatible, ident: int, expect):
    from spool_target.load.oracle.connect import features_from_probes

    f = features_from_probes(version, extended_strings=extended, compatible=compatible, max_identifier_length=ident,
                             banner="Oracle Database", charset="AL32UTF8", current_schema="APP")
    assert (f.max_identifier_length, f.max_string_bytes, f.json_type, f.boolean_type) == expect
    assert (f.banner, f.charset, f.current_schema, f.version_text) == ("Oracle Database", "AL32UTF8", "APP",
                                                                       ".".join(version.split(".")))


def test_a_probe_falls_back_only_when_its_view_is_not_visible():
    """Real driver errors: ORA-00942/01031/00904 mean "not granted, use the version"; a lost
    connection (ORA-03113, remapped by the driver to DPY-4011) must not be mistaken for that."""
    from oracledb import errors as driver_errors

    from spool_target.load.oracle.connect import NOT_VISIBLE
    from spool_target.load.oracle.errors import error_code

    def server_error(code: int, text: str) -> BaseException:
        err = driver_errors._Error(f"ORA-{code:05d}: {text}", code=code)
        return err.exc_type(err)

    assert error_code(server_error(942, "table or view does not exist")) in NOT_VISIBLE
    assert error_code(server_error(1031, "insufficient privileges")) in NOT_VISIBLE
    assert error_code(server_error(910, "specified length too long for its datatype")) == "ORA-00910"  # STANDARD strings
    assert error_code(server_error(3113, "end-of-file on communication channel")) not in NOT_VISIBLE


# ---- keys: a primary key Oracle accepts ---------------------------------------------------
@pytest.mark.parametrize("features,keys,expected", [
    # one string key without maxLength: VARCHAR2(4000 CHAR) counts 4,000 bytes under STANDARD, and fits
    (V19, [("K", "string", None)], {"K": "VARCHAR2(4000 CHAR)"}),
    # two of them would be 8,000 bytes (ORA-01450): they share 6,398 - 2 - 9 bytes, 4 bytes per character
    (V19, [("A", "string", None), ("B", "string", None)], {"A": "VARCHAR2(798 CHAR)", "B": "VARCHAR2(798 CHAR)"}),
    # EXTENDED: VARCHAR2(4000 CHAR) alone is 16,000 bytes
    (EXT, [("K", "string", None)], {"K": "VARCHAR2(1597 CHAR)"}),
    # a declared maxLength is kept; the rest share what is left; a date-time key is TIMESTAMP(6) (ORA-02329)
    (V19, [("T", "string", 10), ("C", "string", None), ("AT", "timestamp", None), ("N", "integer", None)],
     {"T": "VARCHAR2(10 CHAR)", "C": "VARCHAR2(4000 CHAR)", "AT": "TIMESTAMP(6)", "N": "NUMBER(38)"}),
    # a single-byte character set counts one byte per character
    (ServerFeatures.from_version((19, 22), charset="WE8MSWIN1252"), [("A", "string", None), ("B", "string", None)],
     {"A": "VARCHAR2(3193 CHAR)", "B": "VARCHAR2(3193 CHAR)"}),
])
def test_key_columns_fit_one_index_entry(features: ServerFeatures, keys, expected: dict[str, str]):
    """Finding 3 (ORA-01450: "the sum of the width of all indexed columns plus the number of indexed
    columns" may not exceed 6,398 bytes on an 8K block) and finding 2 (ORA-02329)."""
    types = OracleTypes(features, TypeSettings())
    got = types.key_types(keys, {})
    assert got == expected
    width = sum(types.index_bytes(parse_type(t)) for t in got.values()) + len(got)
    assert width <= 6398 - 9


def test_keys_that_cannot_be_indexed_are_refused():
    from spool_target.load.oracle.types import KeyTooLong

    types = OracleTypes(V19, TypeSettings())
    with pytest.raises(KeyTooLong, match="key column DOC would be CLOB, which Oracle cannot compare or index"):
        types.key_types([("DOC", "json", None)], {})
    with pytest.raises(KeyTooLong, match=r"take more than the 6,398 bytes .*ORA-01450"):
        types.key_types([("A", "string", 1000), ("B", "string", 1000)], {})
    assert types.key_types([("K", "string", None)], {"K": "VARCHAR2(50 BYTE)"}) == {"K": "VARCHAR2(50 BYTE)"}  # column_types


def test_a_key_column_that_would_outgrow_the_index_is_not_widened():
    """Widening a key VARCHAR2 in place would fail at the ALTER with ORA-01450: say it first."""
    from spool_target.errors import DestinationError
    from spool_target.load.oracle.connect import ConnectSettings
    from spool_target.load.oracle.destination import OracleDestination
    from spool_target.load.oracle.session import CatalogColumn, RecordingSession
    from spool_target.naming import TableRef

    cfg = OracleOptions(load_strategy="insert", batch_rows=10, load_method="upsert", column_types={}, varchar_length=4000,
                        prefer_float=False, timestamp_type="timestamp_tz", max_identifier_length=None)
    cols = [CatalogColumn("A", "VARCHAR2(700 CHAR)"), CatalogColumn("B", "VARCHAR2(700 CHAR)")]
    rec = RecordingSession(V19, tables={("APP", "T"): cols}, keys={("APP", "T"): ["A", "B"]})
    dest = OracleDestination(ConnectSettings(user="u", label="x", target_schema="APP"), cfg, session=lambda _: rec)
    dest.connect()
    dest.widen_column(TableRef(None, "T"), ColumnSpec("A", "string", 800))  # 3,200 + 2,800 + 2 + 9 bytes: fits
    assert rec.lines[-1].endswith('MODIFY ("A" VARCHAR2(800 CHAR));')
    with pytest.raises(DestinationError, match=r"key column A would grow from VARCHAR2\(800 CHAR\) to VARCHAR2\(900 CHAR\)"
                                               r".*\(6,411 of 6,398 bytes, ORA-01450\)"):
        dest.widen_column(TableRef(None, "T"), ColumnSpec("A", "string", 900))


# ---- COMPATIBLE decides JSON and BOOLEAN (finding 5) -----------------------------------------
def test_compatible_comes_from_db_version_and_an_unknown_one_is_not_guessed_high():
    """DBMS_UTILITY.DB_VERSION gives COMPATIBLE to every user (V$PARAMETER usually is not readable);
    a 23ai server at COMPATIBLE 19 creates no JSON or BOOLEAN column, and takes no JSON scalars."""
    from spool_target.load.oracle.connect import features_from_probes

    # not readable at all: the lowest COMPATIBLE a 21c+ server accepts (19), not the version
    f = features_from_probes("23.5.0.24.7", extended_strings=False, compatible=None)
    assert (f.json_type, f.boolean_type) == (False, False) and f.compatible == "19.0.0"
    f = features_from_probes("23.5.0.24.7", extended_strings=False, compatible="19.0.0")
    assert (f.json_type, f.boolean_type, f.json_scalars) == (False, False, False)
    f = features_from_probes("23.5.0.24.7", extended_strings=False, compatible="23.4.0")
    assert (f.json_type, f.boolean_type, f.json_scalars, f.compatible) == (True, True, True, "23.4.0")
    from spool_target.load.oracle.sql import DB_VERSION  # what DriverSession.db_version runs

    assert DB_VERSION == "BEGIN DBMS_UTILITY.DB_VERSION(:1, :2); END;"


# ---- numbers: every digit, no float step (TYPING_SPEC, Loading) ---------------------------------
def test_decimal_maps_to_number_and_widens_exactly():
    from spool_target.load.oracle.types import combine, widen

    float_pref = OracleTypes(V19, TypeSettings(prefer_float=True))
    assert float_pref.sql_type("decimal") == "NUMBER" and float_pref.sql_type("number") == "BINARY_DOUBLE"
    assert widen("integer", "number") == widen("number", "decimal") == widen("integer", "decimal") == "decimal"
    assert widen("decimal", "string") == "string" and widen("decimal", "json") == "json"
    assert combine("json", "string") == "string" and combine("json", "json") == "json"


def test_numbers_bind_as_their_exact_decimal_text():
    """A float64 column means the decimal of each value's shortest repr; a decimal column is the text as
    sent. Both reach NUMBER as text through TO_NUMBER (NLS_NUMERIC_CHARACTERS fixed at connect), never as
    a BINARY_DOUBLE bind (which python-oracledb would use for float64: from_arrow_schema)."""
    import oracledb
    import pyarrow as pa

    from spool_target.load.oracle.binds import BindColumn, prepare

    batch = pa.RecordBatch.from_pydict({
        "F": pa.array([0.1, 1e16, 0.30000000000000004, None], pa.float64()),
        "D": pa.array(["12345678901234.5678", "1.10", "1E-5", "9007199254740993"], pa.string()),
        "I": pa.array([9007199254740993, 1, 2, 3], pa.int64()),
    })
    cols = [BindColumn("F", "number", parse_type("NUMBER")), BindColumn("D", "decimal", parse_type("NUMBER")),
            BindColumn("I", "integer", parse_type("NUMBER(38)"))]
    out = prepare(batch, cols)
    assert out.column("F").to_pylist() == ["0.1", "1e+16", "0.30000000000000004", None]
    assert [float(v) for v in out.column("F").to_pylist()[:3]] == [0.1, 1e16, 0.30000000000000004]  # the same doubles
    assert out.column("D").to_pylist() == ["12345678901234.5678", "1.10", "1E-5", "9007199254740993"]  # as sent
    assert out.column("I").to_pylist()[0] == 9007199254740993 and out.column("I").type == pa.int64()
    assert [c.placeholder_wrap for c in cols] == ["TO_NUMBER({})", "TO_NUMBER({})", "{}"]
    from spool_target.load.oracle.binds import arrow_bind_type

    assert [arrow_bind_type(t) for t in out.schema.types] == ["DB_TYPE_VARCHAR", "DB_TYPE_VARCHAR", "DB_TYPE_NUMBER"]
    oracledb.from_arrow(out)
    # BINARY_DOUBLE (prefer_float, or column_types): doubles only -- direct path takes nothing else (DPY-3039)
    dbl = prepare(batch, [BindColumn("I", "integer", parse_type("BINARY_DOUBLE"))])
    assert dbl.column("I").type == pa.float64()


def test_direct_path_arrow_rules_follow_the_driver():
    """OracleMetadata.check_convert_from_arrow (impl/base/metadata.pyx): integers only into NUMBER,
    strings only into character columns, doubles into BINARY_DOUBLE or NUMBER; CLOB counts as LONG."""
    import pyarrow as pa

    from spool_target.load.oracle.binds import direct_path_accepts

    T = parse_type
    assert direct_path_accepts(pa.int64(), T("NUMBER(38)")) and not direct_path_accepts(pa.int64(), T("BINARY_DOUBLE"))
    assert not direct_path_accepts(pa.string(), T("NUMBER")) and direct_path_accepts(pa.string(), T("VARCHAR2(10 BYTE)"))
    assert direct_path_accepts(pa.float64(), T("BINARY_DOUBLE")) and direct_path_accepts(pa.large_string(), T("CLOB"))
    assert not direct_path_accepts(pa.bool_(), T("NUMBER(1)")) and direct_path_accepts(pa.int8(), T("NUMBER(1)"))
    assert direct_path_accepts(pa.timestamp("us"), T("TIMESTAMP(6)")) and not direct_path_accepts(pa.date32(), T("VARCHAR2(9 CHAR)"))


def test_direct_path_calls_stay_below_the_message_limit():
    """One direct path message may hold about 1 GiB (TNS_DPLS_MAX_MESSAGE_SIZE; DPY-4041):
    a batch of wide rows is cut into slices by size, not only by row count."""
    import pyarrow as pa

    from spool_target.load.oracle.binds import direct_path_chunks, wire_bytes

    table = pa.table({"ID": pa.array(range(1000), pa.int64()), "TXT": pa.array(["x" * (i % 50) for i in range(1000)])})
    limit = 4096
    chunks = list(direct_path_chunks(table, limit))
    assert len(chunks) > 1 and sum(c.num_rows for c in chunks) == 1000
    assert all(sum(wire_bytes(c).to_pylist()) <= limit for c in chunks)
    assert pa.concat_tables(chunks).equals(table)  # in order, nothing lost
    assert [c.num_rows for c in direct_path_chunks(table)] == [1000]  # far below 256 MiB: one call


def test_json_scalars_are_told_from_objects_and_arrays():
    import pyarrow as pa

    from spool_target.load.oracle.binds import has_json_scalar

    assert not has_json_scalar(pa.array(['{"a": 1}', ' [1]', None]))
    assert has_json_scalar(pa.array(['{"a": 1}', '"abc"'])) and has_json_scalar(pa.array(["5"]))
    assert not has_json_scalar(pa.array([None, None], pa.string()))


def test_a_varchar2_is_json_column_of_someone_elses_binds_as_varchar_and_is_left_alone():
    """Only CLOB text binds as LONG: a LONG bind into a VARCHAR2 column fails (ORA-01461)."""
    import pyarrow as pa

    from spool_target.load.oracle.binds import BindColumn, prepare

    t = parse_type("VARCHAR2(4000 BYTE)", is_json=True)
    assert t.family == "json" and not t.is_long_text and logical_of(t) is None  # not ours: never widened
    out = prepare(pa.RecordBatch.from_pydict({"J": pa.array(['{"a": 1}'])}), [BindColumn("J", "json", t)])
    assert out.column("J").type == pa.string()
    assert parse_type("CLOB", is_json=True).is_long_text and not parse_type("JSON").is_long_text
