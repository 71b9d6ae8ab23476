"""The live Oracle a script should use: the same three variables as the live test suite.

scripts/oracle_live.sh sets them for the container it starts; anyone with
another server sets them by hand. One place, so the scripts that need a server
(bench_oracle.py, oracle_wait.py) name the same variables and say the same
thing when they are missing.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

DSN_VAR = "SPOOL_TARGET_TEST_ORACLE_DSN"
USER_VAR = "SPOOL_TARGET_TEST_ORACLE_USER"
PASSWORD_VAR = "SPOOL_TARGET_TEST_ORACLE_PASSWORD"
NAMES = (DSN_VAR, USER_VAR, PASSWORD_VAR)


class LiveOracle(NamedTuple):
    dsn: str
    user: str
    password: str

    def __str__(self) -> str:  # never the password
        return f"{self.user}@{self.dsn}"


def live_oracle(program: str, purpose: str, example: str) -> LiveOracle:
    """The configured server, or exit 2 saying which variables are missing and how to get a server.

    ``purpose`` completes "<program>: no database to <purpose>"; ``example`` is the
    arguments to show after ``scripts/oracle_live.sh --`` (how to run this very
    script against a container)."""
    values = {name: os.environ.get(name, "") for name in NAMES}
    missing = [name for name, value in values.items() if not value]
    if missing:
        print(
            f"{program}: no database to {purpose}. Set {DSN_VAR} (e.g. 127.0.0.1:1521/FREEPDB1), {USER_VAR} and "
            f"{PASSWORD_VAR} (unset: {', '.join(missing)}), or let Docker start Oracle and set them: "
            f"scripts/oracle_live.sh -- {example}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return LiveOracle(values[DSN_VAR], values[USER_VAR], values[PASSWORD_VAR])
