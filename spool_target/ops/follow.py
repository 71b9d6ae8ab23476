"""`spool-target load --follow`: load segments as ingest commits them, through outages.

A loop around the load engine. It holds the spool's load lock for its whole
life, watches the manifest (only the bytes appended since the last look),
and runs one engine pass whenever a segment or ACTIVATE_VERSION was
committed, or a run ended -- within ``poll_seconds``. Each pass is an ordinary load: exactly
once (I4), in order (I6), and it ends with the destination connection closed.

Outages never end the loop: the engine retries with backoff (capped at a
few seconds here, so loading resumes soon after the destination is back),
and when its ``max_wait`` runs out the loop starts another pass. Permanent
errors (bad credentials, privileges) do end it, with their exit code.

Stopping: SIGINT or SIGTERM raises ``StopRequested`` inside the current pass
(or sleep). The pass's transaction is rolled back when the engine closes the
destination -- or it had committed already; the ledger says which -- so the
stop is as safe as the SIGKILL the tests inflict, only tidier. SIGUSR1 means
"drain": load what is pending and exit, and if the destination is
unavailable, exit at once with 75 rather than wait (``ingest
--load-in-background`` sends it when the tap's input ends).

Each pass writes the engine's run file; the loop keeps the newest successful
one (and every unsuccessful one) and writes its own summary,
``runs/follow-<session>.json``.
"""

from __future__ import annotations

import enum
import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Callable

import orjson

from ..durable import write_atomic
from ..errors import DestinationUnavailable, SegmentCorrupt, SpoolLocked
from ..logs import Log
from ..spool.layout import SpoolLayout, SpoolLock
from ..spool.entries import ActivateVersion, RunEnd, Segment, kind_marker
from ..spool.manifest import utc_now_iso
from ..storage.errors import StorageUnavailable
from ..load.destination import DestinationChoice
from ..load.engine import LoadEngine, LoadOptions, RunMode
from ..load.progress import LogReporter
from ..load.report import LoadReport, RunState, new_run_id, run_file, write_run_file

RETRY_CAP_SECONDS = 5.0  # longest single backoff while following
PRUNE_EVERY_SECONDS = 600.0  # with `retention`: look for segments that have aged past it
PRUNE_RETRY_SECONDS = 30.0  # after a load, or while an ingest holds the manifest


class StopRequested(BaseException):
    """SIGINT/SIGTERM arrived; a BaseException so nothing on the way treats it as a database error."""


class FollowEnd(enum.Enum):
    IDLE = "idle"  # --until-idle seconds with nothing pending
    STOPPED = "stopped"  # SIGINT or SIGTERM
    DRAINED = "drained"  # asked to drain (SIGUSR1, or the ingest it serves is gone) and nothing is pending
    UNAVAILABLE = "unavailable"  # asked to drain while the destination was unavailable: work is pending
    LOCKED_OUT = "locked out"  # asked to drain while another load held the spool's load lock
    FAILED = "failed"  # a permanent error ended it


class Pass(enum.Enum):
    """How one engine pass ended."""

    LOADED = "loaded"  # everything pending when it started is in the ledger
    PARTIAL = "partial"  # a stream stopped at a missing or corrupt segment; the rest loaded
    UNAVAILABLE = "unavailable"  # the destination stayed unavailable past max_wait


@dataclass(frozen=True)
class FollowOptions:
    until_idle: float | None = None
    poll_seconds: float = 1.0
    background_of: int | None = None  # pid of the `ingest --load-in-background` this loader serves
    retention: float | None = None  # the `retention` setting: prune as it goes (None: keep every segment)
    # A bucket spool (spool/remote.py): ``refresh`` brings the local replica up to the bucket
    # before each look, and ``prune`` replaces retention's prune of the replica with one under
    # the bucket's lease.
    refresh: Callable[[], object] | None = None
    prune: Callable[[], object] | None = None


@dataclass
class FollowReport:
    session: str
    spool: str
    started_at: str
    state: str = "running"
    passes: int = 0
    outages: int = 0
    rows: int = 0
    segments: int = 0
    streams: dict[str, dict[str, int]] = field(default_factory=dict)
    up_to_date: bool = True  # nothing seen pending yet
    error: str | None = None

    def add(self, report: LoadReport) -> None:
        for name, s in report.streams.items():
            acc = self.streams.setdefault(name, {"rows": 0, "segments": 0})
            acc["rows"] += s.rows
            acc["segments"] += s.segments
        self.rows += report.rows
        self.segments += report.segments

    def to_json(self) -> dict[str, Any]:
        return {"command": "load --follow", **vars(self)}


