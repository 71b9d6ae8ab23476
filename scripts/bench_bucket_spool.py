#!/usr/bin/env python3
"""Ingest and load with the spool in a bucket (moto's S3 server on loopback) against
the same with a local spool, alternating in one run.

    python scripts/bench_bucket_spool.py                       # 1,000,000 records, 3 runs
    python scripts/bench_bucket_spool.py --records 200000 --runs 1

Input: scripts/bench_ingest.py's 9-field records with a STATE every 10,000.
Ingest is timed from the first byte into the pipe to the exit of `spool-target
ingest` (every segment stored, the last STATE out). Load is `spool-target load`
into a new DuckDB file, from a machine that never saw the ingest (a fresh
replica directory), so it includes downloading every segment. Both checks
that the destination holds every record.

moto keeps objects in memory and is a Python server, so the bucket figures
measure moto on this machine more than S3; the point is the protocol's cost
(round trips per segment and per STATE), which real stores share.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import plain_input, records_args  # noqa: E402


def start_moto() -> tuple[object, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def new_bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                 region_name="us-east-1").create_bucket(Bucket=name)


def timed(command: list[str], env: dict[str, str], source: Path | None = None) -> float:
    start = time.perf_counter()
    stdin = open(source, "rb") if source else subprocess.DEVNULL
    try:
        proc = subprocess.run(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    finally:
        if source:
            stdin.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[3:5])} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return time.perf_counter() - start


def one_run(kind: str, source: Path, records: int, work: Path, endpoint: str, run: int) -> tuple[float, float, int]:
    """Ingest seconds, load seconds, bytes stored for the spool."""
    cli = [sys.executable, "-m", "spool_target"]
    database = work / f"{kind}.duckdb"
    database.unlink(missing_ok=True)
    env = {**os.environ, "SPOOL_TARGET_LOG_FORMAT": "json", "XDG_CACHE_HOME": str(work / f"cache-ingest-{kind}-{run}")}
    if kind == "bucket":
        bucket = f"bench-{run}-{int(time.time())}"
        new_bucket(endpoint, bucket)
        config = work / "bucket.json"
        config.write_text(json.dumps({"spool_dir": f"s3://{bucket}/spool", "storage_options": {
            "endpoint": endpoint, "access_key_id": "k", "secret_access_key": "s", "region": "us-east-1"}}))
        where = ["--config", str(config)]
    else:
        spool = work / "local-spool"
        shutil.rmtree(spool, ignore_errors=True)
        where = ["--spool", str(spool)]
    ingest = timed(cli + ["ingest", *where], env, source)
    env["XDG_CACHE_HOME"] = str(work / f"cache-load-{kind}-{run}")  # another machine
    load = timed(cli + ["load", *where, "--destination", f"duckdb:///{database}"], env)
    con = duckdb.connect(str(database), read_only=True)
    rows = con.execute("SELECT count(DISTINCT id) FROM users").fetchone()[0]  # type: ignore[index]
    con.close()
    if rows != records:
        raise SystemExit(f"{kind}: the destination holds {rows:,} of {records:,} records")
    if kind == "bucket":
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                              region_name="us-east-1")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        stored = sum(o["Size"] for page in pages for o in page.get("Contents", []))
    else:
        stored = sum(p.stat().st_size for p in (work / "local-spool").rglob("*") if p.is_file()
                     and not p.name.endswith(".duckdb"))
    return ingest, load, stored


def main() -> None:
    args, work = records_args(__doc__, "bench-bucket-")
    source = plain_input(work, args.records)
    server, endpoint = start_moto()
    results: dict[str, list[tuple[float, float, int]]] = {"local": [], "bucket": []}
    try:
        for run in range(1, args.runs + 1):
            for kind in ("local", "bucket"):
                ingest, load, stored = one_run(kind, source, args.records, work, endpoint, run)
                results[kind].append((ingest, load, stored))
                print(f"run {run} {kind}: ingest {ingest:.2f} s ({args.records / ingest:,.0f} records/s), "
                      f"load {load:.2f} s ({args.records / load:,.0f} rows/s), {stored:,} bytes stored", flush=True)
    finally:
        server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), v[-1][2])
           for k, v in results.items()}
    for kind, (ingest, load, stored) in med.items():
        print(f"median {kind}: ingest {args.records / ingest:,.0f} records/s ({ingest:.2f} s), "
              f"load {args.records / load:,.0f} rows/s ({load:.2f} s), {stored / args.records:.1f} bytes per record stored")
    print(f"bucket / local: ingest {med['local'][0] / med['bucket'][0]:.2f} of local throughput, "
          f"load {med['local'][1] / med['bucket'][1]:.2f}")


if __name__ == "__main__":
    main()
