"""Exactly as sent (I8): regressions for values that used to change on the way.

Each test compares what lands with what the tap sent -- the JSON text or
its exact decimal -- never with what spool-target produced before. The
property test (test_roundtrip.py) covers the typing rules at large; these
pin the defects found by review, one by one, through the real CLI.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from conftest import manifest_entries, record_msg, run_cli, schema_msg, singer_lines
from loadkit import db_path, ingest, load, query


def _rejects(spool: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(spool.glob("rejects/*/*.jsonl")) for line in f.read_text().splitlines()]


def _segment_rows(spool: Path) -> list[dict]:
    return [row for e in manifest_entries(spool) if e["kind"] == "segment" for row in pq.read_table(spool / e["path"]).to_pylist()]


def test_an_undeclared_property_leaves_declared_values_and_the_raw_line_untouched(spool: Path) -> None:
    """Defect 3: one undeclared property re-encoded the whole record through orjson."""
    schema = schema_msg("t", {"id": {"type": "integer"}, "s": {"type": "string"}, "n": {"type": "number"}}, ["id"])
    good = b'{"type": "RECORD", "stream": "t", "record": {"id": 1, "s": 123456789012345678901234567890, "n": 0.1000000000000000000001, "x": 1.50}}'
    bad = b'{"type": "RECORD", "stream": "t", "record": {"id": 1.5, "x": 123456789012345678901234567890}}'
    r = run_cli("ingest", "--spool", str(spool), input=singer_lines([schema]) + good + b"\n" + bad + b"\n")
    assert r.returncode == 0, r.stderr
    [row] = _segment_rows(spool)
    assert row["s"] == "123456789012345678901234567890"
    assert Decimal(row["n"]) == Decimal("0.1000000000000000000001")
    assert row["_sdc_extra"] == '{"x":1.50}'
    [reject] = _rejects(spool)
    assert reject["raw"].encode() == bad  # byte for byte, so `rejects replay` can recover it


def test_batch_records_keep_undeclared_properties_like_record_lines(spool: Path, tmp_path: Path) -> None:
    """Defect 10: BATCH records lost what RECORD lines keep in _sdc_extra."""
    batch = tmp_path / "b.jsonl"
    batch.write_bytes(b'{"id": 1, "extra": {"deep": 1.10}}\n')
    msgs = [
        schema_msg("t", {"id": {"type": "integer"}}, ["id"]),
        {"type": "BATCH", "stream": "t", "encoding": {"format": "jsonl"}, "manifest": [batch.as_uri()]},
    ]
    r = run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs) + b'{"type":"RECORD","stream":"t","record":{"id": 2, "extra": {"deep": 1.10}}}\n')
    assert r.returncode == 0, r.stderr
    rows = _segment_rows(spool)
    assert [(x["id"], x["_sdc_extra"]) for x in rows] == [(1, '{"extra":{"deep": 1.10}}'), (2, '{"extra":{"deep": 1.10}}')]


def test_a_property_named_empty_string_is_stored(spool: Path) -> None:
    """Defect 8: a property named "" crashed ingest on every rerun."""
    msgs = [schema_msg("t", {"": {"type": "string"}, "id": {"type": "integer"}}, ["id"]), record_msg("t", {"": "v", "id": 1})]
    r = run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs))
    assert r.returncode == 0, r.stderr
    assert [row[""] for row in _segment_rows(spool)] == ["v"]


def test_duplicate_keys_keep_the_last_value_on_every_path(spool: Path) -> None:
    """Defect 15: DuckDB kept the first value, Python the last; "record" twice was an internal error."""
    schema = singer_lines([schema_msg("t", {"id": {"type": "integer"}, "v": {"type": "string"}}, ["id"])])
    lines = (
        b'{"type":"RECORD","stream":"t","record":{"id":1,"v":"first","v":"last"}}\n'
        b'{"type":"RECORD","stream":"t","record":{"id":2,"v":"first","v":"last","undeclared":1}}\n'
        b'{"type":"RECORD","stream":"t","record":{"id":3,"v":"ignored"},"record":{"id":3,"v":"last"}}\n'
    )
    r = run_cli("ingest", "--spool", str(spool), input=schema + lines)
    assert r.returncode == 0, r.stderr
    assert [(x["id"], x["v"]) for x in _segment_rows(spool)] == [(1, "last"), (2, "last"), (3, "last")]


def test_values_json_cannot_carry_go_to_rejects_and_the_run_goes_on(spool: Path) -> None:
    """Defect 15: NaN, 1e400 and lone surrogates stopped ingest with exit 3."""
    schema = singer_lines([schema_msg("t", {"id": {"type": "integer"}, "v": {}}, ["id"])])
    bad = [
        b'{"type":"RECORD","stream":"t","record":{"id":1,"v":NaN}}',
        b'{"type":"RECORD","stream":"t","record":{"id":2,"v":-Infinity}}',
        b'{"type":"RECORD","stream":"t","record":{"id":3,"v":1e400}}',
        b'{"type":"RECORD","stream":"t","record":{"id":4,"v":"\\ud800"}}',
    ]
    ok = b'{"type":"RECORD","stream":"t","record":{"id":5,"v":1}}'
    r = run_cli("ingest", "--spool", str(spool), input=schema + b"\n".join(bad + [ok]) + b"\n")
    assert r.returncode == 0, r.stderr
    rejects = _rejects(spool)
    assert [x["raw"].encode() for x in rejects] == bad
    assert "NaN" in rejects[0]["reason"] and "surrogate" in rejects[3]["reason"]
    assert [x["id"] for x in _segment_rows(spool)] == [5]


def test_a_date_with_an_offset_keeps_its_utc_date(spool: Path) -> None:
    """Defect 6: the local date was kept, not the UTC date the README promises."""
    msgs = [schema_msg("t", {"id": {"type": "integer"}, "d": {"type": "string", "format": "date"}}, ["id"]),
            record_msg("t", {"id": 1, "d": "2024-01-01T23:00:00-05:00"}), record_msg("t", {"id": 2, "d": "2024-01-01"})]
    assert run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs)).returncode == 0
    assert [str(x["d"]) for x in _segment_rows(spool)] == ["2024-01-02", "2024-01-01"]


def test_one_bad_value_in_a_wide_buffer_stays_within_memory(spool: Path) -> None:
    """Defect 9: 48,687 records x 100 string columns plus one bad date-time ran
    DuckDB's strict query out of memory on every rerun."""
    props = {f"c{i}": {"type": "string"} for i in range(100)} | {"ts": {"type": "string", "format": "date-time"}}
    schema = singer_lines([schema_msg("wide", props)])
    row = ",".join(f'"c{i}":"value number {i:03d}"' for i in range(100))
    body = b"".join(
        b'{"type":"RECORD","stream":"wide","record":{' + row.encode() + b',"ts":"2024-01-01T00:00:00Z"}}\n' for _ in range(48_686)
    )
    body += b'{"type":"RECORD","stream":"wide","record":{' + row.encode() + b',"ts":"bad"}}\n'
    script = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run([sys.executable, '-m', 'spool_target', 'ingest', '--spool', sys.argv[1]], stdin=sys.stdin)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(r.returncode)\n"
    )
    r = run_cli_measured(script, spool, schema + body)
    assert r[0] == 0, r
    assert r[1] < 600 * 1024, f"peak RSS {r[1] // 1024} MB"  # the ~64 MiB buffer, not a blow-up
    [reject] = _rejects(spool)
    assert "'ts'" in reject["reason"] and reject["line"] == 48_688
    assert sum(e["rows"] for e in manifest_entries(spool) if e["kind"] == "segment") == 48_686


