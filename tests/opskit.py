"""Helpers for the ops tests: real spools made by the real CLI, and a real DuckDB lock held by another process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from conftest import cli_env, record_msg, run_cli, schema_msg, singer_lines


def ingest(spool: Path, messages: Iterable[dict[str, Any]], *args: str, env: dict[str, str] | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    r = run_cli("ingest", "--spool", str(spool), "--log-format", "json", *args, input=singer_lines(messages), env=env)
    assert r.returncode == expect, r.stderr.decode()
    return r


def cli(*args: str, expect: int | None = 0, **kwargs: Any) -> subprocess.CompletedProcess:
    r = run_cli(*args, **kwargs)
    if expect is not None:
        assert r.returncode == expect, f"exit {r.returncode}, expected {expect}:\n{r.stdout.decode()}\n{r.stderr.decode()}"
    return r


def sql(spool: Path, query: str, *args: str) -> list[dict[str, Any]]:
    r = cli("sql", "--spool", str(spool), "--format", "json", *args, query)
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def spawn(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "spool_target", *args], env=cli_env(env), **kwargs)


def users(ids: Iterable[int], **extra: Any) -> list[dict[str, Any]]:
    props = {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}}
    return [schema_msg("users", props, ["id"]), *(record_msg("users", {"id": i, "name": f"user {i}"}, **extra) for i in ids)]


def json_logs(stderr: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]


@contextmanager
def duckdb_locked(db: Path) -> Iterator[subprocess.Popen]:
    """Another process holds a write connection to ``db``: for every other
    process the destination is down until the block ends."""
    code = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('locked', flush=True); sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def wait_for(predicate, timeout: float = 20.0, every: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ledger_rows(db: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.sql("SELECT item, rows FROM _spool_ledger WHERE kind = 'segment'").fetchall())
    finally:
        con.close()


def query(db: Path, q: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(q).fetchall()
    finally:
        con.close()
