"""Helpers for the load tests: run ingest and load as a user would, read the DuckDB file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterable

import duckdb

from conftest import record_msg, run_cli, schema_msg, singer_lines, spool_args


def ingest(spool: Path, messages: Iterable[dict[str, Any]], *, flush_rows: int | None = None) -> None:
    env = {"SPOOL_TARGET_FLUSH_MAX_ROWS": str(flush_rows)} if flush_rows else None
    r = run_cli("ingest", *spool_args(spool), "--log-format", "json", input=singer_lines(messages), env=env)
    assert r.returncode == 0, r.stderr.decode()


def load(spool: Path, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    r = run_cli("load", *spool_args(spool), "--log-format", "json", *args, env=env)
    assert r.returncode == expect, f"exit {r.returncode}, expected {expect}:\n{r.stderr.decode()}"
    return r


def config_file(tmp: Path, **settings: Any) -> Path:
    path = tmp / f"config-{len(list(tmp.glob('config-*.json')))}.json"
    path.write_text(json.dumps(settings))
    return path


def db_path(spool: Path) -> Path:
    return spool / "spool.duckdb"


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def columns(db: Path, table: str) -> dict[str, str]:
    return dict(
        query(db, "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table])
    )


def log_records(r: subprocess.CompletedProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in r.stderr.decode().splitlines() if line.startswith("{")]


def messages(r: subprocess.CompletedProcess) -> list[str]:
    return [rec["message"] for rec in log_records(r)]


def users_stream(stream: str = "users", rows: Iterable[dict[str, Any]] = (), keys: list[str] | None = None,
                 properties: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    props = properties or {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}}
    return [schema_msg(stream, props, keys if keys is not None else ["id"]), *(record_msg(stream, r) for r in rows)]
