#!/usr/bin/env python3
"""Ingest throughput and peak memory, end to end (a pipe into `spool-target ingest`).

    python scripts/bench_ingest.py                   # 1,000,000 records, 3 runs
    python scripts/bench_ingest.py --records 5000000 --runs 1
    python scripts/bench_ingest.py --decimals        # scores as 18-digit decimals (tap-postgres numeric)
    python scripts/bench_ingest.py --bad-every 100000  # one bad date-time per 100k: the per-value path
    python scripts/bench_ingest.py --baseline-src ../old-checkout  # the same runs, alternating, on older code
    python scripts/bench_ingest.py --pure-python     # also without the compiled hot path (no C compiler)

Each record has 9 fields (integer id, short strings, an ISO date-time, a
float, a boolean, an array, a nested object, a nullable string) and a STATE
follows every 10,000 records. The clock runs from the first byte written to
the pipe until the process has exited with every segment committed. Peak
memory is the ingest process's maximum resident set size.

For scale, the same run times a floor: a Python loop that only reads the
same lines and parses each with orjson (no typing, no disk writes).
Timings on shared machines are noisy: read medians, and compare against the
floor measured in the same run, or against an older checkout of spool-target
(``--baseline-src``, run alternately with the current code in the same run).
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


def records_args(doc: str | None, prefix: str) -> tuple[argparse.Namespace, Path]:
    """The options the end-to-end benchmarks share (--records, --runs, --workdir), and
    the work folder (a new temporary one unless --workdir names one)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the input and the spools")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    return args, work


def plain_input(work: Path, records: int) -> Path:
    """The plain benchmark input of ``records`` records in ``work``, generated on first use."""
    source = work / f"input-{records}.singer"
    if not source.exists():
        print(f"generating {records:,} records ...", flush=True)
        generate(source, records)
    return source


def generate(path: Path, records: int, decimals: bool = False, bad_every: int = 0) -> None:
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
                            "created_at": "bad" if bad_every and i % bad_every == bad_every - 1
                            else f"2024-01-{i % 28 + 1:02d}T10:{i % 60:02d}:00Z",
                            "score": SCORE_MARK if decimals else i * 0.5,
                            "active": i % 2 == 0,
                            "tags": ["a", "b"],
                            "address": {"city": "Paris", "zip": "75001"},
                            "nickname": None if i % 3 else "nick",
                        },
                        "time_extracted": "2024-02-01T00:00:00Z",
                    }
                ).replace(SCORE_MARK_JSON, f"{10**13 + i * 7919 % 9 * 10**12 + i}.{i % 10000:04d}".encode())
            )
            if (i + 1) % 10_000 == 0:
                batch.append(dumps({"type": "STATE", "value": {"bookmarks": {"users": i}}}))
                fh.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            fh.write(b"\n".join(batch) + b"\n")


# An 18-digit decimal as tap-postgres sends a numeric(20,4): written into the
# JSON text directly, since no float can carry it.
SCORE_MARK = "@score@"
SCORE_MARK_JSON = b'"@score@"'


def run_ingest(source: Path, spool: Path, src: Path | None = None, pure_python: bool = False) -> tuple[float, int, int, float]:
    """Seconds, peak RSS in MB, STATE lines received and CPU seconds (``src``: run that checkout's code;
    ``pure_python``: without the compiled hot path, as where no C compiler built it).

    CPU seconds (user + system of the ingest process) move less than wall
    time when other work shares the machine."""
    shutil.rmtree(spool, ignore_errors=True)
    env = {**os.environ, "SPOOL_TARGET_LOG_FORMAT": "json"}
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    if pure_python:
        env["SPOOL_TARGET_TEST_PURE_PYTHON"] = "1"
    start = time.perf_counter()
    feeder = subprocess.Popen(["cat", str(source)], stdout=subprocess.PIPE)
    target = subprocess.Popen(
        [sys.executable, "-m", "spool_target", "ingest", "--spool", str(spool)],
        # ``-m`` puts the working directory first on sys.path: run in the spool's
        # parent, so that a checkout in the caller's directory cannot shadow ``src``.
        cwd=spool.parent,
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
    return seconds, usage.ru_maxrss // 1024, states, usage.ru_utime + usage.ru_stime


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
    parser.add_argument("--decimals", action="store_true", help="scores as 18-digit decimals, as tap-postgres sends numeric(20,4)")
    parser.add_argument("--bad-every", type=int, default=0, help="one bad date-time every N records (rejected)")
    parser.add_argument("--baseline-src", type=Path, default=None, help="an older checkout to time alternately")
    parser.add_argument("--pure-python", action="store_true",
                        help="also time this checkout without its compiled hot path, alternately")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    variant = ("-dec" if args.decimals else "") + (f"-bad{args.bad_every}" if args.bad_every else "")
    source = work / f"input-{args.records}{variant}.singer"
    if not source.exists():
        print(f"generating {args.records:,} records ...", flush=True)
        generate(source, args.records, args.decimals, args.bad_every)
    expected = args.records - (args.records // args.bad_every if args.bad_every else 0)
    print(f"input: {source.stat().st_size / 1e6:,.0f} MB, {args.records:,} records")

    codes: dict[str, tuple[Path | None, bool]] = {"current": (None, False)}
    if args.pure_python:
        codes["pure Python"] = (None, True)
    if args.baseline_src:
        codes["baseline"] = (args.baseline_src, False)
    times: dict[str, list[float]] = {name: [] for name in codes}
    peaks: dict[str, list[int]] = {name: [] for name in codes}
    cpus: dict[str, list[float]] = {name: [] for name in codes}
    floors = []
    for run in range(1, args.runs + 1):
        for name, (src, pure_python) in codes.items():
            seconds, peak_mb, states, cpu = run_ingest(source, work / "spool", src, pure_python)
            rows = spooled_rows(work / "spool")
            if rows != expected and src is None:
                raise SystemExit(f"run {run}: spooled {rows} rows, expected {expected}")
            times[name].append(seconds)
            peaks[name].append(peak_mb)
            cpus[name].append(cpu)
            print(
                f"run {run} {name}: {seconds:.2f} s = {args.records / seconds:,.0f} records/s, {cpu:.2f} CPU s, peak RSS {peak_mb} MB, "
                f"{states} STATE lines, {rows:,} rows spooled",
                flush=True,
            )
        floors.append(parse_floor(source))
        print(f"run {run}: parse-only floor {floors[-1]:.2f} s", flush=True)
    for name in codes:
        med = statistics.median(times[name])
        print(
            f"median {name}: {args.records / med:,.0f} records/s ({med:.2f} s, {statistics.median(cpus[name]):.2f} CPU s), peak RSS median "
            f"{statistics.median(peaks[name])} MB (max {max(peaks[name])} MB)"
        )
    print(f"parse-only floor median {statistics.median(floors):.2f} s")
    shutil.rmtree(work / "spool", ignore_errors=True)


if __name__ == "__main__":
    main()
