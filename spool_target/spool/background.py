"""`ingest --load-in-background`: a `load --follow` child process drains the spool while the tap runs.

A child process, not a thread: the destination driver lives only there, so
ingest still imports none (I3), and a loader that is slow, stuck or down
cannot slow ingest, whose records keep going to disk first. Its log lines
go to ingest's stderr; its stdout too, so nothing but STATE reaches ingest's
stdout.

At the end of the input ingest sends SIGUSR1 ("drain"): the loader loads
what is pending and exits 0, or -- the destination being unavailable --
exits 75 at once, and ingest ends with the usual `load --resume` advice.
SIGUSR1 is blocked around the fork, so a child still starting up keeps the
signal pending (instead of dying of it) until its handler is installed. If
ingest itself dies, the loader notices its parent is gone and drains.
"""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import ExitCode
from ..logs import Log
from ..storage.location import is_remote


class LoaderOutcome(enum.Enum):
    LOADED = "loaded"  # everything committed by this ingest is in the destination
    PENDING = "pending"  # the destination was unavailable: work waits in the spool
    FAILED = "failed"  # the loader failed (its own log lines say why); the spool is intact


class BackgroundLoader:
    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc = proc

    @classmethod
    def start(cls, spool: str, config_files: list[Path] | None, log_format: str | None, quiet: bool) -> "BackgroundLoader":
        where = spool if is_remote(spool) else str(Path(spool).resolve())  # a bucket spool: the child reads the bucket
        args = [sys.executable, "-m", "spool_target", "load", "--follow", "--spool", where,
                "--background-of", str(os.getpid())]
        for f in config_files or []:
            args += ["--config", str(Path(f).resolve())]
        if log_format:
            args += ["--log-format", log_format]
        if quiet:
            args.append("--quiet")
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return cls(proc)

    def finish(self, log: Log) -> LoaderOutcome:
        """Ask the loader to drain, wait for it, say how it ended."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
        try:
            code = self.proc.wait()
        except KeyboardInterrupt:
            code = self.proc.wait()  # it got the SIGINT too and is stopping cleanly
        if code == ExitCode.OK:
            log.info("background load done: everything this run spooled is in the destination")
            return LoaderOutcome.LOADED
        if code == ExitCode.UNAVAILABLE:
            log.warning(
                "background load stopped: the destination is unavailable (or another load holds the spool); "
                "the spooled records are safe and pending",
                hint="run `spool-target load --resume` when the destination is back",
            )
            return LoaderOutcome.PENDING
        log.warning(
            f"background load ended with exit code {code} (its log lines above say why); the spool is intact",
            hint="fix the cause, then run `spool-target load --resume`",
        )
        return LoaderOutcome.FAILED
