"""Faults during `spool-target load`: SIGKILL at chosen points and at random
moments, a destination locked by another process, corrupt and missing
segments, leftovers of an interrupted run, a torn manifest. Each ends with
`load --resume` and checks every record is in the table exactly once (I4).

The tests whose subject is the engine take ``dest`` (tests/destinations.py):
DuckDB here, a live Oracle (both load strategies) where one is configured.
The locked-file test is about DuckDB itself."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli_env, manifest_entries, record_msg, run_cli, schema_msg, spool_args
from destinations import Destination
from loadkit import db_path, ingest, load, messages, query, users_stream

BUCKET_SPOOLS = True  # the `dest` tests run once more with the spool in a bucket (conftest.py)

EVENTS = 40  # records of stream "events" (append-only checks)
KEYS = 7  # stream "kv": 40 records over 7 keys (upsert checks)


def template_messages() -> list[dict]:
    events = [schema_msg("events", {"id": {"type": "integer"}}, ["id"]), *(record_msg("events", {"id": i}) for i in range(EVENTS))]
    kv = [schema_msg("kv", {"k": {"type": "integer"}, "v": {"type": "integer"}}, ["k"]),
          *(record_msg("kv", {"k": i % KEYS, "v": i}) for i in range(EVENTS))]
    return [*events, *kv]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One spool for the crash tests: 8 segments per stream, copied per test."""
    spool = tmp_path_factory.mktemp("template") / "spool"
    ingest(spool, template_messages(), flush_rows=5)
    return spool


def copy_of(template: Path, dest: Destination) -> Path:
    """The template's spool as ``dest``'s; a bucket spool gets the same input ingested."""
    if spool_args(dest.spool)[1] != str(dest.spool):
        ingest(dest.spool, template_messages(), flush_rows=5)
    else:
        shutil.copytree(template, dest.spool)
    return dest.spool


def assert_exactly_once(dest: Destination, method: str) -> None:
    events = dest.rows("events", ["_sdc_sequence", "id"], order_by=["id"])
    assert [r[1] for r in events] == list(range(EVENTS)) and len({r[0] for r in events}) == EVENTS
    if method == "upsert":
        # the latest record per key: v is the highest i with i % KEYS == k
        expected = [(k, max(i for i in range(EVENTS) if i % KEYS == k)) for k in range(KEYS)]
        assert dest.rows("kv", ["k", "v"]) == expected
    else:
        assert sorted(r[0] for r in dest.rows("kv", ["v"])) == list(range(EVENTS))
    segments = [e["path"] for e in manifest_entries(dest.spool) if e["kind"] == "segment"]
    assert [r[0] for r in dest.ledger()] == sorted(segments)
    assert dest.staging_tables() == []  # swept by --resume, or dropped after the commit


@pytest.mark.parametrize(
    "method,point",
    [
        ("append-only", "load:unit-start:2"),  # between two units
        ("append-only", "load:after-ddl:1"),  # table created, nothing loaded
        ("append-only", "load:before-commit:3"),  # rows and ledger written, not committed
        ("append-only", "load:after-commit:2"),  # committed, not yet reported
        ("upsert", "load:before-commit:2"),
        ("upsert", "load:after-commit:5"),  # in the second stream
    ],
)
def test_sigkill_at_a_point_then_resume_loads_every_record_exactly_once(template: Path, tmp_path: Path, dest: Destination,
                                                                        method: str, point: str):
    copy_of(template, dest)
    settings = dict(load_method=method, transaction_rows=10)  # 4 units of 2 segments per stream
    killed = dest.load(expect=-signal.SIGKILL, env={"SPOOL_TARGET_TEST_CRASH_AT": point}, **settings)
    assert b"load succeeded" not in killed.stderr
    resumed = dest.load("--resume", **settings)
    said = messages(resumed)
    assert any(m.startswith("the previous load (run ") and m.endswith("was killed; continuing from the destination's ledger") for m in said)
    assert any(m.startswith("resuming: ") for m in said)
    assert_exactly_once(dest, method)


