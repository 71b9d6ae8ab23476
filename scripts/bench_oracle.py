#!/usr/bin/env python3
"""Oracle load throughput: rows/second of `spool-target load` for both load strategies.

    scripts/oracle_live.sh [--db xe] -- python scripts/bench_oracle.py [--records 1000000] [--runs 3]

or, against a server of your own:

    export SPOOL_TARGET_TEST_ORACLE_DSN=127.0.0.1:1521/FREEPDB1
    export SPOOL_TARGET_TEST_ORACLE_USER=spool
    export SPOOL_TARGET_TEST_ORACLE_PASSWORD=...
    python scripts/bench_oracle.py [--records 1000000] [--runs 3] [--methods append-only,upsert]

The same environment variables as the live test suite (scripts/oracle_env.py);
scripts/oracle_live.sh starts Oracle in Docker and sets them. One spool of --records
realistic 9-field records (scripts/bench_ingest.py's generator, segments of
100,000) is ingested once; then, per load strategy (insert: executemany in
the ledger's transaction; direct-path: direct_path_load into a staging table,
then INSERT/MERGE) and per load method, each run loads it into a fresh table
through the real CLI and checks the row count in Oracle. Medians are
reported. Tables are named BENCH_<random>_... and dropped at the end, with
their ledger rows.

This has not been run by the project: no Oracle server was available where
it was written. Numbers depend on the network round trip and the server far
more than on this client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from oracle_env import live_oracle  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--methods", default="append-only,upsert")
    parser.add_argument("--strategies", default="insert,direct-path")
    parser.add_argument("--keep", type=Path, help="keep the spool in this directory")
    args = parser.parse_args()
    db = live_oracle("bench_oracle", "measure", "python scripts/bench_oracle.py --records 200000")

    import oracledb

    from bench_ingest import generate

    work = Path(tempfile.mkdtemp(prefix="bench-oracle-"))
    spool = args.keep or work / "spool"
    prefix = f"BENCH_{uuid.uuid4().hex[:6].upper()}_"
    env = {**os.environ, "SPOOL_TARGET_ORACLE_PASSWORD": db.password, "SPOOL_TARGET_LOG_FORMAT": "json"}
    cli = [sys.executable, "-m", "spool_target"]
    conn = oracledb.connect(user=db.user, password=db.password, dsn=db.dsn)
    print(f"server {conn.version}, python-oracledb {oracledb.__version__} (thin), {args.records:,} records", flush=True)
    try:
        source = work / "input.singer"
        generate(source, args.records)
        with open(source, "rb") as fh:
            subprocess.run(cli + ["ingest", "--spool", str(spool)], stdin=fh, stdout=subprocess.DEVNULL, env=env, check=True)
        results = []
        for strategy in args.strategies.split(","):
            for method in args.methods.split(","):
                times = []
                for run in range(args.runs):
                    table = f"{prefix}{strategy[:3].upper()}_{method[:3].upper()}_{run}"
                    cfg = work / f"{table}.json"
                    cfg.write_text(json.dumps({"dsn": db.dsn, "user": db.user, "load_strategy": strategy, "load_method": method,
                                               "table_mappings": {"users": table}}))
                    _forget(conn, spool)  # every run loads the whole spool again
                    start = time.perf_counter()
                    r = subprocess.run(cli + ["load", "--spool", str(spool), "--config", str(cfg)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    elapsed = time.perf_counter() - start
                    if r.returncode != 0:
                        print(r.stderr.decode()[-2000:], file=sys.stderr)
                        raise SystemExit(f"load failed ({strategy}, {method}): exit {r.returncode}")
                    with conn.cursor() as cur:
                        cur.execute(f'SELECT COUNT(*) FROM "{table}"')
                        count = cur.fetchone()[0]
                    if count != args.records:
                        raise SystemExit(f"{table} holds {count:,} rows, expected {args.records:,}")
                    times.append(elapsed)
                median = statistics.median(times)
                results.append((strategy, method, median, args.records / median))
                print(f"{strategy:12} {method:12} {median:8.1f} s  {args.records / median:12,.0f} rows/s", flush=True)
        print("\nstrategy     method        seconds        rows/s (median of", args.runs, "runs, CLI wall time)")
        for strategy, method, median, rate in results:
            print(f"{strategy:12} {method:12} {median:8.1f}  {rate:12,.0f}")
    finally:
        _cleanup(conn, prefix, spool)
        conn.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _spool_id(spool: Path) -> str | None:
    manifest = spool / "manifest.jsonl"
    return json.loads(manifest.read_text().splitlines()[0])["spool_id"] if manifest.exists() else None


def _forget(conn, spool: Path) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = 'SPOOL_LEDGER'")
        if cur.fetchone()[0]:
            cur.execute('DELETE FROM "SPOOL_LEDGER" WHERE "SPOOL_ID" = :1', [_spool_id(spool)])
    conn.commit()


def _cleanup(conn, prefix: str, spool: Path) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM USER_TABLES WHERE TABLE_NAME LIKE :1", [prefix + "%"])
        for (name,) in cur.fetchall():
            cur.execute(f'DROP TABLE "{name}" PURGE')
    _forget(conn, spool)


if __name__ == "__main__":
    sys.exit(main())
