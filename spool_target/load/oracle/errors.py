"""Which Oracle errors are worth retrying, and what to tell a person about the others.

One place decides, by error code (``exc.args[0].full_code``: ``ORA-00060``,
``DPY-4011``...), never by message text. Transient errors go to the engine's
backoff and reconnect; permanent ones stop the load at once with advice.
Whatever the error, the loader rolls back the unit's transaction: nothing is half-loaded.
(Oracle itself rolls back only the failed statement, e.g. for a deadlock, ORA-00060.)

A connection lost around COMMIT is transient like any other lost
connection: the engine reconnects and reads the ledger, which says whether
the commit happened (the unit's ledger rows are in the same transaction).

``oracledb`` is never imported here: if it was not imported by now, the
exception cannot be one of its errors.
"""

from __future__ import annotations

import socket
import ssl
import sys

from ..destination import Failure, FailureKind

GRANTS_HINT = (
    "the loading user needs CREATE SESSION, CREATE TABLE and a tablespace quota in its own schema; "
    "for another target_schema: CREATE ANY TABLE, ALTER ANY TABLE, DROP ANY TABLE, SELECT/INSERT/UPDATE/DELETE "
    "ANY TABLE (or grants on each table). `spool-target check` lists what is missing"
)

# Errors that go away by themselves: the server or network is down, restarting,
# busy, or a lock is held. Thin mode reports most lost connections as DPY-4011,
# which also covers ORA-00028, 01012, 03113, 03114, 03135, 12537, 12547, 12570...
TRANSIENT: dict[str, str] = {
    "DPY-4011": "the database or network closed the connection",
    "DPY-4024": "a call exceeded call_timeout",
    "DPY-4033": "the session exceeded its idle time",
    "DPY-6000": "the listener refused the connection",
    "DPY-6001": "the listener does not know the service: the database may still be starting, or the service name "
    "is misspelt (check service_name or the DSN; `lsnrctl services` on the server lists them)",
    "DPY-6003": "the SID is not registered with the listener (yet)",
    "DPY-6004": "the proxy failed",
    "DPY-6005": "cannot connect (refused, unreachable, timed out or no answer)",  # TLS and DNS causes: see classify
    "DPI-1080": "the connection was closed",
    "ORA-00018": "maximum number of sessions exceeded",
    "ORA-00020": "maximum number of processes exceeded",
    "ORA-00028": "the session was killed",
    "ORA-00051": "timeout waiting for a resource",
    "ORA-00054": "resource busy (a lock is held)",
    "ORA-00060": "deadlock detected (Oracle rolled back the one statement; the loader rolls back the unit and retries it)",
    "ORA-00104": "deadlock on shared servers",
    "ORA-00257": "the archiver is stuck",
    "ORA-01012": "not logged on",
    "ORA-01013": "the call was cancelled (call_timeout)",
    "ORA-01033": "the database is starting up or shutting down",
    "ORA-01034": "the database is not available",
    "ORA-01089": "immediate shutdown in progress",
    "ORA-01090": "shutdown in progress",
    "ORA-03113": "end-of-file on the communication channel",
    "ORA-03114": "not connected",
    "ORA-03135": "connection lost contact",
    "ORA-04021": "timeout waiting to lock an object",
    "ORA-08177": "cannot serialize access",
    "ORA-12170": "connect timeout",
    "ORA-12500": "the listener could not start a server process",
    "ORA-12505": "the SID is not registered with the listener (yet)",
    "ORA-12514": "the listener does not know the service: the database may still be starting, or the service name "
    "is misspelt (check service_name or the DSN)",
    "ORA-12516": "the listener has no handler available",
    "ORA-12518": "the listener could not hand off the connection",
    "ORA-12519": "the listener has no handler available",
    "ORA-12520": "the listener has no handler available",
    "ORA-12521": "the instance is not registered with the listener (yet)",
    "ORA-12526": "the database is in restricted mode",
    "ORA-12528": "the listener blocks new connections (the database is starting)",
    "ORA-12537": "the connection was closed",
    "ORA-12541": "no listener",
    "ORA-12543": "the host is unreachable",
    "ORA-12547": "lost contact",
    "ORA-12570": "packet reader failure",
    "ORA-12571": "packet writer failure",
    "ORA-25402": "the transaction must roll back (failover)",
    "ORA-25408": "the call cannot be safely replayed (failover)",
    "ORA-30006": "resource busy (WAIT timeout expired)",
}

