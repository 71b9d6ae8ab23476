"""How a load shows itself: a rich progress bar on a terminal, log lines otherwise.

Both reporters end with a summary per stream (rows loaded, segments,
rejected, time): a table on a terminal or with ``--log-format text``, one
JSON log line with ``--log-format json``. ``--quiet`` silences all of it
(the Log drops info lines), leaving warnings and errors for cron mail.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from ..logs import Log
from ..render import text_table
from ..metrics import load_metrics
from .destination import ActivateStep, LoadUnit
from .report import LoadReport, StreamReport


class Reporter(Protocol):
    def begin(self, report: LoadReport) -> None: ...

    def unit_loaded(self, stream: StreamReport, unit: LoadUnit) -> None: ...

    def finish(self, report: LoadReport) -> None: ...


def make_reporter(log: Log) -> Reporter:
    return RichReporter(log) if log.interactive else LogReporter(log)


SUMMARY_HEADERS = ("stream", "table", "outcome", "rows", "segments", "rejected", "seconds")


def summary_rows(report: LoadReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (s.stream, s.table, s.outcome.value, f"{s.rows:,}", str(s.segments), str(s.rejected), f"{s.seconds:.1f}")
        for s in report.streams.values()
    ]
    rows.append(("total", "", report.state.value, f"{report.rows:,}", str(report.segments),
                 str(sum(s.rejected for s in report.streams.values())), f"{report.seconds:.1f}"))
    return rows


def _rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else 0.0


class LogReporter:
    """Plain log lines: one per committed unit, then the summary."""

    def __init__(self, log: Log):
        self.log = log

    def begin(self, report: LoadReport) -> None:
        pass

    def unit_loaded(self, stream: StreamReport, unit: LoadUnit) -> None:
        for step in unit.steps:
            if isinstance(step, ActivateStep):
                self.log.info(
                    f"applied ACTIVATE_VERSION {step.version} to {stream.table} ({unit.deletes.value} delete)",
                    stream=stream.stream,
                )
        if unit.segments:
            self.log.info(
                f"loaded {len(unit.segments)} segment(s), {unit.rows:,} rows into {stream.table}",
                stream=stream.stream,
                rows_total=stream.rows,
                rows_per_second=round(_rate(stream.rows, stream.seconds)),
            )

    def finish(self, report: LoadReport) -> None:
        load_metrics(self.log, report)  # Singer-style METRIC lines (ops), before the summary
        if self.log.format == "json":
            self.log.info(
                f"load {report.state.value}: {report.rows:,} rows, {report.segments} segments in {report.seconds:.1f}s",
                run_id=report.run_id,
                rows_per_second=round(_rate(report.rows, report.seconds)),
                streams={k: _summary_fields(v) for k, v in report.streams.items()},
            )
            return
        for line in text_table(SUMMARY_HEADERS, summary_rows(report), numeric={3, 4, 5, 6}):
            self.log.info(line)


def _summary_fields(s: StreamReport) -> dict[str, Any]:
    return {
        "table": s.table,
        "outcome": s.outcome.value,
        "rows": s.rows,
        "segments": s.segments,
        "rejected": s.rejected,
        "seconds": round(s.seconds, 3),
        **({"error": s.error} if s.error else {}),
    }


class _ConsoleStream:
    """Lets Log lines print above the live progress bar instead of through it."""

    def __init__(self, console: Any):
        self.console = console

    def write(self, text: str) -> None:
        self.console.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


class RichReporter:
    """A live progress bar per stream plus a total: rows, rows/s, segments."""

    def __init__(self, log: Log):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.log = log
        self.console = Console(file=log.stream, stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[segments]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._total: Any = None
        self._started = time.monotonic()
        self._log_stream = log.stream

    def begin(self, report: LoadReport) -> None:
        pending = [s for s in report.streams.values() if s.pending_segments]
        if not pending:
            return
        self.log.stream = _ConsoleStream(self.console)
        self.progress.start()
        for s in pending:
            self._tasks[s.stream] = self.progress.add_task(
                s.stream, total=s.pending_rows, rate="", segments=f"0/{s.pending_segments} seg"
            )
        if len(pending) > 1:
            self._total = self.progress.add_task(
                "total", total=sum(s.pending_rows for s in pending), rate="", segments=""
            )

    def unit_loaded(self, stream: StreamReport, unit: LoadUnit) -> None:
        rows = unit.rows
        task = self._tasks.get(stream.stream)
        if task is None:
            return
        self.progress.update(
            task,
            advance=rows,
            rate=f"{_rate(stream.rows, stream.seconds):,.0f}/s",
            segments=f"{stream.segments}/{stream.pending_segments} seg",
        )
        if self._total is not None:
            elapsed = time.monotonic() - self._started
            done = self.progress.tasks[self._total].completed + rows
            self.progress.update(self._total, advance=rows, rate=f"{_rate(done, elapsed):,.0f}/s")

    def finish(self, report: LoadReport) -> None:
        from rich.table import Table

        if self.progress.live.is_started:
            self.progress.stop()
        self.log.stream = self._log_stream
        load_metrics(self.log, report)  # Singer-style METRIC lines (ops), before the summary
        table = Table(title=f"load {report.state.value} ({report.run_id})")
        for i, h in enumerate(SUMMARY_HEADERS):
            table.add_column(h, justify="right" if i >= 3 else "left")
        for row in summary_rows(report):
            table.add_row(*row)
        self.console.print(table)
