"""One harness per destination, so the engine's end-to-end and crash tests run unchanged on each.

The ``dest`` fixture (conftest.py) is parametrised over:

- ``duckdb``: the embedded DuckDB file ``<spool>/spool.duckdb`` (the default
  destination; the spool is ``tmp_path / "spool"``);
- ``oracle`` and ``oracle-direct-path``: a live Oracle server, with
  ``load_strategy`` ``insert`` and ``direct-path``. Skipped unless
  SPOOL_TARGET_TEST_ORACLE_DSN, _USER and _PASSWORD are set. Each test maps
  its streams (read from the spool's manifest) onto tables with a unique
  prefix (``table_mappings``); afterwards those tables, the staging tables and
  the ledger rows of the test's spool are dropped.

A harness knows the CLI arguments (``cli_args``: a ``--config`` file) and the
environment (``env``: the Oracle password in SPOOL_TARGET_ORACLE_PASSWORD,
never on the command line) for its destination, runs ``load``, and reads
tables back as plain Python values (``rows``), with the documented dialect
differences normalised: names are given as the Singer property names and
mapped by the dialect's naming rules (Oracle: upper case, no leading ``_``);
timestamps come back as UTC-aware datetimes, dates as dates, Oracle NUMBER(1)
booleans as bools, CLOBs as str. What the dialects store differently stays
visible: Oracle stores '' as NULL -- ``stored("")`` says what a table holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import pytest

from conftest import forget_bucket_spool, manifest_entries, register_bucket_spool, run_cli, spool_args

ORACLE_DSN = os.environ.get("SPOOL_TARGET_TEST_ORACLE_DSN")
ORACLE_USER = os.environ.get("SPOOL_TARGET_TEST_ORACLE_USER")
ORACLE_PASSWORD = os.environ.get("SPOOL_TARGET_TEST_ORACLE_PASSWORD")
ORACLE_CONFIGURED = bool(ORACLE_DSN and ORACLE_USER and ORACLE_PASSWORD)
NO_ORACLE = (
    "no live Oracle: set SPOOL_TARGET_TEST_ORACLE_DSN, SPOOL_TARGET_TEST_ORACLE_USER and "
    "SPOOL_TARGET_TEST_ORACLE_PASSWORD, or run scripts/oracle_live.sh (starts Oracle in Docker and sets them)"
)
_live_oracle = [pytest.mark.oracle, pytest.mark.skipif(not ORACLE_CONFIGURED, reason=NO_ORACLE)]

DEST_PARAMS = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("oracle", id="oracle", marks=_live_oracle),
    pytest.param("oracle-direct-path", id="oracle-direct-path", marks=_live_oracle),
]
# The spool in a bucket, for modules that set BUCKET_SPOOLS = True (conftest.pytest_generate_tests).
BUCKET_PARAMS = [pytest.param("duckdb-s3", id="duckdb-s3")]


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, v if v is not None else 0) for v in row)


class Destination:
    """What every harness offers; see the module docstring."""

    dialect: str  # "duckdb" or "oracle"
    timeout: float = 120

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.spool = tmp_path / "spool"

    # ---- running the CLI ----------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {}

    def env(self) -> dict[str, str]:
        return {}

    def cli_args(self, **settings: Any) -> list[str]:
        """``--config FILE`` with this destination's settings and the test's (if any)."""
        merged = {**self.settings(), **settings}
        if not merged:
            return []
        path = self.tmp / f"dest-config-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(merged))
        return ["--config", str(path)]

    def load(self, *args: str, expect: int = 0, env: dict[str, str] | None = None, **settings: Any) -> subprocess.CompletedProcess:
        r = run_cli("load", *spool_args(self.spool), "--log-format", "json", *self.cli_args(**settings), *args,
                    env={**self.env(), **(env or {})}, timeout=self.timeout)
        assert r.returncode == expect, f"exit {r.returncode}, expected {expect}:\n{r.stderr.decode()}"
        return r

    def cli(self, command: str, *args: str) -> subprocess.CompletedProcess:
        """Another command (status...) against the same destination."""
        return run_cli(command, *spool_args(self.spool), *self.cli_args(), *args, env=self.env(), timeout=self.timeout)

    # ---- reading back ---------------------------------------------------------------
    def stored(self, value: Any) -> Any:
        """What the destination holds for ``value``."""
        return value

    def spool_id(self) -> str | None:
        if not (self.spool / "manifest.jsonl").exists():
            return None
        return manifest_entries(self.spool)[0]["spool_id"]

    def streams(self) -> list[str]:
        seen: dict[str, None] = {}
        if (self.spool / "manifest.jsonl").exists():
            for e in manifest_entries(self.spool):
                if e.get("stream"):
                    seen.setdefault(e["stream"], None)
        return list(seen)

    def rows(self, stream: str, columns: Sequence[str], order_by: Sequence[str] | None = None) -> list[tuple]:
        """The table's ``columns`` (property names, or exact column names) as plain values, sorted
        in Python by ``order_by`` (default: all columns), so collations do not matter."""
        names = self.column_names(stream)
        resolved = [c if c in names else self.legal(c) for c in columns]
        out = [tuple(r) for r in self._select(stream, resolved)]
        keys = [list(columns).index(c) for c in (order_by if order_by is not None else columns)]
        return sorted(out, key=lambda r: _sort_key(tuple(r[i] for i in keys)))

    def count(self, stream: str) -> int:
        return len(self.rows(stream, [self.column_names(stream)[0]]))

    # dialect-specific
    def legal(self, name: str) -> str: ...
    def table_name(self, stream: str) -> str: ...
    def column_names(self, stream: str) -> list[str]: ...
    def column_types(self, stream: str) -> dict[str, str]: ...
    def table_exists(self, stream: str) -> bool: ...
    def ledger(self) -> list[tuple[str, str, str, int]]:
        """(item, kind, stream, rows) of this test's spool, by item."""
        ...
    def staging_tables(self) -> list[str]: ...
    def execute(self, sql: str) -> None: ...
    def _select(self, stream: str, columns: list[str]) -> Iterable[tuple]: ...
    def close(self) -> None: ...


