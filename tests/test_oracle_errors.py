"""Error classification with real python-oracledb exceptions.

Connection errors come from the real thin driver talking to loopback stand-ins
(tests/oraclekit.py). Server errors (ORA-...) cannot be produced without a
server, so they are built by the driver's own error machinery
(``driver_errors._Error``, which also remaps ORA-03113 and friends to
DPY-4011 and sets ``isrecoverable``) and raised as the driver raises them.
"""

from __future__ import annotations

import os
import socket
import time

import oracledb
from oracledb import errors as driver_errors
import pytest

from oraclekit import ClosingServer, RefusingListener, SilentServer, free_port
from spool_target.load.destination import FailureKind
from spool_target.load.oracle.connect import ConnectSettings, call_with_deadline, open_connection
from spool_target.load.oracle.errors import OracleConnectTimeout, classify, error_code, error_codes

PASSWORD = "Pw-for-errors-4711"


def settings(port: int, **kw) -> ConnectSettings:
    return ConnectSettings(user="scott", label=f"oracle://scott@127.0.0.1:{port}/FREEPDB1", host="127.0.0.1", port=port,
                           service_name="FREEPDB1", password=PASSWORD, tcp_connect_timeout=2, **kw)


def connect_error(port: int, **kw) -> BaseException:
    with pytest.raises(Exception) as info:
        open_connection(settings(port, **kw))
    return info.value


def test_closed_port_is_transient():
    err = connect_error(free_port())
    assert isinstance(err, oracledb.OperationalError) and error_code(err) == "DPY-6005"
    assert classify(err).kind is FailureKind.TRANSIENT
    assert PASSWORD not in str(err)


def test_listener_that_closes_the_connection_is_transient():
    with ClosingServer() as srv:
        err = connect_error(srv.port)
    assert error_codes(err)[0] == "DPY-6005" and "DPY-4011" in str(err)
    assert classify(err).kind is FailureKind.TRANSIENT


def test_service_not_registered_is_transient_with_the_specific_reason():
    with RefusingListener() as srv:
        err = connect_error(srv.port)
    assert error_codes(err) == ["DPY-6005", "DPY-6001"]  # the wrapper, then the reason
    failure = classify(err)
    # a database still starting and a misspelt service look the same: transient, and the hint names both
    assert failure.kind is FailureKind.TRANSIENT and failure.hint.startswith(
        "the listener does not know the service: the database may still be starting, or the service name is misspelt")


@pytest.mark.parametrize("threaded", [False, True], ids=["main-thread", "worker-thread"])
def test_a_server_that_never_answers_is_bounded_by_connect_timeout(threaded: bool):
    import threading

    with SilentServer() as srv:
        started = time.monotonic()
        if threaded:
            box: dict = {}

            def run() -> None:
                try:
                    open_connection(settings(srv.port, connect_timeout=0.5))
                except Exception as exc:
                    box["err"] = exc

            t = threading.Thread(target=run)
            t.start()
            t.join(10)
            err = box["err"]
        else:
            err = connect_error(srv.port, connect_timeout=0.5)
        elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed  # without the deadline the driver waits for ever (python-oracledb #451)
    assert isinstance(err, (OracleConnectTimeout, oracledb.OperationalError))
    assert classify(err).kind is FailureKind.TRANSIENT


def test_call_with_deadline_passes_results_and_errors_through():
    assert call_with_deadline(lambda: 42, 1, "x") == 42
    with pytest.raises(ZeroDivisionError):
        call_with_deadline(lambda: 1 / 0, 1, "x")


def server_error(code: int, text: str) -> oracledb.Error:
    """An ORA error as the driver raises it for a server's error packet."""
    err = driver_errors._Error(f"ORA-{code:05d}: {text}", code=code)
    return err.exc_type(err)


@pytest.mark.parametrize(
    "code,text,full_code",
    [
        (60, "deadlock detected while waiting for resource", "ORA-00060"),
        (54, "resource busy and acquire with NOWAIT specified or timeout expired", "ORA-00054"),
        (3113, "end-of-file on communication channel", "DPY-4011"),  # remapped by the driver
        (3135, "connection lost contact", "DPY-4011"),
        (1033, "ORACLE initialization or shutdown in progress", "ORA-01033"),
        (1089, "immediate shutdown or close in progress", "DPY-4011"),
        (12514, "Service x is not registered with the listener", "ORA-12514"),
        (30006, "resource busy; acquire with WAIT timeout expired", "ORA-30006"),
        (4021, "timeout occurred while waiting to lock object", "ORA-04021"),
    ],
)
def test_transient_server_errors(code: int, text: str, full_code: str):
    err = server_error(code, text)
    assert error_code(err) == full_code
    assert classify(err).kind is FailureKind.TRANSIENT


@pytest.mark.parametrize(
    "code,advice",
    [
        (1017, "check user and password (set the password in SPOOL_TARGET_ORACLE_PASSWORD"),
        (1031, "insufficient privileges: the loading user needs CREATE SESSION, CREATE TABLE"),
        (1950, "no quota on the tablespace: ask a DBA for ALTER USER <owner> QUOTA UNLIMITED ON <tablespace>"),
        (942, "a table or view does not exist or is not granted to this user"),
        (28000, "the account is locked"),
        (1, "a unique constraint refused a row"),
        (12899, "a value is longer than its column"),
        (20001, "Oracle refused the work; the loader rolled its transaction back"),  # unknown: permanent, generic
    ],
)
def test_permanent_server_errors_fail_fast_with_advice(code: int, advice: str):
    failure = classify(server_error(code, "message text is never looked at"))
    assert failure.kind is FailureKind.PERMANENT and failure.hint.startswith(advice)


