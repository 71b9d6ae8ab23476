#!/usr/bin/env python
"""Benchmark `spool-target load` into DuckDB.

1. Throughput: a spool of 1,000,000 realistic 9-field records (10 segments
   of 100,000, as ingest writes them) loaded into a fresh DuckDB file.
   Reports rows/second of the load engine (in process: from reading the
   manifest to the last commit) and the wall time of the real CLI.
2. Resume cost: a spool of 1,000 small segments. Times the first full load,
   then `load --resume` with 990 segments already loaded and 10 pending:
   resume should cost in proportion to what is pending, not what is loaded.

Every figure is the median of --runs runs. The spools are generated
directly in the spool format (ManifestWriter + segment.write_segment), so
this measures the loader only; `scripts/bench_ingest.py` measures ingest.

    python scripts/bench_load.py [--runs 5] [--rows 1000000] [--keep DIR] [--compression fast|compact]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spool_target.cli.common import destination_from_config, load_options, open_spool  # noqa: E402
from spool_target.config import load_config  # noqa: E402
from spool_target.load.engine import RunMode, run_load  # noqa: E402
from spool_target.logs import Log  # noqa: E402
from spool_target.schema import SEQUENCE, parse_schema_message  # noqa: E402
from spool_target.spool.layout import SpoolLayout, stream_dir  # noqa: E402
from spool_target.spool.entries import Segment  # noqa: E402
from spool_target.spool.manifest import ManifestWriter, utc_now_iso  # noqa: E402
from spool_target.spool.segment import write_segment  # noqa: E402

PROPERTIES = {
    "id": {"type": "integer"},
    "uuid": {"type": "string"},
    "name": {"type": ["string", "null"]},
    "email": {"type": ["string", "null"]},
    "amount": {"type": ["number", "null"]},
    "created_at": {"type": "string", "format": "date-time"},
    "signup_date": {"type": ["string", "null"], "format": "date"},
    "active": {"type": ["boolean", "null"]},
    "attributes": {"type": ["object", "null"]},
}

# Realistic values, made by DuckDB so that generating a million rows takes a second.
RECORDS_SQL = """
SELECT i AS id,
       uuid()::VARCHAR AS uuid,
       'user ' || (hash(i) % 100000)::VARCHAR || ' ' || chr(65 + (i % 26)::INT) || 'son' AS name,
       'user' || (hash(i * 7) % 1000000)::VARCHAR || '@example' || (i % 50)::VARCHAR || '.com' AS email,
       round((hash(i * 13) % 1000000) / 100.0, 2)::DOUBLE AS amount,
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((hash(i * 17) % 31536000000000)::BIGINT) AS created_at,
       DATE '2015-01-01' + (hash(i * 19) % 3650)::INT AS signup_date,
       hash(i * 23) % 3 <> 0 AS active,
       '{"plan":"' || ['free','pro','team'][1 + (i % 3)::INT] || '","logins":' || (hash(i) % 500)::VARCHAR ||
           ',"tags":["a","b' || (i % 9)::VARCHAR || '"]}' AS attributes,
       TIMESTAMPTZ '2024-06-01 00:00:00+00' AS _sdc_extracted_at,
       now() AS _sdc_received_at,
       NULL::BIGINT AS _sdc_table_version,
       NULL::TIMESTAMPTZ AS _sdc_deleted_at,
       NULL::VARCHAR AS _sdc_extra
