#!/usr/bin/env python3
"""Demo: the destination goes away in the middle of a run, and nothing is lost.

    python scripts/demo_outage.py [--records 60000] [--outage 6] [--workdir demo-outage]

A generated tap writes records in bursts (a STATE after each) into
`spool-target ingest --load-in-background`, which spools them and loads them
in the background into the embedded DuckDB file. A few seconds in, another
process takes a write lock on that file -- for everyone else the destination
is down -- and `status` shows the spool growing while nothing loads. Then the
lock goes away, the background loader catches up by itself, and `status`
shows everything loaded, exactly once. Every step is the real command line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CLI = [sys.executable, "-m", "spool_target"]

TAP = textwrap.dedent(
    """
    import json, sys, time
    records, burst = int(sys.argv[1]), int(sys.argv[2])
    out = sys.stdout
    out.write(json.dumps({"type": "SCHEMA", "stream": "events", "key_properties": ["id"], "schema": {"properties": {
        "id": {"type": "integer"}, "kind": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}}}) + "\\n")
    for start in range(0, records, burst):
        for i in range(start, min(records, start + burst)):
            out.write(json.dumps({"type": "RECORD", "stream": "events",
                                  "record": {"id": i, "kind": "click" if i % 3 else "view", "at": "2024-05-01T12:00:00Z"}}) + "\\n")
        out.write(json.dumps({"type": "STATE", "value": {"events": i}}) + "\\n")
        out.flush()
        time.sleep(0.25)
    """
)

# Holds a write connection: DuckDB lets one process write a file, so for the
# loader the destination is down until this process lets go.
LOCKER = textwrap.dedent(
    """
    import duckdb, sys, time
    while True:
        try:
            con = duckdb.connect(sys.argv[1])
            break
        except duckdb.IOException:
            time.sleep(0.05)  # the loader holds it during a pass; take it between two
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def show(title: str, args: list[str]) -> None:
    print(f"\n== {title}\n$ {' '.join(shlex.quote(a) for a in args)}", flush=True)
    subprocess.run(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--outage", type=float, default=4.0, help="seconds the destination stays away")
    parser.add_argument("--workdir", type=Path, default=Path("demo-outage"))
    args = parser.parse_args()

    work: Path = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spool = work / "spool"
    config = work / "target.json"
    config.write_text('{"flush_interval_seconds": 0.5, "flush_max_rows": 5000}\n')
    bursts = 40
    ingest_cmd = CLI + ["ingest", "--spool", str(spool), "--config", str(config), "--load-in-background", "--log-format", "text"]
    print(f"== a tap writes {args.records:,} records in {bursts} bursts into:\n$ {' '.join(map(shlex.quote, ingest_cmd))}", flush=True)
    tap = subprocess.Popen([sys.executable, "-c", TAP, str(args.records), str(max(1, args.records // bursts))], stdout=subprocess.PIPE)
    states = work / "state.json"
    with open(states, "wb") as state_out:
        pipeline = subprocess.Popen(ingest_cmd, stdin=tap.stdout, stdout=state_out)
    assert tap.stdout is not None
    tap.stdout.close()  # the pipeline owns it now

    time.sleep(2)  # the tap runs for about 10 s: the outage is in the middle of it
    show("before the outage: loading as the tap runs", CLI + ["status", "--spool", str(spool)])
    print("\n== the destination goes away (another process takes a write lock on the DuckDB file)", flush=True)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(spool / "spool.duckdb")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert locker.stdout is not None and locker.stdin is not None
    locker.stdout.readline()
    time.sleep(args.outage / 2)
    show("during the outage: the spool keeps growing, the loader retries", CLI + ["status", "--spool", str(spool)])
    time.sleep(args.outage / 2)
    print("\n== the destination is back", flush=True)
    locker.stdin.close()
    locker.wait()

    code = pipeline.wait()
    tap.wait()
    print(f"\n== ingest exited {code}; last STATE acknowledged to the tap: "
          f"{states.read_text().splitlines()[-1] if states.read_text() else None}", flush=True)
    (session,) = spool.joinpath("runs").glob("follow-*.json")
    if json.loads(session.read_text())["state"] != "drained":
        # The outage outlasted the tap: the loader stopped with work pending. The usual advice:
        show("the destination is back: finish the job", CLI + ["load", "--spool", str(spool), "--resume", "--log-format", "text"])
    show("after: everything spooled is loaded", CLI + ["status", "--spool", str(spool)])
    import duckdb

    con = duckdb.connect(str(spool / "spool.duckdb"), read_only=True)
    rows, ids = con.sql("SELECT count(*), count(DISTINCT id) FROM events").fetchall()[0]
    con.close()
    print(f"\n== the destination table: {rows:,} rows, {ids:,} distinct ids (the tap sent {args.records:,})")
    if code != 0 or rows != args.records or ids != args.records:
        raise SystemExit("demo failed: see above")


if __name__ == "__main__":
    main()
