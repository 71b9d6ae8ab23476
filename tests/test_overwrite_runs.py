"""`load_method: overwrite` replaces a table with one whole *run* (I9), however the spool is loaded.

A tap sends ids 1-4 with ``flush_max_rows: 1`` (one segment per record) while
loads happen in the middle of the run: a plain `load`, `load --follow`, or
`ingest --load-in-background`. After the run, the table must hold exactly
the ids the tap sent in that run -- not the last segment's -- and `prune`
must never lose them. Readers polling the table from another process must
only ever see whole runs. The tests are the tap: they feed ingest line by
line and wait for each STATE to be journaled (every record before it is
then in a committed segment).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import manifest_entries, record_msg, schema_msg, state_msg
from destinations import Destination
from opskit import cli, query, spawn, wait_for

PROPS = {"id": {"type": "integer"}}


def users(*ids: int) -> list[dict[str, Any]]:
    return [record_msg("users", {"id": i}) for i in ids]


def journaled_states(spool: Path) -> int:
    if not (spool / "manifest.jsonl").exists():
        return 0
    return sum(1 for e in manifest_entries(spool) if e["kind"] == "state")


def follow_passes(spool: Path) -> int:
    """Load passes that `load --follow` loops (background ones included) have finished so far."""
    total = 0
    for path in (spool / "runs").glob("follow-*.json") if (spool / "runs").exists() else []:
        try:
            total += json.loads(path.read_text())["passes"]
        except (ValueError, OSError):
            pass  # being rewritten: the next look sees it
    return total


_LIVE: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_ingest_left_behind():
    yield
    while _LIVE:
        proc = _LIVE.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


class LiveIngest:
    """`spool-target ingest` fed message by message, as a slow tap feeds it."""

    def __init__(self, spool: Path, *args: str, env: dict[str, str] | None = None):
        self.spool = spool
        self.proc = spawn("ingest", "--spool", str(spool), "--log-format", "json", *args,
                          env={"SPOOL_TARGET_FLUSH_MAX_ROWS": "1", **(env or {})},
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _LIVE.append(self.proc)
        self.sent = 0

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
        self.proc.stdin.flush()

    def commit(self, *messages: dict[str, Any]) -> None:
        """Send ``messages`` and a STATE; return once that STATE is journaled."""
        before = journaled_states(self.spool)
        self.sent += 1
        self.send(*messages, state_msg({"sent": self.sent}))
        wait_for(lambda: journaled_states(self.spool) > before, what="the STATE to be journaled")

    def finish(self) -> subprocess.CompletedProcess:
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err.decode()
        return subprocess.CompletedProcess(self.proc.args, 0, out, err)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=30)


def ledger_kinds(spool: Path) -> dict[str, str]:
    return dict(query(spool / "spool.duckdb", "SELECT item, kind FROM _spool_ledger"))


def run_segments(spool: Path) -> dict[str, list[str]]:
    """Each ingest run's segments, by run id."""
    runs: dict[str, list[str]] = {}
    for e in manifest_entries(spool):
        if e["kind"] == "segment":
            runs.setdefault(e["run_id"], []).append(e["path"])
    return runs


# --- a plain load in the middle of a run (every destination) ------------------------------
def test_a_load_during_an_overwrite_run_never_loads_part_of_it(dest: Destination) -> None:
    spool = dest.spool
    tap = LiveIngest(spool)
    tap.commit(schema_msg("users", PROPS, ["id"]), *users(1, 2))
    dest.load(load_method="overwrite")  # mid-run: ids 1 and 2 are committed, 3 and 4 not sent yet
    assert not dest.table_exists("users")
    tap.commit(*users(3))
    tap.send(*users(4))
    tap.finish()
    dest.load(load_method="overwrite")
    assert dest.rows("users", ["id"]) == [(1,), (2,), (3,), (4,)]

    # The next run: a load in its middle leaves the previous run's table as it was.
    tap = LiveIngest(spool)
    tap.commit(schema_msg("users", PROPS, ["id"]), *users(5))
    dest.load(load_method="overwrite")
    assert dest.rows("users", ["id"]) == [(1,), (2,), (3,), (4,)]
    tap.send(*users(6))
    tap.finish()
    dest.load(load_method="overwrite")
    assert dest.rows("users", ["id"]) == [(5,), (6,)]
    assert sorted(kind for _, kind, _, _ in dest.ledger()) == ["segment"] * 6


# --- load --follow, with a reader polling the table from another process ---------------
POLLER = r"""
import json, os, sys, time
import duckdb

db, out, stop = sys.argv[1:4]
with open(out, "a") as fh:
    while not os.path.exists(stop):
        try:
            con = duckdb.connect(db, read_only=True)
        except duckdb.Error:  # not created yet, or the loader holds it
            time.sleep(0.01)
            continue
        try:
            ids = [r[0] for r in con.execute("SELECT id FROM users ORDER BY id").fetchall()]
        except duckdb.CatalogException:
            ids = None  # no table yet
        finally:
            con.close()
        fh.write(json.dumps(ids) + "\n")
        fh.flush()
        time.sleep(0.02)
"""


