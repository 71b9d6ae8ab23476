"""The ``spool-target`` command line: one thin module per group of commands."""

from __future__ import annotations

# Each module registers its commands on ``app`` when imported.
from . import ingest_cmd, load_cmd, ops_cmd, oracle_cmd  # noqa: F401
from .app import app
from .ingest_cmd import meltano_app


def main() -> None:
    app()


def meltano_main() -> None:
    """``target-spool``: the Meltano-style entry point, same as ``spool-target ingest``."""
    meltano_app()
