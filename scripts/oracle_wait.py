#!/usr/bin/env python3
"""Wait until the live test Oracle accepts a login, then exit 0 (1 on timeout, 2 when not configured).

    python scripts/oracle_wait.py [--timeout 300] [--interval 3]

Reads SPOOL_TARGET_TEST_ORACLE_DSN, _USER and _PASSWORD, like the live suite.
A container's health check is not enough: gvenzl/oracle-xe reports healthy as
soon as its pluggable database is open, before it has created APP_USER, so the
first logins fail with ORA-01017 for a while. scripts/oracle_live.sh and
.github/workflows/oracle.yml run this between "healthy" and the tests.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oracle_env import LiveOracle, live_oracle  # noqa: E402

try:
    import oracledb
except ImportError:  # otherwise every attempt would fail the same way until the timeout
    raise SystemExit("oracle_wait: python-oracledb is not installed for this Python; run: pip install -e '.[test]'")

PROGRAM = "oracle_wait"


def _attempt(db: LiveOracle, connect_timeout: float) -> str:
    """The server version after a login and a round trip; raises the driver's error otherwise."""
    with oracledb.connect(user=db.user, password=db.password, dsn=db.dsn, tcp_connect_timeout=connect_timeout) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM DUAL")
            cur.fetchall()
        return conn.version


def _one_line(error: BaseException) -> str:
    # Without the per-attempt CONNECTION_ID, a repeated error is printed once.
    return " ".join(re.sub(r"\s*\(CONNECTION_ID=[^)]*\)", "", str(error)).split())


def wait(db: LiveOracle, timeout: float, interval: float) -> int:
    start = time.monotonic()
    deadline = start + timeout
    last = ""
    while True:
        try:
            version = _attempt(db, connect_timeout=max(1.0, min(10.0, deadline - time.monotonic())))
        except Exception as error:  # every driver error means "not yet": the deadline decides
            text = _one_line(error)
            if text != last:
                print(f"{PROGRAM}: {db} not ready yet: {text}", file=sys.stderr, flush=True)
                last = text
        else:
            print(f"{PROGRAM}: logged in to {db} (Oracle {version}) after {time.monotonic() - start:.0f} s", flush=True)
            return 0
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print(
                f"{PROGRAM}: could not log in to {db} within {timeout:g} s; last error: {last}\n"
                "Is the database up (docker ps) and done initialising (docker logs shows "
                "'DATABASE IS READY TO USE!')? ORA-01017 means the user does not exist yet or its password is not "
                "the container's APP_USER_PASSWORD; ORA-12514 means the service name is wrong or not registered yet.",
                file=sys.stderr,
            )
            return 1
        time.sleep(min(interval, remaining))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=300, help="seconds to keep trying (default 300)")
    parser.add_argument("--interval", type=float, default=3, help="seconds between attempts (default 3)")
    args = parser.parse_args()
    db = live_oracle(PROGRAM, "wait for", "python scripts/oracle_wait.py")
    return wait(db, args.timeout, args.interval)


if __name__ == "__main__":
    sys.exit(main())