class Reader:
    """Another process that reads the table in a loop, as a dashboard would."""

    def __init__(self, tmp: Path, db: Path):
        self.out, self.stop = tmp / "reader.jsonl", tmp / "reader.stop"
        self.proc = subprocess.Popen([sys.executable, "-c", POLLER, str(db), str(self.out), str(self.stop)])

    def seen(self) -> list[Any]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.endswith(("]", "null"))]

    def close(self) -> None:
        self.stop.touch()
        self.proc.wait(timeout=30)


def feed_with_passes(tap: LiveIngest, spool: Path, ids: list[int], first: list[dict[str, Any]]) -> None:
    """Commit the ids one by one, each time letting a load pass run. The last
    pass has seen every segment of the run, so only the run's end (no new
    segment) is left to make the loader load it."""
    for n, i in enumerate(ids):
        passes = follow_passes(spool)
        tap.commit(*(first if n == 0 else []), *users(i))
        wait_for(lambda: follow_passes(spool) > passes, what="a load pass in the middle of the run")


def test_load_follow_during_overwrite_runs_loads_whole_runs_and_readers_never_see_less(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    db = spool / "spool.duckdb"
    reader = Reader(tmp_path, db)
    follow_log = open(tmp_path / "follow.log", "wb")
    follower = spawn("load", "--spool", str(spool), "--follow", "--log-format", "json",
                     env={"SPOOL_TARGET_LOAD_METHOD": "overwrite"}, stderr=follow_log)
    try:
        tap = LiveIngest(spool)
        feed_with_passes(tap, spool, [1, 2, 3, 4], [schema_msg("users", PROPS, ["id"])])
        tap.finish()
        wait_for(lambda: [1, 2, 3, 4] in reader.seen(), timeout=30, what="a reader to see run 1's ids 1-4")

        tap = LiveIngest(spool)
        feed_with_passes(tap, spool, [5, 6], [schema_msg("users", PROPS, ["id"])])
        tap.finish()
        wait_for(lambda: [5, 6] in reader.seen(), timeout=30, what="a reader to see run 2's ids 5 and 6")
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=30)
        follow_log.close()
        reader.close()
    assert follower.returncode == 0, (tmp_path / "follow.log").read_text()
    # Never empty, never part of a run: only "no table yet" and whole runs.
    assert {json.dumps(s) for s in reader.seen()} <= {"null", "[1, 2, 3, 4]", "[5, 6]"}

    cli("prune", "--spool", str(spool), "--log-format", "text")
    assert query(db, "SELECT id FROM users ORDER BY id") == [(5,), (6,)]
    pruned = {e["path"] for e in manifest_entries(spool) if e["kind"] == "pruned"}
    assert pruned == {p for paths in run_segments(spool).values() for p in paths}