class _Signals:
    def __init__(self) -> None:
        self.stop: str | None = None
        self.drain = False
        self.interruptible = False
        self._saved: dict[int, Any] = {}

    def install(self) -> None:
        for sig, handler in ((signal.SIGINT, self._on_stop), (signal.SIGTERM, self._on_stop), (signal.SIGUSR1, self._on_drain)):
            self._saved[sig] = signal.signal(sig, handler)
        # `ingest --load-in-background` starts us with SIGUSR1 blocked, so a
        # drain request sent while we were starting up waits for the handler.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})

    def restore(self) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _on_stop(self, signum: int, _frame: Any) -> None:
        self.stop = signal.Signals(signum).name
        if self.interruptible:
            self.interruptible = False
            raise StopRequested(self.stop)

    def _on_drain(self, _signum: int, _frame: Any) -> None:
        self.drain = True


class _ManifestWatch:
    """Tells whether work entries were appended since the last look.

    It remembers where its last complete line ended -- never a byte count
    that may sit inside a torn tail -- and reads from there each time. An
    ingest that finds a torn last line cuts it off at the end of the last
    complete line and appends after it, so that boundary stays the start of a
    line; the torn bytes are read again with what replaced them instead of
    being glued to the middle of a new entry (which would hide a segment
    committed right after the cut). If the boundary is no longer a line end
    (the file shrank below it, or was replaced), it starts over."""

    # run_end too: under overwrite a run becomes loadable only when it ends.
    WORK = tuple(kind_marker(kind) for kind in (Segment, ActivateVersion, RunEnd))

    def __init__(self, path: Path):
        self.path = path
        self.boundary = 0  # bytes [0, boundary) are complete lines already looked at
        self.inode: int | None = None

    def new_work(self) -> bool:
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not self._still_valid(fh, st):
                    self.boundary = 0
                self.inode = st.st_ino
                if st.st_size <= self.boundary:
                    return False
                fh.seek(self.boundary)
                data = fh.read(st.st_size - self.boundary)
        except FileNotFoundError:
            return False
        complete = data.rfind(b"\n") + 1  # bytes after the last newline were never committed
        self.boundary += complete
        return any(marker in line for line in data[:complete].split(b"\n") for marker in self.WORK)

    def _still_valid(self, fh: BinaryIO, st: os.stat_result) -> bool:
        """Is ``boundary`` still the end of a complete line of the same file?"""
        if self.boundary == 0:
            return True
        if st.st_ino != self.inode or st.st_size < self.boundary:
            return False
        fh.seek(self.boundary - 1)
        return fh.read(1) == b"\n"


