"""Log lines on stderr: readable text on a terminal, JSON lines in pipelines.

stdout belongs to Singer STATE (ingest) or to command output, so every log
line goes to stderr. Secrets registered with ``Log.redact`` are replaced by
``***`` in every line, whatever produced it (I7).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import orjson


class Log:
    def __init__(
        self,
        fmt: str = "auto",
        *,
        stream: TextIO | None = None,
        quiet: bool = False,
        component: str = "spool-target",
    ):
        self.stream = stream or sys.stderr
        if fmt == "auto":
            fmt = "text" if self.stream.isatty() else "json"
        self.format = fmt
        self.quiet = quiet
        self.component = component
        self._secrets: list[str] = []

    @property
    def interactive(self) -> bool:
        return self.format == "text" and self.stream.isatty() and not self.quiet

    def redact(self, *secrets: str) -> None:
        self._secrets.extend(s for s in secrets if s)

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def _emit(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if self.quiet and level in ("debug", "info"):
            return
        if self.format == "json":
            record = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
                "level": level,
                "component": self.component,
                "message": message,
                **fields,
            }
            line = orjson.dumps(record, default=str).decode()
        else:
            extra = " ".join(f"{k}={v}" for k, v in fields.items())
            prefix = "" if level == "info" else f"{level}: "
            line = f"{prefix}{message}" + (f"  ({extra})" if extra else "")
        try:
            self.stream.write(self.scrub(line) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def debug(self, message: str, **fields: Any) -> None:
        pass

    def info(self, message: str, **fields: Any) -> None:
        self._emit("info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._emit("warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._emit("error", message, fields)

    def metric(self, metric_type: str, metric: str, value: Any, **tags: Any) -> None:
        """A Singer SDK style METRIC line, for dashboards that already parse them."""
        if self.format == "json":
            self._emit("info", "METRIC", {"type": metric_type, "metric": metric, "value": value, "tags": tags})
        else:
            self._emit("info", f"metric {metric}={value}", dict(tags))


NULL_LOG = Log("json", quiet=True)
