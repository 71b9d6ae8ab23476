"""`spool-target verify`: can the spool be trusted, and does the destination agree?

Checks, each problem one line that says what, where and what next:

- every committed, unpruned segment exactly as the loader checks it before
  loading (file present, sha256, Parquet row count and columns:
  ``plan.verify_segment``);
- files nobody accounts for: segment files without a manifest entry
  (orphans), work files in ``tmp/``, files of pruned segments still on disk;
- with a destination: its ledger against the manifest -- items the manifest
  does not hold, row counts that differ, pruned segments the ledger does not
  list, loaded segments whose file is gone without a prune.

A running ingest writes ``tmp/`` and publishes a segment file just before
its manifest entry, so while the ingest lock is held those are not reported.
Notes (quarantined files, a torn manifest tail, segments the ledger lists
but whose spool is elsewhere) are printed but are not problems.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpoolLocked, SpoolTargetError
from ..logs import Log
from ..spool.layout import SpoolLayout, SpoolLock
from ..spool.entries import Segment
from ..spool.manifest import Manifest, read_manifest

if TYPE_CHECKING:
    from ..load.destination import DestinationChoice


class Check(enum.Enum):
    SEGMENT = "segment"  # missing, corrupt, wrong rows or columns
    ORPHAN = "orphan file"
    TEMP_FILE = "temp file"
    PRUNED_FILE_LEFT = "pruned file still present"
    LEDGER_UNKNOWN_ITEM = "ledger item unknown to the manifest"
    LEDGER_ROWS = "ledger row count differs"
    PRUNED_NOT_LOADED = "pruned but not in the ledger"
    DESTINATION = "destination unreachable"


@dataclass(frozen=True)
class Problem:
    check: Check
    where: str  # a path relative to the spool, or the destination
    message: str
    hint: str = ""

    def line(self) -> str:
        return f"{self.check.value}: {self.where}: {self.message}" + (f" ({self.hint})" if self.hint else "")


@dataclass
class VerifyReport:
    spool: str
    segments_checked: int = 0
    bytes_checked: int = 0
    destination: str | None = None
    ledger_state: str = "not checked"
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        dest = f"; ledger of {self.destination}: {self.ledger_state}" if self.destination else ""
        return f"verify {self.spool}: {verdict}; {self.segments_checked} segments ({self.bytes_checked:,} bytes) checked{dest}"


_SEGMENT_NAME = re.compile(r"^(\d+)-")


def verify_spool(
    layout: SpoolLayout, destination: "DestinationChoice", log: Log, *, check_destination: bool | None = None
) -> VerifyReport:
    """``check_destination``: True checks the configured ``destination`` (unreachable
    is a problem); None checks it only if one is configured or the embedded
    DuckDB file exists; False skips it."""
    from ..load.units import verify_segment  # the loader's own check, so verify says what load would say

    ingest_running = _ingest_running(layout)
    manifest = read_manifest(layout)
    report = VerifyReport(layout.label)
    if manifest.torn_tail:
        report.notes.append("the manifest ends in a torn line (a crash mid-append); it is ignored and the next ingest removes it")
    pruned = manifest.pruned
    committed: set[str] = set()
    for seg in manifest.segments():
        committed.add(seg.path)
        if seg.path in pruned:
            if (layout.root / seg.path).exists():
                report.problems.append(
                    Problem(Check.PRUNED_FILE_LEFT, seg.path, "the manifest records it as pruned", "run `spool-target prune` to finish")
                )
            continue
        try:
            verify_segment(layout, manifest, seg)
            report.segments_checked += 1
            report.bytes_checked += seg.bytes
        except SpoolTargetError as err:
            report.problems.append(Problem(Check.SEGMENT, seg.path, f"stream {seg.stream!r}: {err.message}", err.hint or ""))
    _unaccounted_files(layout, manifest, committed, ingest_running, report)
    if check_destination is not False:
        _compare_ledger(destination, layout, manifest, log, report, required=bool(check_destination))
    return report


def _ingest_running(layout: SpoolLayout) -> bool:
    try:
        SpoolLock(layout.root / "ingest.lock", "ingest", holder="verify").acquire().release()
    except SpoolLocked:
        return True
    return False


def _unaccounted_files(layout: SpoolLayout, manifest: Manifest, committed: set[str], ingest_running: bool, report: VerifyReport) -> None:
    next_n = manifest.next_n
    for path in sorted(layout.streams.glob("*/*")):
        rel = path.relative_to(layout.root).as_posix()
        if rel in committed or not path.is_file():
            continue
        m = _SEGMENT_NAME.match(path.name)
        if ingest_running and m and int(m.group(1)) >= next_n:
            continue  # being committed right now
        report.problems.append(
            Problem(
                Check.ORPHAN,
                rel,
                "a file in streams/ with no manifest entry; it is never loaded",
                "the next `spool-target ingest` moves it to quarantine/",
            )
        )
    if ingest_running:
        report.notes.append("an ingest is running: its work files in tmp/ were not checked")
    else:
        for path in sorted(layout.tmp.glob("*")):
            report.problems.append(
                Problem(
                    Check.TEMP_FILE,
                    path.relative_to(layout.root).as_posix(),
                    "left by an interrupted ingest; its records were never acknowledged",
                    "the next `spool-target ingest` removes it",
                )
            )
    quarantined = sorted(layout.quarantine.glob("*")) if layout.quarantine.exists() else []
    if quarantined:
        report.notes.append(
            f"{len(quarantined)} file(s) in quarantine/: segments a crash left without a manifest entry; their "
            "records were never acknowledged, so the tap sent them again; delete them when you no longer need them"
        )


def _compare_ledger(
    destination: "DestinationChoice", layout: SpoolLayout, manifest: Manifest, log: Log, report: VerifyReport, *, required: bool
) -> None:
    from ..load.destination import SEGMENT_LEDGER_KINDS, DestinationKind
    from ..load.ledger import read_ledger_snapshot
    from ..load.ledger import DestinationState

    spec = destination.spec
    if not required and spec.implicit and spec.path is not None and not spec.path.exists():
        report.notes.append("no destination configured and nothing loaded into the embedded DuckDB file: ledger not compared")
        return
    ledger = read_ledger_snapshot(destination, manifest.spool_id, log)
    report.destination, report.ledger_state = ledger.destination, ledger.state.value
    if ledger.state is DestinationState.UNREACHABLE:
        report.problems.append(
            Problem(
                Check.DESTINATION, ledger.destination, f"cannot read its ledger: {ledger.error}", "run verify again when it is reachable"
            )
        )
        return
    if spec.kind is DestinationKind.DUCKDB and ledger.state is DestinationState.NOT_CREATED:
        report.notes.append(f"{ledger.destination} does not exist yet: nothing loaded")
    # The ids the ledger uses: a segment's path, an ACTIVATE_VERSION's ``activate_version/<n>``.
    items = {work.item: work for work in manifest.work()}
    pruned = manifest.pruned
    for item, entry in sorted(ledger.entries.items()):
        mine = items.get(item)
        if mine is None:
            report.problems.append(
                Problem(
                    Check.LEDGER_UNKNOWN_ITEM,
                    item,
                    f"the ledger of {ledger.destination} lists it as loaded for this spool, but the manifest does not hold it",
                    "was the spool restored from an older backup? its records are in the destination; do not reuse this spool id",
                )
            )
        elif isinstance(mine, Segment) and entry.kind in SEGMENT_LEDGER_KINDS and entry.rows != mine.rows:
            report.problems.append(
                Problem(
                    Check.LEDGER_ROWS,
                    item,
                    f"the ledger says {entry.rows} rows were loaded, the manifest says {mine.rows}",
                    "compare the destination table with the segment (`spool-target sql`) before pruning it",
                )
            )
    for path in sorted(pruned):  # a pruned segment's path is its ledger item
        if path not in ledger.entries:
            report.problems.append(
                Problem(
                    Check.PRUNED_NOT_LOADED,
                    path,
                    f"pruned, but the ledger of {ledger.destination} does not list it",
                    "it was confirmed by another destination's ledger, or its records are lost; check the destination",
                )
            )
    for problem in report.problems:
        if problem.check is Check.SEGMENT and problem.where in ledger.entries and not Path(layout.root / problem.where).exists():
            report.notes.append(
                f"{problem.where} is missing but already loaded into {ledger.destination}: nothing is lost; "
                "`spool-target prune` records it as pruned"
            )


def raise_for_problems(report: VerifyReport) -> None:
    """Exit 5 for anything wrong with the spool or the ledger; 75 when the
    only trouble is a destination that could not be read."""
    from ..errors import DestinationUnavailable, SpoolError

    if report.ok:
        return
    if all(p.check is Check.DESTINATION for p in report.problems):
        raise DestinationUnavailable(
            f"verify could not read the ledger of {report.destination}; the spool itself is fine",
            hint="run `spool-target verify` again when the destination is reachable, or pass --no-destination",
        )
    raise SpoolError(
        f"verify found {len(report.problems)} problem(s) in spool {report.spool} (listed above, one per line)",
        hint="each line says what to do; `spool-target load` stops a stream at a bad segment and loads the others",
    )
