"""`load --follow` and `ingest --load-in-background` through the real CLI, across real outages and signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import cli_env, singer_lines, state_msg
from opskit import cli, duckdb_locked, ingest, json_logs, ledger_rows, query, spawn, users


def follow_session(spool: Path) -> dict:
    (path,) = (spool / "runs").glob("follow-*.json")
    return json.loads(path.read_text())


def test_follow_loads_through_an_outage_and_exits_when_idle(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    db = spool / "spool.duckdb"
    ingest(spool, users(range(10)))
    env = {"SPOOL_TARGET_MAX_WAIT_SECONDS": "0.5"}  # the engine gives up quickly; --follow carries on regardless
    seen: list[bytes] = []
    with duckdb_locked(db):
        follower = spawn("load", "--spool", str(spool), "--follow", "--until-idle", "1", "--log-format", "json",
                         env=env, stderr=subprocess.PIPE)
        started = time.monotonic()
        ingest(spool, users(range(10, 20)))  # ingest never waits for the destination
        assert time.monotonic() - started < 5
        assert follower.stderr is not None
        for line in follower.stderr:  # the engine ran out of max_wait: --follow carries on
            seen.append(line)
            if b"still following, retrying" in line:
                break
        assert follower.poll() is None, "--follow must not exit on an outage"
    err = b"".join(seen) + follower.stderr.read()
    follower.wait(timeout=30)
    assert follower.returncode == 0, err.decode()
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM users") == [(20, 20)]
    messages = [rec["message"] for rec in json_logs(err)]
    assert any(m.startswith("destination unavailable, retrying in") for m in messages)
    assert any(m.endswith("still following, retrying") for m in messages)
    session = follow_session(spool)
    assert (session["state"], session["rows"], session["up_to_date"]) == ("idle", 20, True) and session["outages"] >= 1
    assert len(list((spool / "runs").glob("load-*.json"))) <= 1 + session["outages"]  # successful passes keep one file


def test_sigterm_mid_load_stops_cleanly_and_resume_loads_the_rest_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    env = {"SPOOL_TARGET_FLUSH_MAX_ROWS": "2000", "SPOOL_TARGET_TRANSACTION_ROWS": "2000"}  # 40 transactions
    ingest(spool, users(range(80_000)), env=env)
    follower = spawn("load", "--spool", str(spool), "--follow", "--log-format", "json", env=env, stderr=subprocess.PIPE)
    assert follower.stderr is not None
    for line in follower.stderr:  # the first transaction has committed: stop it in the middle of the rest
        if b"loaded 1 segment(s)" in line:
            break
    follower.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    rest = follower.stderr.read()
    follower.wait(timeout=20)
    assert follower.returncode == 0 and time.monotonic() - stopped < 5, rest.decode()
    assert b"load --follow stopped" in rest
    db = spool / "spool.duckdb"
    loaded = sum(ledger_rows(db).values())
    assert 2000 <= loaded < 80_000 and query(db, "SELECT count(*) FROM users") == [(loaded,)]  # whole transactions only

    cli("load", "--spool", str(spool), "--resume", "--log-format", "json")
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM users") == [(80_000, 80_000)]


TAP = """
import glob, json, sys, time

spool, bursts = sys.argv[1], int(sys.argv[2])

def wait(what, done):
    deadline = time.monotonic() + 30
    while not done():
        if time.monotonic() > deadline:
            sys.exit("tap: timed out waiting for " + what)
        time.sleep(0.05)

def states():
    try:
        return open(spool + "/manifest.jsonl").read().count('"kind":"state"')
    except OSError:
        return 0

def loaded():
    for path in glob.glob(spool + "/runs/follow-*.json"):
        try:
            return json.load(open(path))["segments"]
        except ValueError:
            pass
    return 0

print(json.dumps({"type": "SCHEMA", "stream": "users", "schema": {"properties": {"id": {"type": "integer"}}}, "key_properties": ["id"]}))
for b in range(bursts):
    for i in range(100):
        print(json.dumps({"type": "RECORD", "stream": "users", "record": {"id": b * 100 + i}}))
    print(json.dumps({"type": "STATE", "value": {"burst": b}}), flush=True)
    # A slow tap: the next burst comes after this one is on disk and loaded in the background.
    wait("the STATE to be journaled", lambda: states() > b)
    wait("the background load", lambda: loaded() > b)
