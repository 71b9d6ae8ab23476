#!/usr/bin/env python3
"""The README's demo: a generated tap -> `spool-target ingest` -> `spool-target load`.

    python scripts/demo.py [--records 100000] [--workdir demo]

No server needed: with no destination configured, `load` writes to an
embedded DuckDB file inside the spool. Every step is the real command line,
printed before it runs, so you can copy it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import generate  # noqa: E402

import duckdb  # noqa: E402


def step(title: str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    print(f"\n== {title}\n$ {' '.join(shlex.quote(a) for a in args)}", flush=True)
    result = subprocess.run(args, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"demo step failed with exit code {result.returncode}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("demo"))
    args = parser.parse_args()

    work: Path = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tap_output = work / "tap-output.singer"
    spool = work / "spool"
    generate(tap_output, args.records)
    print(f"generated {args.records:,} Singer records (a STATE every 10,000) in {tap_output}")

    cli = [sys.executable, "-m", "spool_target"]
    with open(tap_output, "rb") as stdin:
        states = step(
            "phase one: spool the tap's output (no database involved)",
            cli + ["ingest", "--spool", str(spool), "--log-format", "text"],
            stdin=stdin,
            stdout=subprocess.PIPE,
        ).stdout.decode().splitlines()
    print(f"STATE written to stdout once its records were on disk: {states[-1] if states else None}")
    step("phase two: load the spool into the embedded DuckDB destination", cli + ["load", "--spool", str(spool), "--log-format", "text"])
    step("what is spooled, loaded and pending", cli + ["status", "--spool", str(spool)])

    database = spool / "spool.duckdb"
    print(f"\n== the loaded table, queried with DuckDB ({database})")
    con = duckdb.connect(str(database), read_only=True)
    for table, rows in con.sql("SELECT table_name, estimated_size FROM duckdb_tables() WHERE NOT internal ORDER BY 1").fetchall():
        print(f"  table {table}: {rows:,} rows")
    count = con.sql('SELECT count(*), count(DISTINCT id) FROM "users"').fetchall()[0]
    print(f"  users: {count[0]:,} rows, {count[1]:,} distinct ids")
    con.close()
    if count[0] != args.records:
        raise SystemExit(f"expected {args.records} rows, found {count[0]}")
    print("\ndemo done: every record spooled, then loaded exactly once.")


if __name__ == "__main__":
    main()
