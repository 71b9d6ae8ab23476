#!/usr/bin/env python3
"""Ingest throughput and peak memory, end to end (a pipe into `spool-target ingest`).

    python scripts/bench_ingest.py                   # 1,000,000 records, 3 runs
    python scripts/bench_ingest.py --records 5000000 --runs 1

Each record has 9 fields (integer id, short strings, an ISO date-time, a
float, a boolean, an array, a nested object, a nullable string) and a STATE
follows every 10,000 records. The clock runs from the first byte written to
the pipe until the process has exited with every segment committed. Peak
memory is the ingest process's maximum resident set size.

For scale, the same run times a floor: a Python loop that only reads the
same lines and parses each with orjson (no typing, no disk writes).
Timings on shared machines are noisy: read medians, and compare against the
floor measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

SCHEMA = {
    "type": "SCHEMA",
    "stream": "users",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["null", "string"]},
            "email": {"type": ["null", "string"]},
            "created_at": {"type": ["null", "string"], "format": "date-time"},
            "score": {"type": ["null", "number"]},
            "active": {"type": ["null", "boolean"]},
            "tags": {"type": ["null", "array"], "items": {"type": "string"}},
            "address": {"type": ["null", "object"], "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}},
            "nickname": {"type": ["null", "string"]},
        },
    },
}


def generate(path: Path, records: int) -> None:
    dumps = orjson.dumps
    with open(path, "wb") as fh:
        fh.write(dumps(SCHEMA) + b"\n")
        batch: list[bytes] = []
        for i in range(records):
            batch.append(
                dumps(
                    {
                        "type": "RECORD",
                        "stream": "users",
                        "record": {
                            "id": i,
                            "name": f"user {i}",
                            "email": f"user{i}@example.com",
                            "created_at": f"2024-01-{i % 28 + 1:02d}T10:{i % 60:02d}:00Z",
                            "score": i * 0.5,
                            "active": i % 2 == 0,
                            "tags": ["a", "b"],
                            "address": {"city": "Paris", "zip": "75001"},
                            "nickname": None if i % 3 else "nick",
                        },
                        "time_extracted": "2024-02-01T00:00:00Z",
                    }
                )
            )
            if (i + 1) % 10_000 == 0:
                batch.append(dumps({"type": "STATE", "value": {"bookmarks": {"users": i}}}))
                fh.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            fh.write(b"\n".join(batch) + b"\n")


def run_ingest(source: Path, spool: Path) -> tuple[float, int, int]:
    """Seconds, peak RSS in MB, and STATE lines received."""
    shutil.rmtree(spool, ignore_errors=True)
    env = {**os.environ, "SPOOL_TARGET_LOG_FORMAT": "json"}
    start = time.perf_counter()
    feeder = subprocess.Popen(["cat", str(source)], stdout=subprocess.PIPE)
    target = subprocess.Popen(
        [sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool)],
        stdin=feeder.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert feeder.stdout is not None and target.stdout is not None
    feeder.stdout.close()
    states = target.stdout.read().count(b"\n")
    _, status, usage = os.wait4(target.pid, 0)
    seconds = time.perf_counter() - start
    feeder.wait()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ingest failed with exit status {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_maxrss // 1024, states


def parse_floor(source: Path) -> float:
    code = (
        "import orjson, sys\n"
        "loads = orjson.loads\n"
        "for line in open(sys.argv[1], 'rb'):\n"
        "    loads(line)\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(source)], check=True)
    return time.perf_counter() - start


def spooled_rows(spool: Path) -> int:
    rows = 0
    for line in (spool / "manifest.jsonl").read_bytes().splitlines():
        entry = orjson.loads(line)
        if entry["kind"] == "segment":
            rows += entry["rows"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the input and the spool")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"input-{args.records}.singer"
    if not source.exists():
        print(f"generating {args.records:,} records ...", flush=True)
        generate(source, args.records)
    print(f"input: {source.stat().st_size / 1e6:,.0f} MB, {args.records:,} records")

    times, peaks, floors = [], [], []
    for run in range(1, args.runs + 1):
        seconds, peak_mb, states = run_ingest(source, work / "spool")
        rows = spooled_rows(work / "spool")
        if rows != args.records:
            raise SystemExit(f"run {run}: spooled {rows} rows, expected {args.records}")
        floor = parse_floor(source)
        times.append(seconds)
        peaks.append(peak_mb)
        floors.append(floor)
        print(
            f"run {run}: {seconds:.2f} s = {args.records / seconds:,.0f} records/s, peak RSS {peak_mb} MB, "
            f"{states} STATE lines; parse-only floor {floor:.2f} s",
            flush=True,
        )
    med = statistics.median(times)
    print(
        f"median: {args.records / med:,.0f} records/s ({med:.2f} s), peak RSS median {statistics.median(peaks)} MB "
        f"(max {max(peaks)} MB); parse-only floor median {statistics.median(floors):.2f} s"
    )
    shutil.rmtree(work / "spool", ignore_errors=True)


if __name__ == "__main__":
    main()