"""


def test_ingest_loads_in_the_background_while_the_tap_runs(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"flush_interval_seconds": 0.1}))
    producer = subprocess.Popen([sys.executable, "-c", TAP, str(spool), "3"], stdout=subprocess.PIPE)
    result = subprocess.run(
        [sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool), "--config", str(config),
         "--load-in-background", "--log-format", "json"],
        stdin=producer.stdout, capture_output=True, env=cli_env(), timeout=60,
    )
    assert producer.wait() == 0
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"burst": 0}, {"burst": 1}, {"burst": 2}]
    logs = json_logs(result.stderr)
    assert "background load done: everything this run spooled is in the destination" in [r["message"] for r in logs]
    assert {r["component"] for r in logs} == {"spool-target", "background-load"}
    assert query(spool / "spool.duckdb", "SELECT count(*), count(DISTINCT id) FROM users") == [(300, 300)]
    session = follow_session(spool)
    assert session["state"] == "drained" and session["segments"] >= 3 and session["passes"] >= 3
    (run,) = [json.loads(p.read_text()) for p in (spool / "runs").glob("ingest-*.json")]
    assert (run["state"], run["records"], run["streams"]["users"]["rows"]) == ("succeeded", 300, 300)
    metrics = {(r["metric"], r["tags"].get("phase")) for r in logs if r["message"] == "METRIC"}
    assert {("record_count", "ingest"), ("row_count", "ingest"), ("sync_duration", "ingest"), ("record_count", "load")} <= metrics


def test_ingest_in_the_background_with_the_destination_down_is_not_slowed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    db = spool / "spool.duckdb"
    with duckdb_locked(db):
        started = time.monotonic()
        r = cli("ingest", "--spool", str(spool), "--load-in-background", "--log-format", "text",
                input=singer_lines(users(range(50)) + [state_msg({"done": True})]))
        took = time.monotonic() - started
    assert took < 8, f"ingest took {took:.1f}s with the destination down"
    assert json.loads(r.stdout) == {"done": True}
    err = r.stderr.decode()
    assert "background load stopped: the destination is unavailable" in err
    assert "run `spool-target load --resume` when the destination is back" in err
    cli("load", "--spool", str(spool), "--resume", "--log-format", "json")
    assert query(db, "SELECT count(*) FROM users") == [(50,)]


def test_meltano_entry_point_can_load_in_the_background(tmp_path: Path) -> None:
    """`target-spool --load-in-background`, as a Meltano loader would run it."""
    spool = tmp_path / "spool"
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"spool_dir": str(spool)}))
    msgs = [{"type": "SCHEMA", "stream": "users", "schema": {"properties": {"id": {"type": "integer"}}}, "key_properties": ["id"]}]
    msgs += [{"type": "RECORD", "stream": "users", "record": {"id": i}} for i in range(50)]
    msgs.append({"type": "STATE", "value": {"done": True}})
    result = subprocess.run(
        [sys.executable, "-c", "from spool_target.cli import meltano_main; meltano_main()",
         "--config", str(config), "--load-in-background", "--log-format", "json"],
        input="".join(json.dumps(m) + "\n" for m in msgs).encode(), capture_output=True, env=cli_env(), timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {"done": True}
    assert query(spool / "spool.duckdb", "SELECT count(*), count(DISTINCT id) FROM users") == [(50, 50)]


def test_follow_reads_whole_lines_after_ingest_cuts_a_torn_manifest_tail(tmp_path: Path) -> None:
    """A crash mid-append leaves half a STATE line; the follower reads it; the
    next ingest cuts it and appends its segment where it was. The follower must
    see that segment (it used to resume at its old offset, mid-line, and glue the
    torn half to the segment entry's tail, hiding it)."""
    spool = tmp_path / "spool"
    db = spool / "spool.duckdb"
    pad = "x" * 300  # a long STATE: its torn half covers where the next entry says what it is
    ingest(spool, [*users(range(0, 5)), state_msg({"upto": 4, "pad": pad})])
    # The second run's appends: its segment, then its STATE -- killed half way through the STATE.
    crashed = cli("ingest", "--spool", str(spool), input=singer_lines([*users(range(5, 10)), state_msg({"upto": 9, "pad": pad})]),
                  env={"SPOOL_TARGET_TEST_CRASH_AT": "manifest:torn-append:2"}, expect=None)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    manifest = (spool / "manifest.jsonl").read_bytes()
    torn = manifest[manifest.rfind(b"\n") + 1 :]
    assert torn.startswith(b'{"n":') and b'"kind":"state"' in torn and len(torn) > 150, torn  # really torn, really long

    follower = spawn("load", "--spool", str(spool), "--follow", "--until-idle", "5", "--log-format", "json",
                     stderr=subprocess.PIPE)
    assert follower.stderr is not None
    seen: list[bytes] = []
    for line in follower.stderr:  # it has read the torn manifest and loaded what was committed
        seen.append(line)
        if b"load succeeded: 10 rows" in line:
            break
    repaired = ingest(spool, [*users(range(10, 15)), state_msg({"upto": 14})])
    assert b"torn last line" in repaired.stderr
    assert len((spool / "manifest.jsonl").read_bytes()) > len(manifest)  # grown past where the follower had read to
    err = b"".join(seen) + follower.stderr.read()
    follower.wait(timeout=60)
    assert follower.returncode == 0, err.decode()
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM users") == [(15, 15)], err.decode()
    session = follow_session(spool)
    assert (session["state"], session["rows"], session["up_to_date"]) == ("idle", 15, True)
