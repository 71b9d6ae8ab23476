#!/usr/bin/env python3
"""Regenerate the settings table in README.md from spool_target/config.py.

    python scripts/update_readme.py          # rewrite README.md in place
    python scripts/update_readme.py --check  # exit 1 if README.md is stale (the tests do this)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from spool_target.about import about_text

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- settings:start[^\n]*-->\n)(.*?)(<!-- settings:end -->)", re.S)


def settings_table() -> str:
    lines = about_text("markdown").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| setting"))
    return "\n".join(lines[start:]) + "\n"


def updated(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + settings_table() + m.group(3), text)


def main() -> None:
    text = README.read_text()
    new = updated(text)
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    README.write_text(new)


if __name__ == "__main__":
    main()
