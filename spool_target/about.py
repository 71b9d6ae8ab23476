"""`--about`: this target's description and settings, generated from config.SETTINGS."""

from __future__ import annotations

import json
from typing import Any

from . import __version__
from .config import SETTINGS

DESCRIPTION = (
    "Singer target for Oracle Database that spools every stream to local Parquet first "
    "(`spool-target ingest`), then bulk-loads it exactly once (`spool-target load`)."
)


def about_dict() -> dict[str, Any]:
    return {
        "name": "target-spool",
        "description": DESCRIPTION,
        "version": __version__,
        "capabilities": ["about", "activate-version", "batch", "hard-delete"],
        "settings": [
            {
                "name": s.name,
                "kind": s.kind,
                "default": s.default,
                "description": s.help,
                "group": s.group,
                "secret": s.secret,
                "env": s.env_vars,
            }
            for s in SETTINGS
        ],
    }


def about_text(fmt: str) -> str:
    info = about_dict()
    if fmt == "json":
        return json.dumps(info, indent=2)
    if fmt == "markdown":
        lines = [
            f"# {info['name']} {info['version']}",
            "",
            info["description"],
            "",
            "| setting | kind | default | env | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for s in info["settings"]:
            default = "" if s["default"] in ("", None, {}) else f"`{s['default']}`"
            env = ", ".join(f"`{e}`" for e in s["env"])
            lines.append(f"| `{s['name']}` | {s['kind']} | {default} | {env} | {s['description']} |")
        return "\n".join(lines)
    lines = [f"{info['name']} {info['version']}: {info['description']}", "", "Settings:"]
    for s in info["settings"]:
        lines.append(f"  {s['name']} ({s['kind']}, default {s['default']!r}): {s['description']}")
    return "\n".join(lines)