def run_cli_measured(script: str, spool: Path, data: bytes) -> tuple[int, int]:
    import subprocess
    import sys

    from conftest import cli_env

    p = subprocess.run([sys.executable, "-c", script, str(spool)], input=data, capture_output=True, env=cli_env(), timeout=300)
    return p.returncode, int(p.stdout.split()[-1]) if p.stdout.split() else -1


def test_widening_integer_to_number_keeps_every_loaded_digit(spool: Path) -> None:
    """Defect 11: 9007199254740993, loaded, became 9007199254740992 once the
    column was altered to DOUBLE."""
    ingest(spool, [schema_msg("t", {"id": {"type": "integer"}, "n": {"type": "integer"}}, ["id"]),
                   record_msg("t", {"id": 1, "n": 9007199254740993})])
    load(spool)
    ingest(spool, [schema_msg("t", {"id": {"type": "integer"}, "n": {"type": "number"}}, ["id"]),
                   record_msg("t", {"id": 2, "n": 0.1})])
    load(spool)
    rows = query(db_path(spool), "SELECT id, n FROM t ORDER BY id")
    assert [(i, Decimal(str(n))) for i, n in rows] == [(1, Decimal("9007199254740993")), (2, Decimal("0.1"))]


def test_exact_decimals_reach_duckdb_digit_for_digit(spool: Path) -> None:
    """The first table of the issue: what tap-postgres sends for numeric columns."""
    sent = ["12345678901234.5678", "-9999999999999999.9999", "1.10", "0.33333333333333333333"]
    schema = singer_lines([schema_msg("t", {"id": {"type": "integer"}, "n": {"type": ["number", "null"]}}, ["id"])])
    lines = b"".join(f'{{"type":"RECORD","stream":"t","record":{{"id":{i},"n":{v}}}}}\n'.encode() for i, v in enumerate(sent))
    assert run_cli("ingest", "--spool", str(spool), input=schema + lines).returncode == 0
    load(spool)
    assert [Decimal(n) for (n,) in query(db_path(spool), "SELECT n FROM t ORDER BY id")] == [Decimal(v) for v in sent]


