#!/usr/bin/env python3
"""Soak run of the round-trip property test (tests/test_roundtrip.py) with many more examples.

    .venv/bin/python scripts/roundtrip.py --examples 500
    .venv/bin/python scripts/roundtrip.py --examples 200 --keep-going   # survey: every failure category
    .venv/bin/python scripts/roundtrip.py --examples 100 --no-poison --exclude-name ''

Each example is one `spool-target ingest` and one `spool-target load` (about 3 s) of several
random streams. By default the first failing example stops the run and is reported (its input is
saved next to the report); --shrink lets hypothesis look for a smaller failing input first (slow:
every step reruns the CLI). --keep-going runs every example and prints, per failure category, how
often it happened and one sample with its input lines. Exit status 1 when anything differed.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from roundtrip import Features, Mismatch, check_roundtrip, singer_runs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    ap.add_argument("--max-streams", type=int, default=6)
    ap.add_argument("--max-records", type=int, default=80)
    ap.add_argument("--keep-going", action="store_true", help="run all examples and summarise failure categories")
    ap.add_argument("--shrink", action="store_true", help="let hypothesis shrink a failing example (slow)")
    ap.add_argument("--no-poison", action="store_true", help="no NaN, Infinity, 1e400 or lone surrogates")
    ap.add_argument("--no-duplicates", action="store_true", help="no duplicate keys in records")
    ap.add_argument("--no-undeclared", action="store_true", help="no undeclared properties")
    ap.add_argument("--no-wrong-types", action="store_true", help="only values the rules accept")
    ap.add_argument("--exclude-name", action="append", default=[], help="never use this property name (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="directory for failing inputs (default: a temp dir)")
    args = ap.parse_args()

    features = Features(poison=not args.no_poison, duplicates=not args.no_duplicates,
                        undeclared=not args.no_undeclared, wrong_types=not args.no_wrong_types,
                        exclude_names=frozenset(args.exclude_name))
    out = args.out or Path(tempfile.mkdtemp(prefix="roundtrip-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    counts: collections.Counter[str] = collections.Counter()
    samples: dict[str, tuple[Mismatch, str]] = {}
    stats = {"examples": 0, "records": 0, "failed": 0}
    started = time.monotonic()

    @settings(max_examples=args.examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if args.shrink else []),
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(run=singer_runs(features, max_streams=args.max_streams, max_records=args.max_records))
    def soak(run):
        stats["examples"] += 1
        with tempfile.TemporaryDirectory(prefix="rt-", dir=out) as work:
            report = check_roundtrip(run.lines, Path(work), flush_rows=run.flush_rows)
        stats["records"] += report.records
        if not report.mismatches:
            return
        stats["failed"] += 1
        path = out / f"example-{stats['examples']:05d}.singer.jsonl"
        path.write_bytes(run.text())
        if args.keep_going:
            for m in report.mismatches:
                counts[m.category] += 1
                if m.category not in samples:
                    one = type(report)(report.lines, [m])
                    samples[m.category] = (m, one.explain(input_file=path).split("\n", 1)[1])
            print(f"example {stats['examples']}: {len(report.mismatches)} mismatches {report.categories()}", flush=True)
            return
        raise AssertionError(f"flush_max_rows={run.flush_rows}\n" + report.explain(input_file=path))

    if args.seed is not None:
        from hypothesis import seed

        soak = seed(args.seed)(soak)
    try:
        soak()
    finally:
        took = time.monotonic() - started
        print(f"\n{stats['examples']} examples, {stats['records']} records, {stats['failed']} failing examples, "
              f"{took:.0f}s; inputs of failing examples in {out}")
        for category, n in counts.most_common():
            print(f"\n== {category}: {n}\n{samples[category][1]}")
    return 1 if stats["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