def test_a_certificate_error_advises_for_both_places_it_comes_from():
    """ORA-29024 is raised when connecting (the client's wallet) and by DBMS_CLOUD reaching the
    object store (the database's wallet); its advice names both. It was once two dict keys,
    and the second silently replaced the first."""
    import ast
    from pathlib import Path

    import spool_target.load.oracle.errors as errors_module

    hint = classify(server_error(29024, "certificate validation failure")).hint
    assert "wallet_location" in hint and "DBMS_CLOUD" in hint
    tree = ast.parse(Path(errors_module.__file__).read_text())
    (advice,) = [n.value for n in ast.walk(tree) if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "ADVICE"]
    keys = [k.value for k in advice.keys]  # type: ignore[union-attr]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_driver_errors_and_their_causes():
    timeout = driver_errors._create_exception(driver_errors.ERR_CALL_TIMEOUT_EXCEEDED, timeout=5000)
    assert error_code(timeout) == "DPY-4024" and classify(timeout).kind is FailureKind.TRANSIENT
    # a too-old server inside the generic "cannot connect": the reason decides
    old = driver_errors._create_exception(driver_errors.ERR_SERVER_VERSION_NOT_SUPPORTED)
    wrapped = driver_errors._create_exception(driver_errors.ERR_CONNECTION_FAILED, cause=old, connection_id="x")
    assert error_codes(wrapped) == ["DPY-6005", "DPY-3010"]
    failure = classify(wrapped)
    assert failure.kind is FailureKind.PERMANENT and "thick_mode: true" in failure.hint
    assert classify(ValueError("not a database error")) is None
    assert classify(OracleConnectTimeout("x")).kind is FailureKind.TRANSIENT


def test_an_untrusted_tls_certificate_is_permanent():
    """DPY-6005 wraps every failed connect (ThinConnImpl._connect_with_address), a certificate the
    client does not trust included: no retry fixes that, so the load stops at once with advice."""
    import ssl

    from oraclekit import TLSListener

    with TLSListener() as srv:
        s = ConnectSettings(user="scott", label="x", dsn=f"tcps://127.0.0.1:{srv.port}/FREEPDB1", password=PASSWORD,
                            tcp_connect_timeout=2, connect_timeout=10)
        with pytest.raises(oracledb.Error) as info:
            open_connection(s)
    err = info.value
    assert error_codes(err)[0] == "DPY-6005"
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(err))  # the real driver's cause
    failure = classify(err)
    assert failure.kind is FailureKind.PERMANENT
    assert failure.hint.startswith("the server's TLS certificate was not accepted (") and "wallet_location" in failure.hint


def _causes(exc: BaseException) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


@pytest.mark.parametrize("errno,kind", [
    (socket.EAI_NONAME, FailureKind.PERMANENT),  # "Name or service not known": a typo, no retry helps
    (socket.EAI_AGAIN, FailureKind.TRANSIENT),  # "Temporary failure in name resolution": the resolver is down
])
def test_a_host_name_that_does_not_resolve_is_permanent_unless_the_resolver_says_try_again(errno: int, kind: FailureKind):
    """The thin driver wraps socket.gaierror in DPY-6005 (connection.pyx catches it explicitly); the
    error is built by the driver's own machinery, as for a connect."""
    cause = socket.gaierror(errno, os.strerror(errno) if errno > 0 else "name resolution failed")
    err = driver_errors._create_exception(driver_errors.ERR_CONNECTION_FAILED, cause=cause, connection_id="x")
    assert error_codes(err) == ["DPY-6005"]
    failure = classify(err)
    assert failure.kind is kind
    if kind is FailureKind.PERMANENT:
        assert failure.hint.startswith("the host name does not resolve") and "check host or the DSN" in failure.hint


def test_deadlock_advice_says_only_the_statement_was_rolled_back():
    """ORA-00060: Oracle rolls back the statement that detected the deadlock, not the transaction
    (Database Concepts, "Deadlocks"); the loader then rolls back the unit itself and retries."""
    failure = classify(server_error(60, "deadlock detected while waiting for resource"))
    assert failure.kind is FailureKind.TRANSIENT
    assert failure.hint == "deadlock detected (Oracle rolled back the one statement; the loader rolls back the unit and retries it)"


@pytest.mark.parametrize("code,advice", [
    (1450, "the key columns are too long for one index entry (6,398 bytes on an 8K block)"),
    (2329, "a TIME ZONE column cannot be in a primary key"),
    (1792, "a table may have at most 1,000 columns"),
    (39726, "the table is compressed (basic compression allows no DROP COLUMN)"),
    (932, "Oracle cannot compare these types (a CLOB key, or a DATE where a TIMESTAMP is needed)"),
])
def test_schema_limits_have_advice(code: int, advice: str):
    failure = classify(server_error(code, "text is never looked at"))
    assert failure.kind is FailureKind.PERMANENT and failure.hint.startswith(advice)
