#!/usr/bin/env python3
"""End to end into DuckDB: spool-target (ingest, then load) against target-duckdb.

    python scripts/bench_e2e.py                      # 1,000,000 records, 3 runs each
    python scripts/bench_e2e.py --records 200000 --runs 1

Both targets read the same Singer stream (scripts/bench_ingest.py's 9-field
records, a STATE every 10,000) through a pipe and end in a DuckDB file; the
script checks that both files hold every record. target-duckdb (PyPI) runs
from its own virtual environment, created on first use under --workdir
(needs the package index). Runs alternate between the two targets so that
machine noise hits both alike; medians are reported.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import plain_input, records_args  # noqa: E402


def timed_pipeline(source: Path, command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    feeder = subprocess.Popen(["cat", str(source)], stdout=subprocess.PIPE)
    proc = subprocess.Popen(command, stdin=feeder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    assert feeder.stdout is not None
    feeder.stdout.close()
    code = proc.wait()
    feeder.wait()
    if code != 0:
        raise SystemExit(f"{command[0]} failed with exit code {code}")
    return time.perf_counter() - start


def run_spool_target(source: Path, work: Path) -> tuple[float, int]:
    spool = work / "spool"
    database = work / "spool-target.duckdb"
    shutil.rmtree(spool, ignore_errors=True)
    database.unlink(missing_ok=True)
    env = {**os.environ, "SPOOL_TARGET_LOG_FORMAT": "json"}
    cli = [sys.executable, "-m", "spool_target"]
    ingest = timed_pipeline(source, cli + ["ingest", "--spool", str(spool)], env)
    start = time.perf_counter()
    subprocess.run(
        cli + ["load", "--spool", str(spool), "--destination", f"duckdb:///{database}"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    load = time.perf_counter() - start
    rows = duckdb.connect(str(database), read_only=True).sql("SELECT count(DISTINCT id) FROM users").fetchall()[0][0]
    return ingest + load, rows


def target_duckdb_venv(work: Path) -> Path:
    venv = work / "target-duckdb-venv"
    exe = venv / "bin" / "target-duckdb"
    if not exe.exists():
        print("creating a virtual environment for target-duckdb ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "target-duckdb"], check=True)
    return exe


def run_target_duckdb(source: Path, work: Path, exe: Path) -> tuple[float, int]:
    database = work / "target-duckdb.duckdb"
    database.unlink(missing_ok=True)
    config = work / "target-duckdb.json"
    config.write_bytes(orjson.dumps({"path": str(database), "default_target_schema": "main"}))
    seconds = timed_pipeline(source, [str(exe), "--config", str(config)])
    con = duckdb.connect(str(database), read_only=True)
    rows = con.sql("SELECT count(DISTINCT id) FROM main.users").fetchall()[0][0]
    missing = con.sql("SELECT r FROM range(?) t(r) ANTI JOIN main.users u ON u.id = t.r ORDER BY r LIMIT 5", params=[rows_expected(source)]).fetchall()
    if missing:
        print(f"  target-duckdb lost records, ids {[m[0] for m in missing]}", flush=True)
    return seconds, rows


def rows_expected(source: Path) -> int:
    return int(source.stem.split("-")[-1])


def main() -> None:
    args, work = records_args(__doc__, "bench-e2e-")
    source = plain_input(work, args.records)
    exe = target_duckdb_venv(work)

    ours, theirs = [], []
    for run in range(1, args.runs + 1):
        seconds, rows = run_spool_target(source, work)
        if rows != args.records:
            raise SystemExit(f"spool-target ended with {rows} distinct records, expected {args.records}")
        ours.append(seconds)
        print(f"run {run}: spool-target ingest+load {seconds:.2f} s ({args.records / seconds:,.0f} records/s), all {rows:,} records", flush=True)
        seconds, rows = run_target_duckdb(source, work, exe)
        theirs.append(seconds)
        print(f"run {run}: target-duckdb          {seconds:.2f} s ({args.records / seconds:,.0f} records/s), {rows:,} of {args.records:,} records", flush=True)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"median: spool-target {a:.2f} s ({args.records / a:,.0f} records/s), target-duckdb {b:.2f} s "
        f"({args.records / b:,.0f} records/s): spool-target takes {a / b:.2f}x the time"
    )


if __name__ == "__main__":
    main()
