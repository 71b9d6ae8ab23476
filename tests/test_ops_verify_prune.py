"""`spool-target verify` and `prune` (and `retention`) through the real CLI, on real spools."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import duckdb

from conftest import manifest_entries, singer_lines, state_msg
from opskit import cli, duckdb_locked, ingest, json_logs, ledger_rows, query, spawn, users, wait_for


def segment_paths(spool: Path) -> list[str]:
    return [e["path"] for e in manifest_entries(spool) if e["kind"] == "segment"]


def test_verify_reports_each_problem_on_one_line_and_exits_5(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, users(range(6)), env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "2"})
    cli("load", "--spool", str(spool), "--log-format", "json")
    r = cli("verify", "--spool", str(spool), "--log-format", "text")
    assert r.stdout == b"" and b"OK; 3 segments" in r.stderr and b"reachable" in r.stderr

    first, second, third = segment_paths(spool)
    data = bytearray((spool / second).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (spool / second).write_bytes(bytes(data))  # bit rot
    (spool / first).unlink()  # lost, but loaded already
    (spool / third).with_name("000000099-0123abcd.parquet").write_bytes(b"PAR1")  # an orphan
    (spool / "tmp" / "users.1.ndjson").write_text("{}\n")  # a crashed ingest's work file
    con = duckdb.connect(str(spool / "spool.duckdb"))
    con.execute("UPDATE _spool_ledger SET rows = 99 WHERE item = ?", [third])
    con.execute("INSERT INTO _spool_ledger SELECT spool_id, 'streams/x/000000777-gone.parquet', kind, stream, table_name, "
                "rows, sha256, run_id, loaded_at FROM _spool_ledger LIMIT 1")
    con.close()

    r = cli("verify", "--spool", str(spool), "--log-format", "text", expect=5)
    lines = r.stdout.decode().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "segment", "segment", "orphan file", "temp file", "ledger row count differs", "ledger item unknown to the manifest",
    ]
    assert lines[0].startswith(f"segment: {first}: stream 'users': segment {first} (stream 'users') is missing")
    assert "is corrupt: sha256" in lines[1] and second in lines[1]
    assert lines[2].startswith("orphan file: streams/") and "the next `spool-target ingest` moves it to quarantine/" in lines[2]
    assert lines[4] == (f"ledger row count differs: {third}: the ledger says 99 rows were loaded, the manifest says 2 "
                        "(compare the destination table with the segment (`spool-target sql`) before pruning it)")
    assert f"note: {first} is missing but already loaded" in r.stderr.decode()
    assert b"error: verify found 6 problem(s)" in r.stderr

    # prune records the lost-but-loaded segment, and keeps the one whose ledger row disagrees
    p = cli("prune", "--spool", str(spool), "--log-format", "text")
    assert [line.split(" (")[0] for line in p.stdout.decode().splitlines()] == [f"pruned {first}", f"pruned {second}"]
    kept = [e["path"] for e in manifest_entries(spool) if e["kind"] == "pruned"]
    assert kept == [first, second] and (spool / third).exists()
    assert b"kept: 1 ledger disagrees" in p.stderr

    with duckdb_locked(spool / "spool.duckdb"):
        r = cli("verify", "--spool", str(spool), "--destination", f"duckdb:///{spool / 'spool.duckdb'}", "--log-format", "text", expect=5)
    assert b"destination unreachable: duckdb:///" in r.stdout


def test_prune_deletes_only_what_the_ledger_confirms(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, users(range(4)), env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "2"})
    cli("load", "--spool", str(spool), "--log-format", "json")
    ingest(spool, users(range(4, 6)))  # pending
    old, older, pending = segment_paths(spool)

    dry = cli("prune", "--spool", str(spool), "--dry-run", "--log-format", "text")
    assert [line.split(" (")[0] for line in dry.stdout.decode().splitlines()] == [f"would prune {old}", f"would prune {older}"]
    assert b"kept: 1 pending" in dry.stderr and all((spool / p).exists() for p in (old, older, pending))
    young = cli("prune", "--spool", str(spool), "--older-than", "1h", "--log-format", "text")
    assert young.stdout == b"" and b"kept: 1 pending, 2 younger than --older-than" in young.stderr
    assert cli("prune", "--spool", str(spool), "--older-than", "soon", "--log-format", "text", expect=2).stderr.startswith(
        b"error: --older-than: expected a duration such as 7d, 12h or 30m, got 'soon'")

    with duckdb_locked(spool / "spool.duckdb"):  # the ledger cannot be read: nothing is deleted
        down = cli("prune", "--spool", str(spool), "--max-wait", "0", "--log-format", "text", expect=75)
    assert b"nothing was pruned" in down.stderr and (spool / old).exists()

    busy = spawn("ingest", "--spool", str(spool), stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_for(lambda: (spool / "ingest.lock").read_text().split() == [str(busy.pid), "ingest"], what="the ingest lock")
    locked = cli("prune", "--spool", str(spool), "--log-format", "text", expect=5)
    assert b"error: cannot prune now: another ingest is already running" in locked.stderr
    busy.communicate(b"")

    cli("prune", "--spool", str(spool), "--older-than", "0s", "--log-format", "text")
    assert not (spool / old).exists() and not (spool / older).exists() and (spool / pending).exists()
    pruned = [e for e in manifest_entries(spool) if e["kind"] == "pruned"]
    assert [(e["path"], e["stream"], e["rows"]) for e in pruned] == [(old, "users", 2), (older, "users", 2)]

    status = json.loads(cli("status", "--spool", str(spool), "--json").stdout)
    users_status = status["streams"][0]
    assert (users_status["rows"], users_status["pending_rows"], users_status["spool_bytes"]) == (6, 2, (spool / pending).stat().st_size)
    cli("load", "--spool", str(spool), "--log-format", "json")  # the pending one still loads; pruned ones are not missed
    assert query(spool / "spool.duckdb", "SELECT count(*), count(DISTINCT id) FROM users") == [(6, 6)]


def test_prune_racing_a_following_load_never_deletes_a_pending_segment(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    db = spool / "spool.duckdb"
    env = {"SPOOL_TARGET_FLUSH_MAX_ROWS": "5", "SPOOL_TARGET_TRANSACTION_ROWS": "5"}  # one transaction per segment
    ingest(spool, users(range(50)), env=env)
    follower = spawn("load", "--spool", str(spool), "--follow", "--log-format", "json", env=env, stderr=subprocess.PIPE)
    deleted: set[str] = set()
    for batch in range(3):
        # prune while the follower loads: it may see the ledger before, during (retrying the lock) or after the pass
        r = cli("prune", "--spool", str(spool), "--log-format", "text", expect=None)
        assert r.returncode == 0, r.stderr.decode()
        deleted |= {line.split()[1] for line in r.stdout.decode().splitlines()}
        ingest(spool, users(range(50 + 10 * batch, 60 + 10 * batch)), env=env)
    follower.send_signal(signal.SIGUSR1)  # drain: load what is pending, then exit
    _, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err.decode()
    assert not [rec for rec in json_logs(err) if rec["level"] == "error"]

    ledger = ledger_rows(db)
    pruned = {e["path"] for e in manifest_entries(spool) if e["kind"] == "pruned"}
    assert deleted and pruned == deleted and pruned <= set(ledger)  # every deleted segment was confirmed loaded
    assert all(not (spool / p).exists() for p in pruned)
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM users") == [(80, 80)]
    cli("verify", "--spool", str(spool))  # the manifest, the files and the ledger agree


def test_retention_makes_load_prune_as_it_goes(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, users(range(3)))
    r = cli("load", "--spool", str(spool), "--log-format", "json", env={"SPOOL_TARGET_RETENTION": "0s"})
    assert any(rec["message"].startswith("retention 0s: prune (pruned): deleted 1 segment(s)") for rec in json_logs(r.stderr))
    assert [e["kind"] for e in manifest_entries(spool)][-1] == "pruned"
    assert not list((spool / "streams").glob("*/*.parquet"))
    metrics = [rec for rec in json_logs(r.stderr) if rec["message"] == "METRIC"]
    assert {"type": "counter", "metric": "record_count", "value": 3, "tags": {"stream": "users", "phase": "load", "table": "users"}} in [
        {k: m[k] for k in ("type", "metric", "value", "tags")} for m in metrics
    ]


def _stopped(proc: subprocess.Popen) -> bool:
    """The process has SIGSTOPped itself (state T in /proc)."""
    try:
        return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def _held_prune(spool: Path) -> subprocess.Popen:
    """A real prune, stopped while it holds the spool's manifest (as one on a large spool would be, for minutes)."""
    prune = spawn("prune", "--spool", str(spool), "--older-than", "0s", "--log-format", "text",
                  env={"SPOOL_TARGET_TEST_STOP_AT": "prune:locked"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: _stopped(prune), what="the prune to hold the lock")
    assert (spool / "ingest.lock").read_text().split() == [str(prune.pid), "prune"]
    return prune


def test_ingest_waits_for_a_prune_that_holds_the_manifest_and_then_runs(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, users(range(4)), env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "2"})
    cli("load", "--spool", str(spool), "--log-format", "json")
    loaded = segment_paths(spool)
    prune = _held_prune(spool)
    try:
        tap = spawn("ingest", "--spool", str(spool), "--log-format", "json",
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert tap.stdin is not None and tap.stderr is not None
        tap.stdin.write(singer_lines([*users(range(4, 7)), state_msg({"upto": 6})]))
        tap.stdin.close()
        first = json.loads(tap.stderr.readline())  # what it waits for, said at once
        assert first["message"].startswith(f"waiting for a prune (pid {prune.pid}) to finish with the spool's manifest")
        time.sleep(4)  # longer than ingest ever waited before (2 s): a prune of a large spool takes longer
        assert tap.poll() is None, "ingest gave up while a prune held the manifest"
    finally:
        prune.send_signal(signal.SIGCONT)
    pruned_out, pruned_err = prune.communicate(timeout=60)
    assert prune.returncode == 0, pruned_err.decode()
    assert tap.stdout is not None
    out, err = tap.stdout.read(), tap.stderr.read()
    assert tap.wait(timeout=60) == 0, err.decode()
    assert json.loads(out) == {"upto": 6}  # the tap's STATE, after its records were committed
    entries = manifest_entries(spool)
    assert [e["path"] for e in entries if e["kind"] == "pruned"] == loaded and not any((spool / p).exists() for p in loaded)
    new = [e for e in entries if e["kind"] == "segment" and e["path"] not in loaded]
    assert sum(e["rows"] for e in new) == 3
    assert max(i for i, e in enumerate(entries) if e["kind"] == "pruned") < entries.index(new[0])  # the prune went first


def test_ingest_gives_up_on_a_prune_after_lock_wait_seconds_and_never_waits_for_another_ingest(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    ingest(spool, users(range(2)))
    cli("load", "--spool", str(spool), "--log-format", "json")
    before = (spool / "manifest.jsonl").read_bytes()
    prune = _held_prune(spool)
    try:
        started = time.monotonic()
        r = cli("ingest", "--spool", str(spool), "--log-format", "text", input=singer_lines(users(range(2, 4))),
                env={"SPOOL_TARGET_LOCK_WAIT_SECONDS": "1.5"}, expect=5)
        assert 1.5 <= time.monotonic() - started < 30
        err = r.stderr.decode()
        assert f"waiting for a prune (pid {prune.pid})" in err
        assert f"error: a prune (pid {prune.pid}) has held spool {spool}'s manifest for" in err
        assert "lock_wait_seconds=1.5 and gives up" in err and r.stdout == b""
        assert (spool / "manifest.jsonl").read_bytes() == before  # nothing written
    finally:
        prune.send_signal(signal.SIGCONT)
        prune.communicate(timeout=60)

    busy = spawn("ingest", "--spool", str(spool), stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (spool / "ingest.lock").read_text().split() == [str(busy.pid), "ingest"], what="the ingest lock")
        started = time.monotonic()
        r = cli("ingest", "--spool", str(spool), "--log-format", "text", input=singer_lines(users(range(2, 4))), expect=5)
        assert time.monotonic() - started < 20  # at once, with the default lock_wait_seconds of 900
        assert f"error: another ingest is already running on spool {spool} (pid {busy.pid})".encode() in r.stderr
        assert b"waiting for" not in r.stderr
    finally:
        busy.communicate(b"")