class Follower:
    def __init__(self, layout: SpoolLayout, destination: DestinationChoice, load: LoadOptions, options: FollowOptions,
                 log: Log, *, clock: Callable[[], float] = time.monotonic):
        self.destination = destination
        self.load = load
        self.log = log
        self.opt = options
        self.clock = clock
        self.layout = layout
        self.signals = _Signals()
        self.report = FollowReport(new_run_id(), self.layout.label, utc_now_iso())
        self._kept_run: Path | None = None  # the newest successful pass's run file
        self._corrupt: SegmentCorrupt | None = None
        self._prune_due = False
        self._last_prune = float("-inf")
        self._drain_retried = False  # after a drain request, one more attempt before giving up

    # ----- the loop ------------------------------------------------------------
    def run(self) -> FollowReport:
        self.signals.install()
        lock: SpoolLock | None = None
        try:
            lock = self._wait_for_lock()
            if lock is not None:
                end = self._follow()
            else:
                end = FollowEnd.STOPPED if self.signals.stop else FollowEnd.LOCKED_OUT
        except StopRequested:
            end = FollowEnd.STOPPED
        except BaseException as err:
            self.report.state, self.report.error = FollowEnd.FAILED.value, str(err).splitlines()[0]
            self._write_session()
            raise
        finally:
            self.signals.interruptible = False
            if lock is not None:
                lock.release()
            self.signals.restore()
        return self._finish(end)

    def _finish(self, end: FollowEnd) -> FollowReport:
        self.report.state = end.value
        self._write_session()
        pending = "nothing pending" if self.report.up_to_date else "work is pending in the spool (nothing is lost)"
        self.log.info(
            f"load --follow {end.value}: {self.report.rows:,} rows in {self.report.segments} segments over "
            f"{self.report.passes} pass(es); {pending}",
            session=self.report.session,
        )
        if end is FollowEnd.LOCKED_OUT:
            raise DestinationUnavailable(
                "another load held this spool's load lock until the loader was asked to finish; what was "
                "committed meanwhile waits for it or for the next load, nothing is lost",
                hint="run `spool-target status` to see what is pending, `spool-target load --resume` to load it",
            )
        if end is FollowEnd.UNAVAILABLE:
            raise DestinationUnavailable(
                "the destination is unavailable and the loader was asked to finish; work is pending in the spool, "
                "nothing is lost",
                hint="run `spool-target load --resume` when the destination is back",
            )
        if end in (FollowEnd.IDLE, FollowEnd.DRAINED) and self._corrupt is not None:
            raise self._corrupt
        return self.report

    def _follow(self) -> FollowEnd:
        watch = _ManifestWatch(self.layout.manifest)
        dirty = False  # its first look reads the whole manifest: work from before we started counts as new
        idle_since = self.clock()
        waiting_for_spool = False
        while True:
            if self.signals.stop:
                return FollowEnd.STOPPED
            self._check_parent()
            if not self._refreshed():
                self._sleep(self.opt.poll_seconds)
                continue
            if not self.layout.exists():
                if not waiting_for_spool:
                    self.log.info(f"waiting for a spool at {self.layout.label} (no manifest yet)")
                    waiting_for_spool = True
                self._sleep(self.opt.poll_seconds)
                continue
            if watch.new_work():
                dirty, self.report.up_to_date = True, False
            if dirty:
                outcome, loaded = self._pass()
                if outcome is Pass.UNAVAILABLE:
                    self.report.outages += 1
                    self.report.up_to_date = False
                    if self.signals.drain:
                        return FollowEnd.UNAVAILABLE
                    self._sleep(self.opt.poll_seconds)
                    continue
                dirty = False
                self.report.up_to_date = outcome is Pass.LOADED
                if loaded:
                    idle_since = self.clock()
                    self._prune_due = self.opt.retention is not None
                continue
            if self.signals.drain:
                if watch.new_work():  # committed just before the drain request arrived
                    dirty, self.report.up_to_date = True, False
                    continue
                self._retention()
                return FollowEnd.DRAINED
            if self.opt.until_idle is not None and self.clock() - idle_since >= self.opt.until_idle:
                self._retention()
                return FollowEnd.IDLE
            if self.opt.retention is not None:
                since = self.clock() - self._last_prune
                if since >= (PRUNE_RETRY_SECONDS if self._prune_due else PRUNE_EVERY_SECONDS):
                    self._retention()
            self._sleep(self.opt.poll_seconds)

    def _refreshed(self) -> bool:
        """Bring a bucket spool's replica up to date; an unreachable store is an outage
        like a destination's: logged, counted, waited out."""
        if self.opt.refresh is None:
            return True
        try:
            self.opt.refresh()
        except StorageUnavailable as err:
            self.report.outages += 1
            self.log.warning(f"the spool's bucket is unreachable; waiting for it: {err.message}")
            return False
        return True

    def _check_parent(self) -> None:
        """A background loader whose ingest died (even by SIGKILL) drains and exits."""
        if self.opt.background_of is not None and not self.signals.drain and os.getppid() != self.opt.background_of:
            self.log.info("the ingest this loader serves has ended; loading what is pending, then exiting")
            self.signals.drain = True

    def _wait_for_lock(self) -> SpoolLock | None:
        """The spool's load lock, once any other load lets go; None if stopped or
        asked to drain meanwhile (the other load, or the next, loads the rest)."""
        said = False
        while not self.signals.stop:
            self._check_parent()
            try:
                return SpoolLock(self.layout.root / "load.lock", "load").acquire()
            except SpoolLocked as err:
                # A drain request (a short ingest ends before we even start)
                # still gets one try above: only a real other load locks us out.
                if self.signals.drain:
                    return None
                if not said:
                    self.log.info(f"{err.message}; waiting for it to finish")
                    said = True
                self._sleep(self.opt.poll_seconds)
        return None

    # ----- one pass ----------------------------------------------------------
    def _pass(self) -> tuple[Pass, bool]:
        """One engine run over everything pending; (how it ended, whether it loaded anything)."""
        destination = self.destination.open(self.log)
        load = self.load if self.report.passes == 0 else replace(self.load, mode=RunMode.FRESH)
        engine = LoadEngine(self.layout, destination, load, self.log, LogReporter(self.log), sleep=self._engine_sleep)
        engine.backoff.cap = RETRY_CAP_SECONDS
        self.report.passes += 1
        outcome = Pass.LOADED
        self.signals.interruptible = True
        try:
            if self.signals.stop:
                raise StopRequested(self.signals.stop)
            engine.run()
        except SegmentCorrupt as err:
            outcome, self._corrupt = Pass.PARTIAL, err
            self.log.error(f"{err.message}; other streams keep loading", hint=err.hint)
        except DestinationUnavailable as err:
            outcome = Pass.UNAVAILABLE
            if not self.signals.drain:
                self.log.warning(f"{err.message}; still following, retrying", hint="nothing is lost")
        except StopRequested:
            self.signals.interruptible = False
            self._stopped_mid_pass(engine)
            raise
        except BaseException:
            if not self.signals.stop:
                raise
            # Our stop interrupted a database call, which reports it its own way
            # (DuckDB: RuntimeError "Query interrupted"): the transaction is rolled back.
            self.signals.interruptible = False
            self._stopped_mid_pass(engine)
            raise StopRequested(self.signals.stop) from None
        finally:
            self.signals.interruptible = False
        report: LoadReport | None = getattr(engine, "report", None)
        loaded = bool(report and (report.segments or any(s.activations for s in report.streams.values())))
        if report is not None:
            self.report.add(report)
            self._tidy_run_files(report)
        if outcome is not Pass.PARTIAL:
            self._corrupt = None
        self._write_session()
        return outcome, loaded

    def _stopped_mid_pass(self, engine: LoadEngine) -> None:
        report: LoadReport | None = getattr(engine, "report", None)
        if report is not None and report.state is RunState.FAILED:
            report.error = (
                f"stopped by {self.signals.stop} (load --follow): the transaction in progress was rolled back, "
                "everything committed before it is in the ledger"
            )
            write_run_file(self.layout, report, self.log)
            self.report.add(report)

    def _tidy_run_files(self, report: LoadReport) -> None:
        """Keep the newest successful pass's run file; passes that failed stay as evidence."""
        if report.state is not RunState.SUCCEEDED:
            return
        previous, self._kept_run = self._kept_run, run_file(self.layout, report.run_id)
        if previous is not None:
            previous.unlink(missing_ok=True)

    # ----- waiting -----------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        """Sleep in short slices; a stop signal interrupts it, a drain request ends it."""
        deadline = self.clock() + seconds
        while not self.signals.stop and not self.signals.drain:
            left = deadline - self.clock()
            if left <= 0:
                return
            time.sleep(min(0.2, left))

    def _engine_sleep(self, seconds: float) -> None:
        """The engine's backoff between retries. Asked to drain during an
        outage, the loader tries once more at once (the destination may be
        back) and then gives up: nobody is waiting for it any more."""
        if self.signals.drain:
            if self._drain_retried:
                raise DestinationUnavailable("the destination is unavailable and the loader was asked to finish")
            self._drain_retried = True
            return
        self._sleep(seconds)  # cut short by a drain request
        if self.signals.stop:
            raise StopRequested(self.signals.stop)
        if self.signals.drain:
            self._drain_retried = True

    # ----- retention and the session file ---------------------------------------------
    def _retention(self) -> None:
        from .prune import PruneState, retention_prune

        self._last_prune = self.clock()
        if self.opt.prune is not None:
            self._prune_due = self.opt.prune() is None  # None: skipped, an ingest holds the lease
            return
        result = retention_prune(self.layout, self.destination, self.opt.retention, self.log)
        if result is not None and result.state not in (PruneState.SKIPPED_INGEST_RUNNING, PruneState.SKIPPED_UNREACHABLE):
            self._prune_due = False

    def _write_session(self) -> None:
        path = self.layout.runs / f"follow-{self.report.session}.json"
        write_atomic(path, self.log.dumps(self.report.to_json(), option=orjson.OPT_INDENT_2))


def follow_load(
    layout: SpoolLayout, destination: DestinationChoice, load: LoadOptions, options: FollowOptions, log: Log
) -> FollowReport:
    """``spool-target load --follow``: ``load.mode`` is the first pass's; later passes are fresh loads."""
    if options.background_of is not None:
        log.component = "background-load"
    return Follower(layout, destination, load, options, log).run()
