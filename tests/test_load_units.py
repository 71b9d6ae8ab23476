"""The load engine's pure parts, in process: naming, retry policy, URLs, units."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from spool_target.errors import ConfigError
from spool_target.load.destination import DestinationKind, WriteMode, parse_destination
from spool_target.load.units import RunPlan, group_units, plan_overwrite
from spool_target.load.retry import Backoff
from spool_target.naming import DUCKDB, CaseFold, NamingRules, TableRef, column_names, table_names
from spool_target.schema import METADATA_NAMES
from spool_target.spool.entries import ActivateVersion, Segment, entry_from_json
from spool_target.spool.manifest import Manifest


def h(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


# --- naming -------------------------------------------------------------------
def test_duckdb_table_names_are_legal_deterministic_and_collision_free():
    streams = ["public-users", "public_users", "Users", "users", "ünï-表", "", "_spool_ledger", "_spool_stage_x", "a" * 300]
    tables = table_names(streams, DUCKDB)
    assert tables["public-users"] == TableRef(None, "public_users")
    assert tables["public_users"] == TableRef(None, f"public_users_{h('public_users')}")  # seen second
    assert tables["Users"].name == "Users" and tables["users"].name == f"users_{h('users')}"  # DuckDB ignores case
    assert tables["ünï-表"].name == "ünï_表"
    assert tables[""].name == f"c_{h('')}"
    assert tables["_spool_ledger"].name == f"_spool_ledger_{h('_spool_ledger')}"  # the ledger's name is taken
    assert tables["_spool_stage_x"].name == "t_spool_stage_x"  # never swept as a staging table
    assert len(tables["a" * 300].name.encode()) == 255 and tables["a" * 300].name.endswith("_" + h("a" * 300))
    assert table_names(streams, DUCKDB) == tables


def test_table_mappings_and_default_schema():
    tables = table_names(["public-users", "orders"], DUCKDB, default_schema="raw",
                         mappings={"public-users": "crm.people"})
    assert tables == {"public-users": TableRef("crm", "people"), "orders": TableRef("raw", "orders")}
    with pytest.raises(ConfigError, match="'bad name' is not a legal DuckDB name"):
        table_names(["x"], DUCKDB, mappings={"x": "bad name"})
    with pytest.raises(ConfigError, match="'a' and 'b' are both mapped to 'same'"):
        table_names(["a", "b"], DUCKDB, mappings={"a": "same", "b": "same"})


def test_column_names_keep_metadata_and_resolve_case_collisions_by_first_seen_order():
    meta = sorted(METADATA_NAMES)
    first = column_names("s", ["id", "e-mail"], DUCKDB, reserved_first=meta)
    assert {m: first[m] for m in meta} == {m: m for m in meta}
    assert first["e-mail"] == "e_mail"
    # A later schema adds ID and a property that looks like a metadata column:
    # earlier names never change, the newcomers step aside.
    later = column_names("s", ["id", "e-mail", "ID", "_SDC_SEQUENCE"], DUCKDB, reserved_first=meta)
    assert later["id"] == "id" and later["e-mail"] == "e_mail"
    assert later["ID"] == f"ID_{h('ID')}" and later["_SDC_SEQUENCE"] == f"_SDC_SEQUENCE_{h('_SDC_SEQUENCE')}"
    mapped = column_names("s", ["id", "ID"], DUCKDB, mappings={"ID": "id_upper"})
    assert mapped == {"id": "id", "ID": "id_upper"}


def test_rules_for_an_upper_case_dialect_like_oracle():
    rules = NamingRules(dialect="Oracle-like", max_bytes=30, fold=CaseFold.UPPER, leading_underscore=False,
                        leading_digit=False, lead_prefix="x_", reserved=frozenset({"DATE", "SELECT"}))
    assert rules.legalize("_sdc_sequence") == "X_SDC_SEQUENCE"
    assert rules.legalize("2fa") == "X_2FA"
    assert rules.legalize("date") == "DATE_"
    long = rules.legalize("a_very_long_property_name_that_does_not_fit")
    assert len(long) == 30 and long.endswith("_" + h("a_very_long_property_name_that_does_not_fit").upper())
    assert column_names("s", ["id", "ID"], rules) == {"id": "ID", "ID": f"ID_{h('ID').upper()}"}


def test_quote_doubles_quote_characters_and_refuses_nul():
    assert DUCKDB.quote('a"b') == '"a""b"'
    assert DUCKDB.qualified("main", "t") == '"main"."t"'
    with pytest.raises(ValueError):
        DUCKDB.quote("a\x00b")


# --- retry ----------------------------------------------------------------------
def test_backoff_grows_with_jitter_stays_within_the_budget_and_resets():
    now = [0.0]
    b = Backoff(max_wait=10.0, base=0.5, cap=4.0, clock=lambda: now[0], rng=random.Random(1))
    delays = []
    while (d := b.next_delay()) is not None:
        delays.append(d)
        now[0] += d
    assert sum(delays) == pytest.approx(10.0)  # the last delay is cut to the budget
    assert all(0.05 <= d <= 4.0 for d in delays) and len(delays) >= 4
    assert b.next_delay() is None
    b.reset()
    assert b.next_delay() is not None and b.attempts == 1


def test_zero_max_wait_means_no_retry():
    assert Backoff(max_wait=0).next_delay() is None


# --- destination URLs ---------------------------------------------------------
def test_parse_destination(tmp_path: Path):
    implicit = parse_destination("", tmp_path)
    assert (implicit.kind, implicit.path, implicit.implicit) == (DestinationKind.DUCKDB, tmp_path / "spool.duckdb", True)
    assert parse_destination("duckdb:///rel/x.duckdb", tmp_path).path == Path("rel/x.duckdb")
    assert parse_destination("duckdb:////abs/x.duckdb", tmp_path).path == Path("/abs/x.duckdb")
    ora = parse_destination("oracle://scott@db.example.com:1522/FREEPDB1", tmp_path)
    assert (ora.kind, ora.user, ora.host, ora.port, ora.service) == (DestinationKind.ORACLE, "scott", "db.example.com", 1522, "FREEPDB1")
    assert ora.describe() == "oracle://scott@db.example.com:1522/FREEPDB1"
    assert parse_destination("", tmp_path, oracle_configured=True).kind is DestinationKind.ORACLE
    for bad, text in [("duckdb://x.duckdb", "three slashes"), ("spool.duckdb", "not a URL"),
                      ("oracle://u:pw@h/s", "holds a password"), ("oracle://u@h:port/s", "port is not a number")]:
        with pytest.raises(ConfigError, match=text):
            parse_destination(bad, tmp_path)


def test_a_destination_without_its_module_is_a_clear_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from spool_target.load.destination import open_destination

    monkeypatch.setitem(sys.modules, "spool_target.load.oracle", None)  # as if the module were not installed
    spec = parse_destination("oracle://scott@db:1521/FREEPDB1", tmp_path)
    with pytest.raises(ConfigError, match="the oracle destination is not available in this build"):
        open_destination(spec, None, None)


# --- units ----------------------------------------------------------------------
def seg(n: int, rows: int) -> Segment:
    return Segment("s", f"streams/s/{n}.parquet", rows, 1, "x", "id", 0, 0, None, None, n=n)


def test_group_units_keeps_order_splits_at_activate_version_and_limits():
    av = ActivateVersion("s", 2, n=3)
    items = [seg(1, 5), seg(2, 5), av, seg(4, 20), seg(5, 1), seg(6, 1), seg(7, 1)]
    units = group_units(items, max_rows=10, max_segments=2)
    assert [[i.n for i in u] for u in units] == [[1, 2], [3], [4], [5, 6], [7]]


def test_overwrite_plans_whole_ended_runs_and_supersedes_older_ones():
    def segment(n: int, run: str, replay_of: str = "") -> dict:
        return {"n": n, "kind": "segment", "stream": "s", "path": f"p{n}", "rows": 1, "bytes": 1, "sha256": "x",
                "schema_id": "id", "run_id": run, **({"replay_of": replay_of} if replay_of else {})}

    entries = [entry_from_json(e) for e in [
        {"n": 0, "kind": "spool", "spool_id": "sp"},
        segment(1, "A"), segment(2, "A"), {"n": 3, "kind": "run_end", "run_id": "A"},
        segment(4, "B"),  # B died
        segment(5, "C"), {"n": 6, "kind": "activate_version", "stream": "s", "version": 7, "run_id": "C"},
        {"n": 7, "kind": "run_end", "run_id": "C"},
        segment(8, "D"),  # D is running
        segment(9, "R", replay_of="A"), segment(10, "R2", replay_of="C"),
    ]]
    manifest = Manifest("sp", entries)
    plan = plan_overwrite(manifest, "s", {})
    assert plan.run == "C" and plan.replace
    assert [i.n for i in plan.load] == [5, 6, 10]
    assert [i.n for i in plan.superseded] == [1, 2, 4, 9] and [i.n for i in plan.waiting] == [8]
    # C loaded already: what a replay brings back to it is appended, nothing is replaced.
    loaded = {"p5": None, "activate_version/6": None}
    plan = plan_overwrite(manifest, "s", loaded)  # type: ignore[arg-type]
    assert ([i.n for i in plan.load], plan.replace) == ([10], False)
    # No run has ended yet: everything waits.
    assert plan_overwrite(Manifest("sp", entries[:3]), "s", {}) == RunPlan(None, [], True, [], [entries[1], entries[2]])


def test_ingest_does_not_import_the_load_engine():
    code = "import sys, spool_target.cli; print(sorted(m for m in sys.modules if m.startswith('spool_target.load')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the DuckDB destination on its own (a real file) ------------------------------
def test_duckdb_ledger_refuses_an_item_twice(tmp_path: Path):
    from datetime import datetime, timezone

    import duckdb

    from spool_target.load.destination import (ActivateStep, AlreadyLoaded, DeleteMode, LedgerRow, LoadUnit,
                                               MetaColumns)
    from spool_target.load.duckdb_destination import DuckDBDestination

    dest = DuckDBDestination(tmp_path / "d.duckdb")
    dest.connect()
    dest.ensure_ledger()
    row = LedgerRow("spool-1", "activate_version/3", "activate_version", "s", "s", 0, "", "run")
    unit = LoadUnit("s", TableRef(None, "s"), None, WriteMode.APPEND, DeleteMode.SOFT, (),
                    MetaColumns("_sdc_sequence", "_sdc_deleted_at", "_sdc_table_version"),
                    (ActivateStep(row.item, 2, datetime.now(timezone.utc)),), (row,))
    points: list[str] = []
    refused: list = []  # DuckDB holds every record: nothing comes back
    dest.load(unit, points.append, refused.extend)
    assert points == ["before-commit", "after-commit"] and refused == []
    with pytest.raises(AlreadyLoaded) as err:
        dest.load(unit, points.append, refused.extend)
    assert err.value.items == ("activate_version/3",)
    assert set(dest.read_ledger("spool-1")) == {"activate_version/3"} and dest.read_ledger("other") == {}
    # Even past the check, the primary key stops a second commit of one item.
    with pytest.raises(duckdb.ConstraintException):
        dest._con.execute("INSERT INTO _spool_ledger SELECT * FROM _spool_ledger")
    dest.close()