# Permanent errors with specific advice.
ADVICE: dict[str, str] = {
    "ORA-01017": "check user and password (set the password in SPOOL_TARGET_ORACLE_PASSWORD, not in a file); "
    "repeated failures may also lock the account",
    "ORA-28000": "the account is locked: ask a DBA to run ALTER USER <user> ACCOUNT UNLOCK",
    "ORA-28001": "the password has expired: change it, then update SPOOL_TARGET_ORACLE_PASSWORD",
    "ORA-01045": "the user lacks CREATE SESSION: GRANT CREATE SESSION TO <user>",
    "ORA-01031": "insufficient privileges: " + GRANTS_HINT,
    "ORA-01950": "no quota on the tablespace: ask a DBA for ALTER USER <owner> QUOTA UNLIMITED ON <tablespace> "
    "(or a size), for the owner of the target schema",
    "ORA-01536": "the space quota on the tablespace is used up: ask a DBA to raise it (ALTER USER ... QUOTA)",
    "ORA-01652": "the temporary tablespace is full: ask a DBA to add space, or lower transaction_rows",
    "ORA-01653": "the tablespace is full: ask a DBA to add space",
    "ORA-01654": "the tablespace is full: ask a DBA to add space",
    "ORA-01688": "the tablespace is full: ask a DBA to add space",
    "ORA-00942": "a table or view does not exist or is not granted to this user: check target_schema, "
    "table_mappings and the grants; `spool-target check` shows what the user can see",
    "ORA-04043": "an object does not exist: check target_schema and table_mappings",
    "ORA-01918": "the user (schema) named by target_schema does not exist",
    "ORA-00904": "a column is not what spool-target expects (renamed or dropped by hand?): "
    "`spool-target plan` shows the statements it wants to run",
    "ORA-00001": "a unique constraint refused a row: the stream repeats a key that the table declares unique; "
    "use load_method upsert, or drop the constraint for append-only loads",
    "ORA-01400": "a NOT NULL column got NULL (Oracle stores '' as NULL): relax the constraint, "
    "or send a value",
    "ORA-12899": "a value is longer than its column: raise varchar_length, or map the property to CLOB "
    'with column_types {"<stream>": {"<property>": "CLOB"}}',
    "ORA-01438": "a number is larger than its column allows: map it to NUMBER with column_types",
    "ORA-01461": "a long text was bound into a VARCHAR2 column: map the property to CLOB with column_types",
    "ORA-30926": "the MERGE source held one key twice (please report this: the loader deduplicates by key)",
    "ORA-02290": "a CHECK constraint refused a value (a boolean outside 0/1, or text that is not JSON)",
    "ORA-40441": "a value in a JSON column is not valid JSON",
    "ORA-00910": "a VARCHAR2 length is above the server's limit: lower varchar_length or use CLOB",
    "ORA-01450": "the key columns are too long for one index entry (6,398 bytes on an 8K block): give the key "
    "properties a maxLength, or set their types with column_types (the README's Oracle section says how much fits)",
    "ORA-02329": "a TIME ZONE column cannot be in a primary key: map the key property to TIMESTAMP(6) "
    "with column_types (spool-target stores UTC there)",
    "ORA-00932": "Oracle cannot compare these types (a CLOB key, or a DATE where a TIMESTAMP is needed): "
    "give key properties a maxLength, or set their types with column_types",
    "ORA-01792": "a table may have at most 1,000 columns: map the stream to fewer columns (column_mappings cannot merge "
    "them), or split the stream in the tap",
    # load_strategy object-storage: DBMS_CLOUD raises ORA-20003..20014 for its own exceptions
    # (ORA-20004: credential_not_exist), ORA-204xx for the object store's HTTP answer; the
    # network ACL (ORA-24247) and the TLS wallet (ORA-29024) are the DBA's set-up.
    "ORA-20004": "the DBMS_CLOUD credential named by cloud_credential does not exist for this user: "
    "create it with DBMS_CLOUD.CREATE_CREDENTIAL (README: object-storage); `spool-target check` shows it",
    "ORA-20401": "the object store refused the credential (HTTP 401/403): check the keys stored in the credential "
    "named by cloud_credential, and its rights on the bucket",
    "ORA-20404": "the object store has no such object: check object_storage_url (the spool's bucket and prefix)",
    "ORA-24247": "the database may not connect to the object store's host: a DBA must allow it with "
    "DBMS_NETWORK_ACL_ADMIN.APPEND_HOST_ACE (README: object-storage)",
    "ORA-39726": "the table is compressed (basic compression allows no DROP COLUMN): a DBA can "
    "ALTER TABLE ... MOVE NOCOMPRESS, or set the old column unused",
    "DPY-3039": "python-oracledb cannot load this Arrow type into this column with direct path: "
    "set load_strategy: insert, and please report it",
    "DPY-4041": "a direct path message grew past 1 GiB: lower batch_rows, and please report it",
    "DPY-8000": "a value is longer than its column: raise varchar_length, or map the property to CLOB with column_types",
    "ORA-00972": "an identifier is too long for this server: see the naming rules in the README's Oracle section",
    "DPY-3010": "python-oracledb thin mode cannot talk to this old a server: set thick_mode: true "
    "(needs Oracle Client libraries)",
    "DPY-3015": "the account's password verifier is too old for thin mode: reset the password, "
    "or set thick_mode: true",
    "DPY-4000": "the TNS alias was not found: check dsn and config_dir (the directory of tnsnames.ora)",
    "DPY-4026": "a file python-oracledb needs is missing: check config_dir and wallet_location",
    "DPY-4027": "no config_dir: set config_dir (the directory of tnsnames.ora) to use a TNS alias",
    "DPY-6002": "the server's certificate does not match: check the DSN's ssl_server_cert_dn",
    "DPY-6006": "the server's certificate name does not match the host: check the host name",
    "DPI-1047": "the Oracle Client libraries were not found: install Instant Client and set "
    "oracle_client_lib_dir, or set thick_mode: false",
    "ORA-28759": "the wallet could not be opened: check wallet_location",
    # One code, two places it comes from: connecting (the client's wallet), or DBMS_CLOUD reaching the
    # object store (the database's wallet). One entry: a second key would silently replace the first.
    "ORA-29024": "a certificate could not be validated. Connecting: check the wallet's trusted certificates "
    "(wallet_location). During a load_strategy object-storage load: the database does not trust the object "
    "store's TLS certificate, and a DBA must add its CA to the wallet DBMS_CLOUD uses (My Oracle Support Doc ID "
    "2748362.1)",
}