class DuckDB(Destination):
    dialect = "duckdb"

    @property
    def db(self) -> Path:
        return self.spool / "spool.duckdb"

    def _connect(self, read_only: bool = True):
        import duckdb

        return duckdb.connect(str(self.db), read_only=read_only)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        con = self._connect()
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def execute(self, sql: str) -> None:
        con = self._connect(read_only=False)
        try:
            con.execute(sql)
        finally:
            con.close()

    def legal(self, name: str) -> str:
        from spool_target.naming import DUCKDB

        return DUCKDB.legalize(name)

    def table_name(self, stream: str) -> str:
        return self.legal(stream)

    def column_types(self, stream: str) -> dict[str, str]:
        return dict(self.query("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
                               [self.table_name(stream)]))

    def column_names(self, stream: str) -> list[str]:
        return list(self.column_types(stream))

    def table_exists(self, stream: str) -> bool:
        return self.db.exists() and self.query("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                                               [self.table_name(stream)]) == [(1,)]

    def _select(self, stream: str, columns: list[str]) -> Iterable[tuple]:
        types = self.column_types(stream)
        exprs = [f"timezone('UTC', \"{c}\")" if types[c] == "TIMESTAMP WITH TIME ZONE" else f'"{c}"' for c in columns]
        for row in self.query(f'SELECT {", ".join(exprs)} FROM "{self.table_name(stream)}"'):
            yield tuple(v.replace(tzinfo=timezone.utc) if isinstance(v, datetime) else v for v in row)

    def ledger(self) -> list[tuple[str, str, str, int]]:
        if not self.db.exists():
            return []
        return sorted(self.query("SELECT item, kind, stream, rows FROM _spool_ledger WHERE spool_id = ?", [self.spool_id()]))

    def staging_tables(self) -> list[str]:
        return [r[0] for r in self.query("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_spool\\_stage\\_%' ESCAPE '\\'")]

    def leftover_staging_table(self) -> str:
        """The name an interrupted load's staging table has in this spool."""
        return f"_spool_stage_{self.spool_id().replace('-', '')[:8]}_leftover"

    def close(self) -> None:
        pass


class Oracle(Destination):
    dialect = "oracle"
    timeout = 600

    def __init__(self, tmp_path: Path, strategy: str):
        super().__init__(tmp_path)
        self.strategy = strategy
        self.prefix = f"T{uuid.uuid4().hex[:6].upper()}_"
        self._conn: Any = None
        self._fresh = True

    @property
    def conn(self) -> Any:
        if self._conn is None:
            import oracledb

            oracledb.defaults.fetch_lobs = False  # CLOBs as str
            self._conn = oracledb.connect(user=ORACLE_USER, password=ORACLE_PASSWORD, dsn=ORACLE_DSN)
        return self._conn

    def settings(self) -> dict[str, Any]:
        return {"dsn": ORACLE_DSN, "user": ORACLE_USER, "load_strategy": self.strategy, "max_wait_seconds": 30,
                "table_mappings": {s: self.table_name(s) for s in self.streams()}}

    def env(self) -> dict[str, str]:
        return {"SPOOL_TARGET_ORACLE_PASSWORD": ORACLE_PASSWORD or ""}

    def cli_args(self, **settings: Any) -> list[str]:
        if self._fresh and self.spool_id():
            # Nothing of this test is loaded yet: ledger rows of this spool id are a leftover
            # (spools copied from one template share their id).
            self._forget_spool()
            self._fresh = False
        return super().cli_args(**settings)

    def load(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        r = super().load(*args, **kw)
        assert (ORACLE_PASSWORD or "").encode() not in r.stderr + r.stdout
        return r

    def stored(self, value: Any) -> Any:
        return None if value == "" else value  # Oracle stores '' as NULL

    def legal(self, name: str) -> str:
        from spool_target.naming import ORACLE

        return ORACLE.legalize(name)

    def table_name(self, stream: str) -> str:
        return self.prefix + self.legal(stream)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params or [])
            return [tuple(r) for r in cur.fetchall()]

    def execute(self, sql: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql)
        self.conn.commit()

    def _dictionary(self, stream: str) -> list[tuple]:
        return self.query("SELECT COLUMN_NAME, DATA_TYPE, DATA_PRECISION, DATA_SCALE FROM USER_TAB_COLUMNS "
                          "WHERE TABLE_NAME = :1 ORDER BY COLUMN_ID", [self.table_name(stream)])

    def column_types(self, stream: str) -> dict[str, str]:
        return {name: dt for name, dt, _, _ in self._dictionary(stream)}

    def column_names(self, stream: str) -> list[str]:
        return [r[0] for r in self._dictionary(stream)]

    def table_exists(self, stream: str) -> bool:
        return self.query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = :1", [self.table_name(stream)]) == [(1,)]

    def _select(self, stream: str, columns: list[str]) -> Iterable[tuple]:
        info = {name: (dt, p, s) for name, dt, p, s in self._dictionary(stream)}
        exprs = [f'SYS_EXTRACT_UTC("{c}")' if "TIME ZONE" in info[c][0] else f'"{c}"' for c in columns]
        for row in self.query(f'SELECT {", ".join(exprs)} FROM "{self.table_name(stream)}"'):
            out = []
            for c, v in zip(columns, row):
                dt, precision, scale = info[c]
                if v is not None and dt == "DATE":
                    v = v.date() if isinstance(v, datetime) else v
                elif isinstance(v, datetime):
                    v = v.replace(tzinfo=timezone.utc)
                elif v is not None and dt == "NUMBER" and precision == 1 and not scale:
                    v = bool(v)  # NUMBER(1) CHECK (... IN (0, 1)): a boolean before 23ai
                out.append(v)
            yield tuple(out)

    def ledger(self) -> list[tuple[str, str, str, int]]:
        if not self.query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = 'SPOOL_LEDGER'")[0][0]:
            return []
        return sorted(self.query('SELECT "ITEM", "KIND", "STREAM", "ROW_COUNT" FROM "SPOOL_LEDGER" WHERE "SPOOL_ID" = :1',
                                 [self.spool_id()]))

    def _stage_pattern(self) -> str:
        from spool_target.load.oracle.sql import OracleSQL
        from spool_target.naming import ORACLE

        return OracleSQL(ORACLE, None).stage_pattern(self.spool_id())

    def staging_tables(self) -> list[str]:
        return [r[0] for r in self.query("SELECT TABLE_NAME FROM USER_TABLES WHERE TABLE_NAME LIKE :1 ESCAPE '\\'",
                                         [self._stage_pattern()])]

    def leftover_staging_table(self) -> str:
        from spool_target.load.oracle.sql import stage_tag

        return f"SPOOL_STAGE_{stage_tag(self.spool_id())}_LEFTOVER"

    def _forget_spool(self) -> None:
        if self.spool_id() is None:
            return
        for name in self.staging_tables():
            self.execute(f'DROP TABLE "{name}" PURGE')
        if self.query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = 'SPOOL_LEDGER'")[0][0]:
            with self.conn.cursor() as cur:
                cur.execute('DELETE FROM "SPOOL_LEDGER" WHERE "SPOOL_ID" = :1', [self.spool_id()])
            self.conn.commit()

    def close(self) -> None:
        if self._conn is None and self._fresh:
            return  # never loaded, never connected: nothing to drop
        try:
            pattern = self.prefix.replace("_", "\\_") + "%"
            for (name,) in self.query("SELECT TABLE_NAME FROM USER_TABLES WHERE TABLE_NAME LIKE :1 ESCAPE '\\'", [pattern]):
                self.execute(f'DROP TABLE "{name}" PURGE')
            self._forget_spool()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class DuckDBOnBucket(DuckDB):
    """The DuckDB harness with the spool in a bucket on moto's S3 server. ``spool`` is the
    spool's read replica (``replica_dir``/read), which every command brings up to the bucket;
    the CLI is given the bucket's URL (conftest.spool_args)."""

    def __init__(self, tmp_path: Path, moto: Any):
        super().__init__(tmp_path)
        self.url = f"s3://{moto.new_bucket()}/spool"
        replicas = tmp_path / "replicas"
        self.spool = replicas / "read"
        config = tmp_path / "bucket-spool.json"
        config.write_text(json.dumps({"storage_options": moto.options(), "replica_dir": str(replicas)}))
        register_bucket_spool(self.spool, ["--spool", self.url, "--config", str(config)])

    def _connect(self, read_only: bool = True):
        if not read_only:  # a test preparing the table before the first command made the replica
            self.spool.mkdir(parents=True, exist_ok=True)
        return super()._connect(read_only)

    def close(self) -> None:
        forget_bucket_spool(self.spool)
        super().close()


def make_destination(param: str, tmp_path: Path, moto: Any = None) -> Destination:
    if param == "duckdb":
        return DuckDB(tmp_path)
    if param == "duckdb-s3":
        return DuckDBOnBucket(tmp_path, moto)
    return Oracle(tmp_path, "direct-path" if param == "oracle-direct-path" else "insert")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


__all__ = ["BUCKET_PARAMS", "DEST_PARAMS", "Destination", "DuckDB", "DuckDBOnBucket", "Oracle", "make_destination", "utc",
           "date"]