# --- ingest --load-in-background ----------------------------------------------------------
def test_overwrite_with_load_in_background_keeps_every_record_of_the_run_through_prune(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    db = spool / "spool.duckdb"
    config = tmp_path / "target.json"
    config.write_text(json.dumps({"load_method": "overwrite", "flush_max_rows": 1}))

    tap = LiveIngest(spool, "--config", str(config), "--load-in-background")
    feed_with_passes(tap, spool, [1, 2, 3, 4], [schema_msg("users", PROPS, ["id"])])
    result = tap.finish()
    assert b"background load done" in result.stderr
    assert query(db, "SELECT id FROM users ORDER BY id") == [(1,), (2,), (3,), (4,)]
    (first,) = run_segments(spool).values()
    assert len(first) == 4 and ledger_kinds(spool) == {p: "segment" for p in first}

    cli("prune", "--spool", str(spool), "--log-format", "text")  # the ledger lists all four: they go
    assert query(db, "SELECT id FROM users ORDER BY id") == [(1,), (2,), (3,), (4,)]
    assert not any((spool / p).exists() for p in first)

    tap = LiveIngest(spool, "--config", str(config), "--load-in-background")
    feed_with_passes(tap, spool, [5, 6], [schema_msg("users", PROPS, ["id"])])
    tap.finish()
    assert query(db, "SELECT id FROM users ORDER BY id") == [(5,), (6,)]
    cli("prune", "--spool", str(spool), "--log-format", "text")
    assert query(db, "SELECT id FROM users ORDER BY id") == [(5,), (6,)]


# --- a run that never ended ------------------------------------------------------------------
def test_a_run_that_died_is_never_loaded_by_overwrite_and_the_next_run_supersedes_it(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    db = spool / "spool.duckdb"
    tap = LiveIngest(spool)
    tap.commit(schema_msg("users", PROPS, ["id"]), *users(1, 2))
    tap.finish()
    cli("load", "--spool", str(spool), "--load-method", "overwrite", "--log-format", "json")

    tap = LiveIngest(spool)
    tap.commit(schema_msg("users", PROPS, ["id"]), *users(7, 8))  # committed and acknowledged ...
    tap.kill()  # ... then the run dies before its end
    r = cli("load", "--spool", str(spool), "--load-method", "overwrite", "--log-format", "json")
    assert query(db, "SELECT id FROM users ORDER BY id") == [(1,), (2,)]
    assert b"wait for their run to end" in r.stderr
    died = [p for run, paths in run_segments(spool).items() for p in paths if run not in ended_runs(spool)]
    assert len(died) == 2 and not set(died) & set(ledger_kinds(spool))
    status = json.loads(cli("status", "--spool", str(spool), "--json").stdout)
    assert status["streams"][0]["pending_segments"] == 2

    tap = LiveIngest(spool)
    tap.commit(schema_msg("users", PROPS, ["id"]), *users(9))
    tap.finish()
    r = cli("load", "--spool", str(spool), "--load-method", "overwrite", "--log-format", "json")
    assert query(db, "SELECT id FROM users ORDER BY id") == [(9,)]
    kinds = ledger_kinds(spool)
    assert {p: kinds[p] for p in died} == {p: "superseded" for p in died}
    cli("prune", "--spool", str(spool), "--log-format", "text")  # superseded segments are done with: they go too
    assert not any((spool / p).exists() for p in died)
    assert query(db, "SELECT id FROM users ORDER BY id") == [(9,)]
    cli("verify", "--spool", str(spool), "--log-format", "text")


def ended_runs(spool: Path) -> set[str]:
    return {e["run_id"] for e in manifest_entries(spool) if e["kind"] == "run_end"}


def test_two_runs_spooled_before_one_load_leave_only_the_second(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    db = spool / "spool.duckdb"
    for ids in ([1, 2, 3], [4, 5]):
        tap = LiveIngest(spool)
        tap.commit(schema_msg("users", PROPS, ["id"]), *users(*ids))
        tap.finish()
    cli("load", "--spool", str(spool), "--load-method", "overwrite", "--log-format", "json")
    assert query(db, "SELECT id FROM users ORDER BY id") == [(4,), (5,)]
    assert len(ended_runs(spool)) == 2
    first, second = run_segments(spool).values()
    assert ledger_kinds(spool) == {**{p: "superseded" for p in first}, **{p: "segment" for p in second}}
    assert query(db, "SELECT sum(rows) FILTER (kind = 'segment'), sum(rows) FILTER (kind = 'superseded') FROM _spool_ledger") == [(2, 3)]


@pytest.mark.parametrize("method", ["append-only", "upsert"])
def test_other_load_methods_still_load_segments_as_they_are_committed(tmp_path: Path, method: str) -> None:
    spool = tmp_path / "spool"
    tap = LiveIngest(spool)
    tap.commit(schema_msg("users", PROPS, ["id"]), *users(1, 2))
    cli("load", "--spool", str(spool), "--load-method", method, "--log-format", "json")
    assert query(spool / "spool.duckdb", "SELECT id FROM users ORDER BY id") == [(1,), (2,)]
    tap.send(*users(3))
    tap.finish()


# --- replayed rejects belong to the run that first sent them --------------------------------
def test_replayed_rejects_join_their_own_run_under_overwrite(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    db = spool / "spool.duckdb"
    props = {"id": {"type": "integer"}, "age": {"type": "integer"}}
    fix = tmp_path / "users.schema.json"
    fix.write_text(json.dumps({"type": "object", "properties": {**props, "age": {"type": "string"}}}))

    def run(*records: dict[str, Any]) -> None:
        tap = LiveIngest(spool)
        tap.send(schema_msg("users", props, ["id"]), *(record_msg("users", r) for r in records))
        tap.finish()

    def load() -> list[tuple]:
        cli("load", "--spool", str(spool), "--load-method", "overwrite", "--log-format", "json")
        return query(db, "SELECT id, age FROM users ORDER BY id")

    run({"id": 1, "age": "x"}, {"id": 2, "age": 20})  # id 1 is rejected
    assert load() == [(2, 20)]
    cli("rejects", "replay", "--spool", str(spool), "--stream", "users", "--schema", str(fix), "--log-format", "text")
    assert load() == [(1, "x"), (2, "20")]  # the run's records, now all of them

    run({"id": 3, "age": 30}, {"id": 4, "age": "y"})  # id 4 is rejected
    run({"id": 5, "age": 50})
    assert load() == [(5, "50")]
    cli("rejects", "replay", "--spool", str(spool), "--stream", "users", "--schema", str(fix), "--log-format", "text")
    assert load() == [(5, "50")]  # id 4 belongs to a run that was replaced: superseded with it
    (replayed,) = [e for e in manifest_entries(spool) if e["kind"] == "segment" and e.get("replay_of")][1:]
    assert ledger_kinds(spool)[replayed["path"]] == "superseded"