DEFAULT_HINT = "Oracle refused the work; the loader rolled its transaction back, so nothing was half-loaded"


class OracleConnectTimeout(Exception):
    """A connection attempt took longer than ``connect_timeout`` (a server that accepts
    the TCP connection but never completes the handshake, which ``tcp_connect_timeout``
    does not bound). Not an OSError on purpose: the driver treats socket timeouts
    (``TimeoutError``) during its reads as "keep waiting"."""


def error_code(exc: BaseException) -> str | None:
    """``ORA-00060``, ``DPY-4011``...: the code of an oracledb error, else None."""
    args = getattr(exc, "args", ())
    info = args[0] if args else None
    code = getattr(info, "full_code", None)
    return code or None


def _is_oracledb_error(exc: BaseException) -> bool:
    oracledb = sys.modules.get("oracledb")
    return oracledb is not None and isinstance(exc, oracledb.Error)


def error_codes(exc: BaseException) -> list[str]:
    """The codes of an error and of the errors it wraps, outermost first: the thin
    driver reports a failed connect as DPY-6005 around the reason (DPY-6001,
    DPY-4011, DPY-3010...)."""
    codes: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = error_code(cur)
        if code:
            codes.append(code)
        cur = cur.__cause__ or cur.__context__
    return codes


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


# getaddrinfo's "try again later" (a resolver that is down) passes; the others say the name is wrong.
_DNS_TRANSIENT = {getattr(socket, "EAI_AGAIN", -3)}


def _connect_cause(exc: BaseException) -> Failure | None:
    """What wraps a failed connect decides (thin mode raises DPY-6005 around the OSError:
    ``ThinConnImpl._connect_with_address``): a certificate or a host name that does not
    resolve will not get better by waiting."""
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Failure(FailureKind.PERMANENT, "the server's TLS certificate was not accepted "
                           f"({cause.verify_message or cause.reason}): check wallet_location (the CA that signed it) "
                           "and the DSN's ssl_server_cert_dn")
        if isinstance(cause, ssl.SSLError):
            return Failure(FailureKind.PERMANENT, f"the TLS handshake failed ({cause.reason or cause}): "
                           "check that the port speaks TCPS and wallet_location")
        if isinstance(cause, socket.gaierror) and cause.errno not in _DNS_TRANSIENT:
            return Failure(FailureKind.PERMANENT, f"the host name does not resolve ({cause.strerror}): "
                           "check host or the DSN")
    return None


def classify(exc: BaseException) -> Failure | None:
    """Transient (retry), permanent (advice) or None: not an Oracle error at all (a bug)."""
    if isinstance(exc, OracleConnectTimeout):
        return Failure(FailureKind.TRANSIENT, "the server accepted the connection but did not answer")
    if not _is_oracledb_error(exc):
        return None
    cause = _connect_cause(exc)
    if cause is not None:
        return cause
    codes = error_codes(exc)
    # A specific reason inside a generic wrapper decides: DPY-6005 around DPY-3010 is permanent.
    for code in codes:
        if code in ADVICE:
            return Failure(FailureKind.PERMANENT, ADVICE[code])
    for code in reversed(codes):  # the innermost reason says most
        if code in TRANSIENT:
            return Failure(FailureKind.TRANSIENT, TRANSIENT[code])
    info = exc.args[0] if exc.args else None
    if getattr(info, "isrecoverable", False):
        return Failure(FailureKind.TRANSIENT, "the driver marks this error recoverable")
    return Failure(FailureKind.PERMANENT, DEFAULT_HINT)
