"""Log lines on stderr: readable text on a terminal, JSON lines in pipelines.

stdout belongs to Singer STATE (ingest) or to command output, so every log
line goes to stderr. Secrets registered with ``Log.redact`` are replaced by
``***`` in every line, whatever produced it (I7).

Scrubbing happens on the values, before they are encoded: once JSON escapes
``"`` as ``\\"`` or ``repr`` doubles a backslash, the secret's bytes are no
longer in the line. Text that was encoded elsewhere (a driver message quoting
a repr, a JSON document) is caught by also replacing each secret's escaped
forms. Run files and command output go through the same ``scrub_data`` /
``dumps``.
"""

from __future__ import annotations

import json
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
        forms = set(self._secrets)
        for secret in secrets:
            if secret:
                forms.update(secret_forms(secret))
        # Longest first, so that an escaped form is replaced whole rather than
        # leaving its escapes around a shorter form's ``***``.
        self._secrets = sorted(forms, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "***")
        return text

    def scrub_data(self, value: Any) -> Any:
        """``value`` with every string in it scrubbed (keys too), ready to encode."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(str(k)): self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.scrub_data(v) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return self.scrub(str(value))

    def dumps(self, value: Any, option: int | None = None) -> bytes:
        """JSON for a file or stdout, scrubbed before it is encoded."""
        return orjson.dumps(self.scrub_data(value), default=self._scrubbed_str, option=option)

    def _scrubbed_str(self, value: Any) -> str:
        return self.scrub(str(value))

    def _emit(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if self.quiet and level in ("debug", "info"):
            return
        message = self.scrub(message)
        fields = self.scrub_data(fields)
        if self.format == "json":
            record = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
                "level": level,
                "component": self.component,
                "message": message,
                **fields,
            }
            line = orjson.dumps(record, default=self._scrubbed_str).decode()
        else:
            extra = " ".join(f"{k}={v}" for k, v in fields.items())
            prefix = "" if level == "info" else f"{level}: "
            line = f"{prefix}{message}" + (f"  ({extra})" if extra else "")
        try:
            # Once more on the whole line: a field's repr may have re-encoded it.
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


def secret_forms(secret: str) -> set[str]:
    """The ways ``secret`` can appear in encoded text: as is, JSON-escaped
    (orjson, json with and without ensure_ascii), and inside a Python repr
    with either quote."""
    forms = {secret}
    for ensure_ascii in (True, False):
        forms.add(json.dumps(secret, ensure_ascii=ensure_ascii)[1:-1])
    forms.add(repr(secret)[1:-1])
    # Inside the repr of a longer string that holds both quotes: single
    # quotes, each ' escaped.
    forms.add(repr("'" + secret + '"')[3:-2])
    forms.add(orjson.dumps(secret).decode()[1:-1])
    return {f for f in forms if f}


NULL_LOG = Log("json", quiet=True)