def test_an_upsert_key_is_stored_the_same_when_its_type_becomes_a_union(spool: Path, tmp_path: Path) -> None:
    """Defect 12: `abc` and `"abc"` were stored as two rows once the key's
    type became ["string", "integer"]."""
    from loadkit import config_file

    cfg = config_file(tmp_path, load_method="upsert")
    ingest(spool, [schema_msg("t", {"k": {"type": "string"}, "v": {"type": "integer"}}, ["k"]), record_msg("t", {"k": "abc", "v": 1})])
    load(spool, "--config", str(cfg))
    ingest(spool, [schema_msg("t", {"k": {"type": ["string", "integer"]}, "v": {"type": "integer"}}, ["k"]),
                   record_msg("t", {"k": "abc", "v": 2}), record_msg("t", {"k": 5, "v": 3})])
    load(spool, "--config", str(cfg))
    assert query(db_path(spool), "SELECT k, v FROM t ORDER BY k") == [("5", 3), ("abc", 2)]


def test_a_rejected_record_does_not_decide_a_number_column_type(spool: Path) -> None:
    """A number column is float64 when every stored value is double-exact. A record refused
    for another property (here a bad date) is not stored, so its 18-digit decimal must not
    turn the column into text."""
    schema = schema_msg("t", {"id": {"type": "integer"}, "n": {"type": "number"}, "d": {"type": "string", "format": "date"}}, ["id"])
    lines = (
        b'{"type":"RECORD","stream":"t","record":{"id":1,"n":0.5,"d":"2024-01-01"}}\n'
        b'{"type":"RECORD","stream":"t","record":{"id":2,"n":12345678901234.5678,"d":"2024-01-01T25:00:00Z"}}\n'
        b'{"type":"RECORD","stream":"t","record":{"id":3,"n":-24614012.0380,"d":"2024-02-29"}}\n'
    )
    r = run_cli("ingest", "--spool", str(spool), input=singer_lines([schema]) + lines)
    assert r.returncode == 0, r.stderr
    [segment] = [e for e in manifest_entries(spool) if e["kind"] == "segment"]
    table = pq.read_table(spool / segment["path"])
    assert str(table.schema.field("n").type) == "double"
    assert [(x["id"], Decimal(repr(x["n"]))) for x in table.to_pylist()] == [(1, Decimal("0.5")), (3, Decimal("-24614012.0380"))]
    [reject] = _rejects(spool)
    assert reject["line"] == 3 and "date" in reject["reason"]