FROM range(?, ?) t(i)
"""


def build_spool(root: Path, *, rows: int, segment_rows: int) -> int:
    """Write a spool of ``rows`` records in segments of ``segment_rows``; return the segment count."""
    layout = SpoolLayout(root)
    layout.create_dirs()
    writer = ManifestWriter(layout)
    schema = parse_schema_message("bench-users", {"type": "object", "properties": PROPERTIES}, ["id"])
    writer.append_schema(schema)
    names = [c.name for c in schema.columns]
    con = duckdb.connect()
    sequence = time.time_ns()
    segments = 0
    for start in range(0, rows, segment_rows):
        stop = min(rows, start + segment_rows)
        table = con.sql(RECORDS_SQL, params=[start, stop]).to_arrow_table()
        table = table.append_column(SEQUENCE, pa.array(range(sequence + start, sequence + stop), pa.int64()))
        table = table.select(names).cast(schema.arrow_schema())
        n = writer.reserve_n()
        rel = f"streams/{stream_dir(schema.stream)}/{n:09d}-{schema.schema_id[:8]}.parquet"
        size, digest = write_segment(table, layout.tmp / f"segment-{n}.parquet.tmp", root / rel)
        writer.append(Segment(
            stream=schema.stream, path=rel, rows=stop - start, bytes=size, sha256=digest, schema_id=schema.schema_id,
            first_sequence=sequence + start, last_sequence=sequence + stop - 1, first_line=None, last_line=None,
            created_at=utc_now_iso(), run_id="bench",
        ))
        segments += 1
    writer.close()
    con.close()
    return segments


def fresh_destination(spool: Path) -> None:
    for p in spool.glob("spool.duckdb*"):
        p.unlink()
    for p in (spool / "runs").glob("load-*.json"):
        p.unlink()


COMPRESSION = "fast"


def load_in_process(spool: Path, mode: RunMode = RunMode.FRESH) -> tuple[float, int]:
    config = load_config([], {"spool_dir": str(spool), "log_format": "json", "duckdb_compression": COMPRESSION}, environ={})
    log = Log("json", stream=io.StringIO(), quiet=True)
    started = time.perf_counter()
    layout = open_spool(config)  # what `spool-target load` does with its config
    report = run_load(layout, destination_from_config(config, layout.root), load_options(config, mode), log)
    return time.perf_counter() - started, report.rows


def load_cli(spool: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spool_target", "load", "--spool", str(spool), "--quiet", *args],
                   check=True, cwd=ROOT, env={**os.environ, "SPOOL_TARGET_DUCKDB_COMPRESSION": COMPRESSION})
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="build the spools here and keep them")
    ap.add_argument("--compression", choices=("fast", "compact"), default="fast", help="the duckdb_compression setting")
    args = ap.parse_args()
    global COMPRESSION
    COMPRESSION = args.compression
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        big = work / "throughput"
        if not (big / "manifest.jsonl").exists():
            t = time.perf_counter()
            n = build_spool(big, rows=args.rows, segment_rows=100_000)
            print(f"built {args.rows:,}-record spool ({n} segments, "
                  f"{sum(p.stat().st_size for p in big.rglob('*.parquet')) / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s")
        engine, cli = [], []
        for _ in range(args.runs):
            fresh_destination(big)
            seconds, rows = load_in_process(big)
            assert rows == args.rows, rows
            engine.append(seconds)
            fresh_destination(big)
            cli.append(load_cli(big))
        size = sum(p.stat().st_size for p in big.glob("spool.duckdb*")) / 1e6
        print(f"throughput ({COMPRESSION}, DuckDB file {size:.0f} MB): {args.rows:,} rows, median of {args.runs}: engine {median(engine):.2f}s "
              f"= {args.rows / median(engine):,.0f} rows/s; CLI wall {median(cli):.2f}s "
              f"= {args.rows / median(cli):,.0f} rows/s  (runs: {', '.join(f'{s:.2f}' for s in engine)})")

        many = work / "resume"
        if not (many / "manifest.jsonl").exists():
            build_spool(many, rows=100_000, segment_rows=100)
        manifest = (many / "manifest.jsonl").read_bytes()
        lines = manifest.splitlines(keepends=True)
        without_last_10 = b"".join(lines[:-10])  # the last 10 lines are the last 10 segments
        full, resume, resume_cli = [], [], []
        for _ in range(args.runs):
            fresh_destination(many)
            full.append(load_in_process(many)[0])
            fresh_destination(many)
            (many / "manifest.jsonl").write_bytes(without_last_10)
            load_in_process(many)
            (many / "manifest.jsonl").write_bytes(manifest)
            seconds, rows = load_in_process(many, RunMode.RESUME)
            assert rows == 1_000, rows
            resume.append(seconds)
            # and the CLI, once more with 10 pending
            fresh_destination(many)
            (many / "manifest.jsonl").write_bytes(without_last_10)
            load_in_process(many)
            (many / "manifest.jsonl").write_bytes(manifest)
            resume_cli.append(load_cli(many, "--resume"))
        print(f"resume: 1,000 segments; first full load {median(full):.3f}s; "
              f"resume with 990 loaded and 10 pending {median(resume):.3f}s "
              f"({median(resume) / median(full):.1%} of the full load; CLI wall {median(resume_cli):.2f}s)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
