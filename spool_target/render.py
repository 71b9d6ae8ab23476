"""Plain-text rendering shared by every layer's reports: aligned tables and byte sizes.

Core, so that ``status``, ``check``, ``inspect`` and the CLI's output formats
use one table layout without importing each other (or the load package,
which `ingest` must never import: I3).
"""

from __future__ import annotations

from typing import Sequence


def text_table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, numeric: set[int]) -> list[str]:
    """A plain aligned table; ``numeric`` columns are right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [fmt(headers), fmt(tuple("-" * w for w in widths)), *(fmt(r) for r in rows)]


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
