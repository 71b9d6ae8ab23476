"""End-to-end tests of `spool-target ingest` through the real CLI."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spool_target.spool.records import COMPILED

from conftest import (
    DATA,
    cli_env,
    manifest_entries,
    record_msg,
    run_cli,
    schema_msg,
    singer_lines,
    state_msg,
)


def segment_rows(spool: Path, stream: str | None = None) -> list[dict]:
    rows: list[dict] = []
    for e in manifest_entries(spool):
        if e["kind"] == "segment" and (stream is None or e["stream"] == stream):
            rows.extend(pq.read_table(spool / e["path"]).to_pylist())
    return rows


def rejects(spool: Path) -> list[dict]:
    out = []
    for p in sorted((spool / "rejects").glob("*/*.jsonl")):
        out.extend(json.loads(line) for line in p.read_text().splitlines())
    return out


def users(n: int, start: int = 0, state_every: int = 0) -> list[dict]:
    msgs = [schema_msg("users", {"id": {"type": "integer"}, "name": {"type": "string"}}, ["id"])]
    for i in range(start, start + n):
        msgs.append(record_msg("users", {"id": i, "name": f"user {i}"}))
        if state_every and (i + 1) % state_every == 0:
            msgs.append(state_msg({"users": i}))
    return msgs


def test_spools_records_and_emits_final_state(spool: Path) -> None:
    result = run_cli("ingest", "--spool", str(spool), input=singer_lines(users(25, state_every=10)))
    assert result.returncode == 0, result.stderr
    # Both STATEs' data was committed; only values, one JSON line each.
    states = [json.loads(line) for line in result.stdout.splitlines()]
    assert states[-1] == {"users": 19}
    assert [r["id"] for r in segment_rows(spool)] == list(range(25))
    entries = manifest_entries(spool)
    assert entries[0]["kind"] == "spool" and entries[0]["format"] == 2
    seg = [e for e in entries if e["kind"] == "segment"][0]
    assert seg["rows"] == 25 and seg["stream"] == "users" and len(seg["sha256"]) == 64
    assert (spool / seg["path"]).stat().st_size == seg["bytes"]
    assert not list((spool / "tmp").iterdir())


@pytest.mark.parametrize("path", ["compiled", "pure-python"])
@pytest.mark.parametrize("blank_line_in_last_block", [False, True])
def test_records_typed_a_block_at_a_time_keep_their_lines_states_and_text(
    spool: Path, tmp_path: Path, blank_line_in_last_block: bool, path: str
) -> None:
    """Ingest types most records a whole input block at a time (``Ingester._take_block``).
    Read from a file, 3.4 MB of input comes in four 1 MiB blocks: the first goes
    line by line (no stream is hot yet); the second holds a STATE, the third
    none; the last ends with a STATE and, in one variant, holds a blank line
    (then it goes line by line, to keep line numbers exact). Line numbers in
    rejects and manifest entries, the STATE value's text and the records must
    be what the input holds, whether blocks take the compiled path
    (``records.BlockPlan``) or the pure-Python one."""
    if path == "compiled" and not COMPILED:
        pytest.skip("the compiled path is not built here")
    schema = schema_msg("users", {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
                                  "n": {"type": "number"}}, ["id"])
    lines = [json.dumps(schema).encode()]
    record_lines: dict[int, int] = {}  # id -> line number
    count, bad = 33_000, {5000, 12000, 25000, 32000}  # a bad date-time in each block
    for i in range(count):
        at = "bad" if i in bad else "2024-02-29T23:59:59+01:00"
        lines.append(b'{"type":"RECORD","stream":"users","record":{"id":%d,"at":"%s","n":12.50}}' % (i, at.encode()))
        record_lines[i] = len(lines)
        if i in (999, 15_999):
            lines.append(b'{"type":"STATE","value":{"users":%d,"n":1.10}}' % i)
        if i == 2000 or (blank_line_in_last_block and i == 32_500):
            lines.append(b"")  # a blank line: skipped, and counted
    lines.append(b'{"type":"\\u0053TATE","value":{"escaped" : 1.0}}')  # "STATE", spelt with an escape
    source = tmp_path / "input.singer"
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert 3 << 20 < source.stat().st_size < 4 << 20
    with open(source, "rb") as stdin:
        result = subprocess.run([sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool)],
                                stdin=stdin, capture_output=True, timeout=120,
                                env={**cli_env(), **({"SPOOL_TARGET_TEST_PURE_PYTHON": "1"} if path != "compiled" else {})})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == b'{"escaped" : 1.0}'
    found = {r["line"]: r for r in rejects(spool)}
    assert set(found) == {record_lines[i] for i in bad}
    for i in bad:
        assert found[record_lines[i]]["raw"] == lines[record_lines[i] - 1].decode()
    rows = segment_rows(spool)
    assert [r["id"] for r in rows] == [i for i in range(count) if i not in bad]
    assert {r["n"] for r in rows} == {12.5}
    [segment] = [e for e in manifest_entries(spool) if e["kind"] == "segment"]
    assert (segment["first_line"], segment["last_line"]) == (2, record_lines[count - 1])
    [run] = [json.loads(p.read_text()) for p in (spool / "runs").glob("ingest-*.json")]
    # The second and third blocks were typed whole by the path under test. (The
    # compiled path leaves the last one to msgspec: a "type" spelt with an escape.)
    if path == "compiled":
        assert run["compiled_block_lines"] > 2 * 8000
    else:
        assert run["compiled_block_lines"] == 0 and run["block_lines"] > 2 * 8000


@pytest.mark.parametrize("path", ["compiled", "pure-python"])
def test_a_flush_inside_a_block_falls_on_the_exact_record(spool: Path, tmp_path: Path, path: str) -> None:
    """With flush_max_rows 3,000, 10,000 records read 64 KiB (about 1,000
    lines) at a time make segments of exactly 3,000, 3,000, 3,000 and 1,000
    rows, whose first and last lines are the input's; the STATEs that go out
    are the same on both paths. The compiled path types a
    block where a flush falls in two parts, one on each side of it; the
    pure-Python one takes that block line by line."""
    if path == "compiled" and not COMPILED:
        pytest.skip("the compiled path is not built here")
    lines = [json.dumps(schema_msg("users", {"id": {"type": "integer"}, "s": {"type": "string"}}, ["id"])).encode()]
    line_of: dict[int, int] = {}
    for i in range(10_000):
        lines.append(b'{"type":"RECORD","stream":"users","record":{"id":%d,"s":"r%d"}}' % (i, i))
        line_of[i] = len(lines)
        if i % 2500 == 2499 or i % 3000 == 2999:
            lines.append(b'{"type":"STATE","value":{"at":%d}}' % i)
    source = tmp_path / "input.singer"
    source.write_bytes(b"\n".join(lines) + b"\n")
    env = {**cli_env(), "SPOOL_TARGET_FLUSH_MAX_ROWS": "3000", "SPOOL_TARGET_TEST_READ_BYTES": "65536"}
    if path != "compiled":
        env["SPOOL_TARGET_TEST_PURE_PYTHON"] = "1"
    with open(source, "rb") as stdin:
        result = subprocess.run([sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool)],
                                stdin=stdin, capture_output=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    # At each flush the last STATE before it goes out; one that comes right after
    # a flush goes out too, with no record left to wait for; the last, at the end.
    assert result.stdout.splitlines() == [b'{"at":%d}' % i for i in (2499, 2999, 4999, 5999, 7499, 8999, 9999)]
    segments = [e for e in manifest_entries(spool) if e["kind"] == "segment"]
    assert [(e["rows"], e["first_line"], e["last_line"]) for e in segments] == [
        (3000, line_of[0], line_of[2999]), (3000, line_of[3000], line_of[5999]),
        (3000, line_of[6000], line_of[8999]), (1000, line_of[9000], line_of[9999]),
    ]
    assert [(r["id"], r["s"]) for r in segment_rows(spool)] == [(i, f"r{i}") for i in range(10_000)]
    [run] = [json.loads(p.read_text()) for p in (spool / "runs").glob("ingest-*.json")]
    if path == "compiled":  # every block but the first, which went line by line (no stream was hot)
        first_block = source.read_bytes()[:65536].count(b"\n")
        assert run["compiled_block_lines"] == len(lines) - first_block


def test_state_waits_for_records_of_every_stream(spool: Path) -> None:
    msgs = users(3) + [
        schema_msg("orders", {"id": {"type": "integer"}}, ["id"]),
        record_msg("orders", {"id": 1}),
        state_msg({"bookmark": 1}),
        record_msg("users", {"id": 99, "name": "late"}),
    ]
    result = run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs))
    assert result.returncode == 0, result.stderr
    # exactly the text the tap sent (json.dumps spaces included): I8
    assert result.stdout.splitlines() == [json.dumps({"bookmark": 1}).encode()]
    entries = manifest_entries(spool)
    state_at = next(i for i, e in enumerate(entries) if e["kind"] == "state")
    committed_before = {e["stream"] for e in entries[:state_at] if e["kind"] == "segment"}
    assert committed_before == {"users", "orders"}


def test_state_flows_on_a_slow_tap_by_the_flush_timer(spool: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"flush_interval_seconds": 0.3}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool), "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(singer_lines(users(5) + [state_msg({"at": 5})]))
    proc.stdin.flush()
    # The tap is now idle but alive: the STATE must still arrive.
    line = proc.stdout.readline()
    assert json.loads(line) == {"at": 5}
    assert [r["id"] for r in segment_rows(spool)] == list(range(5))
    proc.stdin.close()
    proc.wait(timeout=30)
    assert proc.returncode == 0


def test_message_types_are_case_insensitive_and_metadata_columns_are_added(spool: Path) -> None:
    msgs = [
        {"type": "schema", "stream": "s", "schema": {"properties": {"id": {"type": "integer"}}}, "key_properties": ["id"]},
        {"type": "Record", "stream": "s", "record": {"id": 1}, "time_extracted": "2024-05-01T10:00:00+02:00", "version": 7},
        {"type": "record", "stream": "s", "record": {"id": 2, "_sdc_deleted_at": "2024-05-02T00:00:00Z"}},
        {"type": "state", "value": 1},
    ]
    result = run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs))
    assert result.returncode == 0, result.stderr
    rows = segment_rows(spool)
    assert list(rows[0]) == [
        "id", "_sdc_extracted_at", "_sdc_received_at", "_sdc_sequence", "_sdc_table_version", "_sdc_deleted_at", "_sdc_extra",
    ]
    assert rows[0]["_sdc_extracted_at"].isoformat() == "2024-05-01T08:00:00+00:00"
    assert rows[0]["_sdc_table_version"] == 7
    assert rows[1]["_sdc_deleted_at"].isoformat() == "2024-05-02T00:00:00+00:00"
    assert rows[0]["_sdc_sequence"] < rows[1]["_sdc_sequence"]
    assert rows[0]["_sdc_received_at"] is not None


def test_typing_rules_and_rejects(spool: Path) -> None:
    result = run_cli("ingest", "--spool", str(spool), "--input", str(DATA / "typing_rules.singer"))
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in segment_rows(spool)}
    assert sorted(rows) == [1, 2, 3]
    one, two, three = rows[1], rows[2], rows[3]
    assert one["i"] == 2**63 - 1 and one["n"] == 1.5 and one["b"] is True
    assert one["ts"].isoformat() == "2024-03-01T10:00:00+00:00"  # offset normalised to UTC
    assert str(one["d"]) == "2024-03-01" and one["tm"] == "12:34:56"
    assert json.loads(one["o"]) == {"z": 1, "a": [1, 2]} and json.loads(one["a"]) == [1, "x", None]
    assert one["any"] == "5"
    assert two["i"] == 3 and two["n"] == 7.0 and two["s"] == "42"  # lossless: 3.0 is 3, 42 kept as text
    assert two["ts"].isoformat() == "2024-03-01T10:00:00+00:00"  # no offset: taken as UTC
    assert two["any"] == '"text"'
    assert three["s"] == 'a\x00b "q" \\ \n €😀'  # byte for byte
    assert json.loads(three["_sdc_extra"]) == {"extra_field": {"kept": True}}

    rej = {r["line"]: r for r in rejects(spool)}
    assert sorted(rej) == [5, 6, 7, 8, 9, 10, 11, 12]
    assert "fits in 64 bits" in rej[5]["reason"] and "12345678901234567890123" in rej[5]["raw"]
    assert "expected an integer" in rej[6]["reason"]
    assert rej[7]["reason"] == "property 'b': expected true or false, got \"yes\""
    assert "date-time" in rej[8]["reason"]
    assert rej[9]["reason"] == "key property 'id' is missing or null"
    assert rej[10]["reason"] == "key property 'id' is missing or null"
    assert rej[11]["reason"] == "RECORD has no 'record' object"
    assert "expected a number" in rej[12]["reason"]
    assert all(r["stream"] == "t" for r in rej.values())
    assert json.loads(rej[6]["raw"]) == {"type": "record", "stream": "t", "record": {"id": 5, "i": 1.5}}
    assert b"8 rejected" in result.stderr


def test_max_rejects_fails_the_run_after_committing(spool: Path, tmp_path: Path) -> None:
    result = run_cli("ingest", "--spool", str(spool), "--input", str(DATA / "typing_rules.singer"), env={"SPOOL_TARGET_MAX_REJECTS": "0"})
    assert result.returncode == 4, result.stderr
    assert b"8 records were rejected (max_rejects is 0)" in result.stderr
    assert len(segment_rows(spool)) == 3  # what was good is safe
    assert len(rejects(spool)) == 8


def test_record_before_schema_stops_with_stream_and_line(spool: Path) -> None:
    result = run_cli("ingest", "--spool", str(spool), "--input", str(DATA / "record_before_schema.singer"))
    assert result.returncode == 3
    assert b"input line 4: RECORD for stream 'orders' arrived before any SCHEMA for it" in result.stderr
    # The STATE before the bad line covers committed data, so it was emitted.
    assert result.stdout == b'{"users": 1}\n'  # as the tap sent it
    assert [r["id"] for r in segment_rows(spool)] == [1]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        (b'{"type": "RECORD", "stream": "users", "record": {"id": 5', b"input line 5: not valid JSON"),
        (b"[1, 2]", b"input line 5: a Singer message must be a JSON object"),
        (b'{"stream": "users"}', b"input line 5: message has no 'type'"),
        (b"\xff\xfe garbage", b"input line 5: not valid JSON"),
    ],
)
def test_malformed_line_stops_ingest_and_keeps_what_came_before(spool: Path, bad_line: bytes, message: bytes) -> None:
    good = singer_lines(users(3))  # lines 1-4
    after = singer_lines([record_msg("users", {"id": 100, "name": "x"}), state_msg({"after": True})])
    result = run_cli("ingest", "--spool", str(spool), input=good + bad_line + b"\n" + after)
    assert result.returncode == 3
    assert message in result.stderr
    assert [r["id"] for r in segment_rows(spool)] == [0, 1, 2]
    assert b"after" not in result.stdout


def test_truncated_last_line_is_reported_like_a_malformed_one(spool: Path) -> None:
    data = singer_lines(users(2) + [state_msg({"s": 1})]) + b'{"type": "RECORD", "stream": "users", "rec'
    result = run_cli("ingest", "--spool", str(spool), input=data)
    assert result.returncode == 3
    assert b"input line 5: not valid JSON" in result.stderr
    assert result.stdout == b'{"s": 1}\n'  # as the tap sent it


def test_last_line_without_newline_is_accepted(spool: Path) -> None:
    data = singer_lines(users(2)) + json.dumps(state_msg({"s": 2})).encode()
    result = run_cli("ingest", "--spool", str(spool), input=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b'{"s": 2}\n'  # as the tap sent it


def test_schema_updates_start_new_segments_and_keep_each_schema(spool: Path) -> None:
    result = run_cli("ingest", "--spool", str(spool), "--input", str(DATA / "schema_updates.singer"))
    assert result.returncode == 0, result.stderr
    entries = manifest_entries(spool)
    segments = [e for e in entries if e["kind"] == "segment"]
    schemas = {e["schema_id"]: e for e in entries if e["kind"] == "schema"}
    assert [s["rows"] for s in segments] == [2, 1, 1]
    assert len({s["schema_id"] for s in segments}) == 3
    types = [{c["name"]: c["type"] for c in schemas[s["schema_id"]]["columns"]} for s in segments]
    assert "age" not in types[0] and types[1]["age"] == "integer" and types[2]["age"] == "number"
    # Each segment's file carries its own schema; nothing was rewritten.
    assert pq.read_schema(spool / segments[0]["path"]).names[:2] == ["id", "name"]
    assert pq.read_schema(spool / segments[2]["path"]).field("age").type == pa.float64()


def test_activate_version_keeps_its_place(spool: Path) -> None:
    result = run_cli("ingest", "--spool", str(spool), "--input", str(DATA / "activate_version.singer"))
    assert result.returncode == 0, result.stderr
    kinds = [(e["kind"], e.get("version"), e.get("rows")) for e in manifest_entries(spool) if e["kind"] in ("segment", "activate_version")]
    assert kinds == [
        ("activate_version", 1, None),
        ("segment", None, 2),
        ("activate_version", 1, None),
        ("segment", None, 1),
        ("activate_version", 2, None),
    ]
    assert [r["_sdc_table_version"] for r in segment_rows(spool)] == [1, 1, 2]


def test_sequence_keeps_growing_across_runs(spool: Path) -> None:
    assert run_cli("ingest", "--spool", str(spool), input=singer_lines(users(3))).returncode == 0
    assert run_cli("ingest", "--spool", str(spool), input=singer_lines(users(3, start=3))).returncode == 0
    seqs = [r["_sdc_sequence"] for r in segment_rows(spool)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6


def test_many_streams_and_any_stream_name(spool: Path) -> None:
    names = ["public-users", "schema.table", "test:SpecialChars!in?attributes", "ユーザー", "a/b/../c", "Users", "users"]
    names += [f"s{i}" for i in range(500)]
    msgs = []
    for name in names:
        msgs.append(schema_msg(name, {"id": {"type": "integer"}, "wéird key/\"x\"": {"type": "string"}}, ["id"]))
        msgs.append(record_msg(name, {"id": 1, "wéird key/\"x\"": name}))
    msgs.append(state_msg("end"))
    result = run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs))
    assert result.returncode == 0, result.stderr
    segments = [e for e in manifest_entries(spool) if e["kind"] == "segment"]
    assert sorted(e["stream"] for e in segments) == sorted(names)
    dirs = {Path(e["path"]).parent for e in segments}
    assert len(dirs) == len(names)  # Users and users stay apart
    for e in segments:
        assert (spool / e["path"]).resolve().is_relative_to(spool.resolve())
        [row] = pq.read_table(spool / e["path"]).to_pylist()
        assert row['wéird key/"x"'] == e["stream"]


def test_batch_messages_import_jsonl_gzip_and_parquet(spool: Path, tmp_path: Path) -> None:
    plain = tmp_path / "b1.jsonl"
    plain.write_text('{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    zipped = tmp_path / "b2.jsonl.gz"
    with gzip.open(zipped, "wt") as fh:
        fh.write('{"id": 3, "name": "c"}\n')
    parquet = tmp_path / "b3.parquet"
    pq.write_table(pa.table({"id": [4], "name": ["d"]}), parquet)
    msgs = users(0) + [
        {"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl"}, "manifest": [plain.as_uri()]},
        {"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl", "compression": "gzip"}, "manifest": [zipped.as_uri()]},
        {"type": "BATCH", "stream": "users", "encoding": {"format": "parquet"}, "manifest": [parquet.as_uri()]},
        state_msg("b"),
    ]
    result = run_cli("ingest", "--spool", str(spool), input=singer_lines(msgs))
    assert result.returncode == 0, result.stderr
    assert [(r["id"], r["name"]) for r in segment_rows(spool)] == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]


def test_second_ingest_on_the_same_spool_stops_at_once(spool: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    assert first.stdin
    first.stdin.write(singer_lines(users(2)))
    first.stdin.flush()
    deadline = time.monotonic() + 20
    while not (spool / "manifest.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run_cli("ingest", "--spool", str(spool), input=singer_lines(users(2)))
    assert second.returncode == 5
    assert b"another ingest is already running on spool" in second.stderr
    first.stdin.close()
    assert first.wait(timeout=30) == 0
    assert [r["id"] for r in segment_rows(spool)] == [0, 1]


def test_ingest_never_touches_an_oracle_destination(spool: Path, tmp_path: Path) -> None:
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"destination": "oracle://scott@127.0.0.1:9/FREEPDB1", "password": "tiger-secret-42"}))
    code = (
        "import sys, runpy; sys.argv = ['spool-target', 'ingest', '--config', sys.argv[1], '--spool', sys.argv[2]];"
        "from spool_target.cli import app\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "assert 'oracledb' not in sys.modules, 'ingest imported oracledb'\nprint('NO_DRIVER', file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(config), str(spool)],
        input=singer_lines(users(2) + [state_msg(1)]),
        capture_output=True,
        env=cli_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert b"NO_DRIVER" in result.stderr and result.stdout == b"1\n"
    assert b"tiger-secret-42" not in result.stderr
    for p in spool.rglob("*"):
        if p.is_file():
            assert b"tiger-secret-42" not in p.read_bytes()


def test_torn_manifest_line_is_ignored_then_repaired(spool: Path) -> None:
    assert run_cli("ingest", "--spool", str(spool), input=singer_lines(users(2))).returncode == 0
    with open(spool / "manifest.jsonl", "ab") as fh:
        fh.write(b'{"n": 99, "kind": "segm')
    complete = len(manifest_entries(spool))
    from spool_target.spool.layout import SpoolLayout
    from spool_target.spool.manifest import read_manifest

    manifest = read_manifest(SpoolLayout(spool))
    assert manifest.torn_tail and len(manifest.entries) == complete
    seen = duckdb.sql(f"SELECT count(*) FROM read_json_auto('{spool / 'manifest.jsonl'}', ignore_errors = true) WHERE kind IS NOT NULL").fetchall()
    assert seen == [(complete,)]
    result = run_cli("ingest", "--spool", str(spool), "--log-format", "json", input=singer_lines(users(2, start=2)))
    assert result.returncode == 0, result.stderr
    assert b"torn last line" in result.stderr
    assert [r["id"] for r in segment_rows(spool)] == [0, 1, 2, 3]


def test_manifest_is_readable_by_duckdb(spool: Path) -> None:
    assert run_cli("ingest", "--spool", str(spool), "--input", str(DATA / "schema_updates.singer")).returncode == 0
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT stream, sum(rows) FROM read_json_auto('{spool}/manifest.jsonl') WHERE kind = 'segment' GROUP BY stream"
    ).fetchall()
    assert rows == [("users", 4)]
    total = con.execute(f"SELECT count(*) FROM read_parquet('{spool}/streams/*/*.parquet', union_by_name = true)").fetchall()
    assert total == [(4,)]


def test_help_teaches_and_version_prints() -> None:
    result = run_cli("ingest", "--help")
    assert result.returncode == 0
    assert b"STATE" in result.stdout and b"--spool" in result.stdout
    assert run_cli("--version").stdout.startswith(b"spool-target ")
    # Where a C compiler is at hand the install builds the compiled hot path (it is
    # optional, so a failed build would otherwise go unnoticed).
    if shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc"):
        assert b"ingest hot path: compiled" in run_cli("--version").stdout
    assert b"pure Python" in run_cli("--version", env={"SPOOL_TARGET_TEST_PURE_PYTHON": "1"}).stdout


def test_meltano_entry_point_about_and_input(spool: Path, tmp_path: Path) -> None:
    about = subprocess.run(
        [sys.executable, "-c", "from spool_target.cli import meltano_main; meltano_main()", "--about", "--format", "json"],
        capture_output=True,
        env=cli_env(),
    )
    assert about.returncode == 0, about.stderr
    info = json.loads(about.stdout)
    names = {s["name"] for s in info["settings"]}
    assert {"spool_dir", "destination", "password", "load_method"} <= names
    assert next(s for s in info["settings"] if s["name"] == "password")["secret"] is True
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"spool_dir": str(spool)}))
    source = tmp_path / "in.singer"
    source.write_bytes(singer_lines(users(2) + [state_msg("m")]))
    result = subprocess.run(
        [sys.executable, "-c", "from spool_target.cli import meltano_main; meltano_main()", "--config", str(config), "--input", str(source)],
        capture_output=True,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b'"m"\n'
    assert [r["id"] for r in segment_rows(spool)] == [0, 1]


def test_config_files_merge_left_to_right_and_env_and_flags_win(tmp_path: Path) -> None:
    from spool_target.config import load_config

    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(json.dumps({"spool_dir": "from-a", "load_method": "upsert", "max_wait_seconds": 5}))
    b.write_text(json.dumps({"spool_dir": "from-b"}))
    cfg = load_config([a, b], {}, environ={})
    assert (cfg.spool_dir, cfg.load_method, cfg.max_wait_seconds) == ("from-b", "upsert", 5.0)
    cfg = load_config([a, b], {}, environ={"SPOOL_TARGET_SPOOL_DIR": "from-env"})
    assert cfg.spool_dir == "from-env"
    cfg = load_config([a, b], {"spool_dir": "from-flag"}, environ={"SPOOL_TARGET_SPOOL_DIR": "from-env"})
    assert cfg.spool_dir == "from-flag"
    cfg = load_config([], {}, environ={"SPOOL_TARGET_ORACLE_PASSWORD": "pw"})
    assert cfg.password == "pw" and cfg.as_dict()["password"] == "***"


def test_bad_config_value_is_a_usage_error(spool: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"load_method": "sideways"}))
    result = run_cli("ingest", "--spool", str(spool), "--config", str(config), input=b"")
    assert result.returncode == 2
    assert b"setting load_method" in result.stderr and b"append-only, upsert, overwrite" in result.stderr


def test_a_url_of_an_unknown_kind_as_spool_is_refused_not_written_to_a_local_directory(tmp_path: Path) -> None:
    """`--spool s3://bkt/p` once wrote a local directory `s3:/bkt/p` without a word; bucket
    URLs are spools now (tests/test_bucket_spool.py), and other URLs are still refused."""
    for url in ("https://example.com/spools/tap-x", "gcs://b/p", "ftp://host/p"):
        r = run_cli("ingest", "--spool", url, input=singer_lines(users(1)), cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert b"is a URL of a kind spool-target does not know" in r.stderr and b"s3://bucket/prefix" in r.stderr
        r = run_cli("load", "--spool", url, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere
