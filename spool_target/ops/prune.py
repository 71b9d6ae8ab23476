"""Deleting segments that a destination has confirmed, and nothing else.

A segment may go only when the destination's ledger lists it with the
manifest's row count; a pending segment, or one whose ledger row disagrees,
or one the ledger could not be read for, stays. The ledger only ever grows
(a loaded segment never becomes pending again), so a ledger read before the
manifest is locked is still true when the files are deleted, and a load
running at the same time only ever reads segments the ledger does not list.

Order, for crash safety: the ``pruned`` manifest entry is appended (fsynced)
first, then the file is deleted. A crash in between leaves a file that the
manifest calls pruned; nothing reads it any more, ``verify`` reports it, and
the next prune deletes it. The other order could leave a committed segment
missing, which stops loads of its stream.

The manifest has a single writer: prune takes the ingest lock while it
appends, so it never races an ingest (or a replay). It does not wait for
one: an ingest can run for hours. ``load`` with ``retention`` set skips its
prune while an ingest runs and tries again later. The other way round, an
ingest that starts while a prune holds the lock waits for it (up to
``lock_wait_seconds``): the lock file names its holder.
"""

from __future__ import annotations

import enum
import os
import time
from calendar import timegm
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..durable import describe_os_error, fsync_dir
from ..errors import DestinationUnavailable, SpoolLocked
from ..faults import stop_point
from ..spool.layout import SpoolLayout, SpoolLock
from ..spool.entries import Pruned, Segment
from ..spool.manifest import Manifest, ManifestWriter, read_manifest, utc_now_iso

if TYPE_CHECKING:
    from ..load.destination import DestinationChoice
    from ..load.ledger import LedgerSnapshot
    from ..logs import Log


class Keep(enum.Enum):
    """Why a segment stays."""

    PENDING = "pending"  # not in the ledger: not loaded yet
    MISMATCH = "ledger disagrees"  # in the ledger with another row count: verify reports it
    TOO_YOUNG = "younger than --older-than"
    UNCONFIRMED = "ledger unreadable"  # destination unreachable: nothing can be confirmed


@dataclass
class PrunePlan:
    delete: list[Segment] = field(default_factory=list)
    kept: dict[Keep, list[Segment]] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)  # pruned in the manifest, file still there

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.delete)

    def keep(self, why: Keep, seg: Segment) -> None:
        self.kept.setdefault(why, []).append(seg)


class PruneState(enum.Enum):
    PRUNED = "pruned"
    DRY_RUN = "dry run"  # nothing changed
    NOTHING = "nothing to prune"
    SKIPPED_INGEST_RUNNING = "skipped: an ingest is running"  # best effort only (retention)
    SKIPPED_UNREACHABLE = "skipped: ledger unreadable"  # best effort only (retention)


@dataclass
class PruneReport:
    state: PruneState
    destination: str
    plan: PrunePlan

    def summary(self) -> str:
        p = self.plan
        kept = ", ".join(f"{len(p.kept[k])} {k.value}" for k in Keep if p.kept.get(k)) or "none"
        if self.state is PruneState.NOTHING:
            head = "prune: nothing to delete"
        else:
            verb = "would delete" if self.state is PruneState.DRY_RUN else "deleted"
            head = f"prune ({self.state.value}): {verb} {len(p.delete)} segment(s), {_mb(p.bytes)}"
        return f"{head}; kept: {kept}; ledger of {self.destination}"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def created_epoch(seg: Segment) -> float | None:
    if not seg.created_at:
        return None
    try:
        return float(timegm(time.strptime(seg.created_at.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def plan_prune(
    manifest: Manifest,
    confirms: Callable[[str, int], bool] | None,
    in_ledger: Callable[[str], bool],
    *,
    older_than: float | None,
    now: float,
    root: Path,
) -> PrunePlan:
    """Which committed, unpruned segments to delete. ``confirms`` is None when
    the ledger could not be read: then nothing is deleted."""
    plan = PrunePlan()
    pruned = manifest.pruned
    plan.leftovers = sorted(p for p in pruned if (root / p).exists())
    for seg in manifest.segments():
        if seg.path in pruned:
            continue
        if confirms is None:
            plan.keep(Keep.UNCONFIRMED, seg)
        elif not confirms(seg.item, seg.rows):
            plan.keep(Keep.MISMATCH if in_ledger(seg.item) else Keep.PENDING, seg)
        elif older_than is not None and (created_epoch(seg) or now) > now - older_than:
            plan.keep(Keep.TOO_YOUNG, seg)
        else:
            plan.delete.append(seg)
    return plan


def prune_spool(
    layout: SpoolLayout,
    destination: "DestinationChoice",
    log: "Log",
    *,
    older_than: float | None,
    max_wait: float,
    dry_run: bool = False,
    best_effort: bool = False,
) -> PruneReport:
    """``spool-target prune``: delete segments ``destination`` confirms as loaded; its ledger
    is retried for ``max_wait`` seconds when it is unavailable.

    ``best_effort`` (``retention`` after a load): when an ingest holds the
    manifest or the ledger cannot be read, skip quietly instead of failing."""
    from ..load.ledger import read_ledger_snapshot  # the destination side; never imported by ingest

    manifest = read_manifest(layout)
    ledger = read_ledger_snapshot(destination, manifest.spool_id, log, max_wait=max_wait)
    if not ledger.known:
        if best_effort:
            log.info(f"retention: cannot read the ledger of {ledger.destination} now; pruning later")
            return PruneReport(PruneState.SKIPPED_UNREACHABLE, ledger.destination, PrunePlan())
        raise DestinationUnavailable(
            f"cannot read the ledger of {ledger.destination} ({ledger.error}); nothing was pruned",
            hint="prune deletes only what the destination confirms; run it again when the destination is "
            "reachable (--max-wait sets how long to retry)",
        )
    if dry_run:
        plan = _plan(manifest, ledger, older_than, layout)
        return PruneReport(PruneState.DRY_RUN, ledger.destination, plan)
    try:
        lock = SpoolLock(layout.root / "ingest.lock", "ingest", holder="prune").acquire()
    except SpoolLocked as err:
        if best_effort:
            log.info("retention: an ingest is running on this spool; pruning after it ends", spool=str(layout.root))
            return PruneReport(PruneState.SKIPPED_INGEST_RUNNING, ledger.destination, PrunePlan())
        raise SpoolLocked(
            f"cannot prune now: {err.message}",
            hint="prune appends to the manifest, which one process writes at a time; run it when the ingest "
            "has finished (or set `retention` so `load` prunes between ingests)",
        ) from None
    stop_point("prune:locked")
    try:
        writer = ManifestWriter(layout, log)  # the manifest as of now, under the lock
        try:
            plan = _plan(writer.manifest, ledger, older_than, layout)
            _apply(layout, writer, plan, log)
        finally:
            writer.close()
    finally:
        lock.release()
    state = PruneState.PRUNED if plan.delete or plan.leftovers else PruneState.NOTHING
    return PruneReport(state, ledger.destination, plan)


def _plan(manifest: Manifest, ledger: "LedgerSnapshot", older_than: float | None, layout: SpoolLayout) -> PrunePlan:
    return plan_prune(
        manifest,
        ledger.confirms if ledger.known else None,
        lambda item: item in ledger.entries,
        older_than=older_than,
        now=time.time(),
        root=layout.root,
    )


def _apply(layout: SpoolLayout, writer: ManifestWriter, plan: PrunePlan, log: "Log") -> None:
    dirs: set[Path] = set()
    for rel in plan.leftovers:
        log.warning("deleting a segment file that an interrupted prune had already recorded as pruned", path=rel)
        _unlink(layout.root / rel, dirs)
    for seg in plan.delete:
        writer.append(Pruned(seg.stream, seg.path, seg.rows, seg.bytes, utc_now_iso()))
        _unlink(layout.root / seg.path, dirs)
    for d in dirs:
        try:
            fsync_dir(d)
        except OSError as err:
            raise describe_os_error(err, "syncing", d) from err


def _unlink(path: Path, dirs: set[Path]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # already gone (verify reported it missing): the entry records it
    except OSError as err:
        raise describe_os_error(err, "deleting", path) from err
    dirs.add(path.parent)


def retention_prune(
    layout: SpoolLayout, destination: "DestinationChoice", retention: float | None, log: "Log"
) -> PruneReport | None:
    """``retention`` (seconds; None: off) after a load: prune what has aged past it, skipping quietly
    when an ingest holds the manifest or the ledger cannot be read (the next load tries again)."""
    if retention is None:
        return None
    report = prune_spool(layout, destination, log, older_than=retention, best_effort=True, max_wait=0)
    if report.plan.delete or report.plan.leftovers:
        log.info(f"retention {retention:g}s: {report.summary()}")
    return report