def test_sigkill_at_random_moments_then_resume(dest: Destination):
    """Three kills at random moments of a load of 60 one-segment transactions:
    after the k-th commit is reported, plus a random few milliseconds, so the
    kill lands anywhere between, in or after the following commit."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    spool = dest.spool
    ingest(spool, [schema_msg("events", {"id": {"type": "integer"}}, ["id"]),
                   *(record_msg("events", {"id": i}) for i in range(120))], flush_rows=2)
    env = cli_env({**dest.env(), "SPOOL_TARGET_TRANSACTION_ROWS": "2"})  # one transaction per segment
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "spool_target", "load", "--resume", *spool_args(spool),
                                 "--log-format", "json", *dest.cli_args()], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        commits, wanted = 0, rng.randint(1, 12)
        for line in proc.stderr:
            commits += b'"message":"loaded 1 segment(s)' in line
            if commits == wanted:
                time.sleep(rng.uniform(0, 0.02))
                break
        proc.send_signal(signal.SIGKILL)
        proc.stderr.close()
        assert proc.wait() == -signal.SIGKILL, f"seed {seed}"
    loaded = len(dest.ledger())
    assert 3 <= loaded < 60, f"seed {seed}"
    sequences = [r[0] for r in dest.rows("events", ["_sdc_sequence"])]
    assert len(sequences) == len(set(sequences)) == 2 * loaded, f"seed {seed}"
    dest.load("--resume")
    assert dest.rows("events", ["id"]) == [(i,) for i in range(120)], f"seed {seed}"
    assert len(dest.ledger()) == 60


def test_overwrite_killed_before_commit_keeps_the_old_rows_then_switches(dest: Destination):
    spool = dest.spool
    ingest(spool, users_stream(rows=[{"id": i, "name": "old"} for i in range(5)]))
    dest.load("--load-method", "overwrite")
    ingest(spool, users_stream(rows=[{"id": 100 + i, "name": "new"} for i in range(4)]), flush_rows=2)
    dest.load("--load-method", "overwrite", expect=-signal.SIGKILL, env={"SPOOL_TARGET_TEST_CRASH_AT": "load:before-commit:1"})
    assert dest.rows("users", ["id", "name"]) == [(i, "old") for i in range(5)]  # never empty, never mixed
    dest.load("--load-method", "overwrite", "--resume")
    assert dest.rows("users", ["id"]) == [(100,), (101,), (102,), (103,)]


HOLD = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); sys.stdin.read()"


def test_locked_database_is_retried_then_exits_75_and_loads_once_released(tmp_path: Path):
    spool = tmp_path / "spool"
    ingest(spool, users_stream(rows=[{"id": i} for i in range(6)]), flush_rows=2)
    db = db_path(spool)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        started = time.monotonic()
        r = load(spool, "--max-wait", "1.5", expect=75)
        assert time.monotonic() - started < 10
        text = r.stderr.decode()
        assert text.count("destination unavailable, retrying in") >= 2
        assert "3 segment(s) (6 rows) are pending in the spool, nothing is lost" in text
        assert "spool-target load --resume" in text and "Could not set lock" in text

        status = run_cli("status", "--spool", str(spool), "--json")
        assert status.returncode == 0
        s = json.loads(status.stdout)
        assert s["destination_state"] == "unreachable" and "lock" in s["destination_error"]
        assert s["streams"][0]["rows"] == 6 and s["streams"][0]["pending_rows"] is None
        assert s["last_load"]["state"] == "unavailable"

        # A load that starts while the lock is held succeeds once it is released.
        waiting = subprocess.Popen([sys.executable, "-m", "spool_target", "load", "--resume", "--spool", str(spool),
                                    "--max-wait", "60", "--log-format", "json"], env=cli_env(), stderr=subprocess.PIPE)
        # Release the lock only once the loader has met it (a slow machine may take seconds to start Python).
        seen = b""
        deadline = time.monotonic() + 60
        while b"destination unavailable, retrying in" not in seen and time.monotonic() < deadline:
            line = waiting.stderr.readline()
            if not line:
                break
            seen += line
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    _, err = waiting.communicate(timeout=60)
    err = seen + err
    assert waiting.returncode == 0, err.decode()
    assert b"destination unavailable, retrying in" in err
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM users") == [(6, 6)]


@pytest.mark.local_spool
def test_corrupt_and_missing_segments_stop_only_their_stream_then_resume(tmp_path: Path, dest: Destination):
    spool = dest.spool
    msgs = []
    for stream in ("a", "b", "c"):
        msgs += [schema_msg(stream, {"id": {"type": "integer"}}, ["id"]), *(record_msg(stream, {"id": i}) for i in range(6))]
    ingest(spool, msgs, flush_rows=2)
    segs = {s: [e["path"] for e in manifest_entries(spool) if e["kind"] == "segment" and e["stream"] == s] for s in "abc"}
    corrupt, missing = spool / segs["a"][1], spool / segs["b"][1]
    good_bytes = corrupt.read_bytes()
    damaged = bytearray(good_bytes)
    damaged[len(damaged) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(damaged))
    missing.rename(tmp_path / "backup.parquet")

    r = dest.load(expect=5)
    text = r.stderr.decode()
    assert f"segment {segs['a'][1]} (stream 'a') is corrupt: sha256" in text
    assert f"segment {segs['b'][1]} (stream 'b') is missing" in text
    assert "2 stream(s) stopped at a missing or corrupt segment" in text
    # Order is kept: a and b stop before their damaged segment, c loads fully.
    assert sorted(stream for _, _, stream, _ in dest.ledger()) == ["a", "b", "c", "c", "c"]
    assert [dest.count(t) for t in "abc"] == [2, 2, 6]

    corrupt.write_bytes(good_bytes)
    (tmp_path / "backup.parquet").rename(missing)
    dest.load("--resume")
    for t in "abc":
        assert dest.rows(t, ["id"]) == [(i,) for i in range(6)]


@pytest.mark.local_spool
def test_resume_sweeps_staging_tables_and_ignores_uncommitted_spool_files(dest: Destination):
    spool = dest.spool
    ingest(spool, users_stream(rows=[{"id": i} for i in range(4)]))
    entries = manifest_entries(spool)
    segment = next(e for e in entries if e["kind"] == "segment")
    # What a concurrent or crashed ingest leaves: a file without a manifest
    # entry, and a torn last manifest line. Neither may be loaded (I2).
    shutil.copy(spool / segment["path"], spool / segment["path"].replace(".parquet", "-orphan.parquet"))
    with open(spool / "manifest.jsonl", "ab") as fh:
        fh.write(json.dumps({**segment, "n": 99, "path": segment["path"].replace(".parquet", "-orphan.parquet")}).encode()[:-3])
    dest.cli_args()  # (Oracle: forget what an earlier run left for this spool id first)
    dest.execute(f'CREATE TABLE "{dest.leftover_staging_table()}" (x INTEGER)')
    assert dest.staging_tables() == [dest.leftover_staging_table()]

    r = dest.load("--resume")
    assert "dropped a staging table left by an interrupted load" in messages(r)
    assert dest.staging_tables() == []
    assert dest.rows("users", ["id"]) == [(i,) for i in range(4)]
    assert [r[0] for r in dest.ledger()] == [segment["path"]]


def test_ctrl_c_during_a_load_rolls_back_exits_130_and_resume_finishes(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) mid-load: the open transaction is rolled back, the exit
    code says "interrupted", and `load --resume` loads every record once."""
    spool = tmp_path / "spool"
    rows = 300_000
    msgs = [schema_msg("big", {"id": {"type": "integer"}, "name": {"type": "string"}}, ["id"])]
    msgs += (record_msg("big", {"id": i, "name": f"name {i}"}) for i in range(rows))
    ingest(spool, msgs, flush_rows=10_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "spool_target", "load", "--spool", str(spool), "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env({"SPOOL_TARGET_TRANSACTION_ROWS": "10000"}),  # one transaction per segment
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if b'"loaded ' in line:  # the first transaction has committed
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert b"interrupted; everything committed so far is safe" in rest
    loaded = query(db_path(spool), "SELECT count(*) FROM big")[0][0]
    assert 0 < loaded < rows and loaded % 10_000 == 0  # whole segments only
    load(spool, "--resume")
    assert query(db_path(spool), "SELECT count(*), count(DISTINCT id) FROM big")[0] == (rows, rows)
