"""Configuration -> one python-oracledb connection, bounded in time; what the server can do.

Where to connect, first match wins:

1. ``destination: oracle://user@host:port/service_name`` (URL or --destination);
2. ``dsn``: an Easy Connect string (``host:1521/FREEPDB1``,
   ``tcps://host:2484/svc?ssl_server_cert_dn=...``) or a TNS alias looked up
   in ``config_dir``/tnsnames.ora;
3. ``host``, ``port`` and ``service_name`` (or ``sid``).

``user`` comes from the URL or the ``user`` setting; the password from
``SPOOL_TARGET_ORACLE_PASSWORD`` (or ``password`` in a config file). It is
passed to the driver and nowhere else: it is not part of the label, the
DSN or any message (I7).

Thin mode is the default (pure Python, no Oracle Client); ``thick_mode:
true`` loads the Oracle Client libraries (``oracle_client_lib_dir``) once
per process.

``tcp_connect_timeout`` only bounds the TCP handshake: a server that accepts
the connection and then says nothing would hang the driver for ever
(python-oracledb #451). So every attempt also runs under ``connect_timeout``:
a SIGALRM in the main thread (the driver's socket read is interrupted and
closed), or a worker thread elsewhere.

``oracledb`` is imported inside functions only, so nothing outside ``load``,
``check`` and ``plan`` (online) ever loads it (I3). The queries run through a
``session.DriverSession``, which also runs the session set-up at every connect.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ...errors import ConfigError, DestinationError
from ..destination import DestinationSpec
from ..options import OracleOptions
from .errors import OracleConnectTimeout, error_code
from .types import STANDARD_STRING_BYTES, EXTENDED_STRING_BYTES, ServerFeatures

T = TypeVar("T")


@dataclass(frozen=True)
class ConnectSettings:
    user: str
    label: str  # oracle://user@where, for messages; never holds a secret
    dsn: str | None = None
    host: str | None = None
    port: int = 1521
    service_name: str | None = None
    sid: str | None = None
    config_dir: str | None = None
    wallet_location: str | None = None
    thick_mode: bool = False
    lib_dir: str | None = None
    tcp_connect_timeout: float = 10.0
    connect_timeout: float = 30.0
    expire_time: int = 2
    call_timeout_ms: int = 0
    target_schema: str | None = None
    password: str = field(default="", repr=False)
    wallet_password: str = field(default="", repr=False)

    def connect_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "user": self.user,
            "password": self.password,
            "tcp_connect_timeout": self.tcp_connect_timeout,
            "expire_time": self.expire_time,
        }
        if self.dsn:
            kw["dsn"] = self.dsn
        else:
            kw["host"], kw["port"] = self.host, self.port
            if self.sid and not self.service_name:
                kw["sid"] = self.sid
            else:
                kw["service_name"] = self.service_name
        if self.config_dir:
            kw["config_dir"] = self.config_dir
        if self.wallet_location:
            kw["wallet_location"] = self.wallet_location
        if self.wallet_password:
            kw["wallet_password"] = self.wallet_password
        return kw


def _dsn_label(dsn: str) -> str:
    """Where a DSN points, for messages: Easy Connect options after '?' may carry
    wallet details, and an old-style ``user/password@host/svc`` string carries
    the password, so both stay out of labels."""
    where = dsn.split("?", 1)[0]
    if not where.lstrip().startswith("("):  # a full descriptor has no credentials prefix
        where = where.rpartition("@")[2]
    return where


def settings_from(spec: DestinationSpec, options: OracleOptions) -> ConnectSettings:
    """Resolve where and as whom to connect from a DestinationSpec and the Oracle options."""
    user = (spec.user or options.user).strip()
    common: dict[str, Any] = dict(
        config_dir=options.config_dir or None,
        wallet_location=options.wallet_location or None,
        thick_mode=options.thick_mode,
        lib_dir=options.oracle_client_lib_dir or None,
        tcp_connect_timeout=options.tcp_connect_timeout,
        connect_timeout=options.connect_timeout,
        expire_time=options.expire_time,
        call_timeout_ms=options.call_timeout,
        target_schema=options.target_schema.strip() or None,
        password=options.password,
        wallet_password=options.wallet_password,
    )
    if spec.host:
        port = spec.port or 1521
        where = f"{spec.host}:{port}/{spec.service}" if spec.service else f"{spec.host}:{port}"
        if not spec.service and not (options.service_name or options.sid):
            raise ConfigError(
                f"destination oracle://{user + '@' if user else ''}{where} names no service",
                hint="oracle://user@host:1521/SERVICE_NAME (e.g. FREEPDB1), or set service_name / sid",
            )
        settings = ConnectSettings(
            user=user, label=f"oracle://{user}@{where}", host=spec.host, port=port,
            service_name=spec.service or options.service_name or None, sid=options.sid or None, **common,
        )
    elif options.dsn:
        settings = ConnectSettings(user=user, label=f"oracle://{user}@{_dsn_label(options.dsn)}", dsn=options.dsn, **common)
    elif options.host:
        if not (options.service_name or options.sid):
            raise ConfigError("Oracle host is set but neither service_name nor sid", hint="set service_name (e.g. FREEPDB1)")
        name = options.service_name or options.sid
        settings = ConnectSettings(
            user=user, label=f"oracle://{user}@{options.host}:{options.port}/{name}", host=options.host,
            port=options.port, service_name=options.service_name or None, sid=options.sid or None, **common,
        )
    else:
        raise ConfigError(
            "no Oracle database configured",
            hint="set destination: oracle://user@host:1521/service_name, or dsn, or host + service_name",
        )
    if not user:
        raise ConfigError(f"no Oracle user for {settings.label}", hint="oracle://USER@host:port/service, or the `user` setting")
    if not settings.password:
        raise ConfigError(
            f"no password for {settings.label}",
            hint="export SPOOL_TARGET_ORACLE_PASSWORD=... (keeps it out of files and shell history)",
        )
    if settings.connect_timeout <= 0:
        raise ConfigError("connect_timeout must be more than 0 seconds")
    return settings


# ---- connecting -----------------------------------------------------------------
_thick_lock = threading.Lock()
_thick_done = False


def init_thick_mode(lib_dir: str | None) -> None:
    global _thick_done
    import oracledb

    with _thick_lock:
        if _thick_done:
            return
        try:
            oracledb.init_oracle_client(lib_dir=lib_dir)
        except oracledb.Error as err:
            raise DestinationError(
                f"thick mode: cannot load the Oracle Client libraries: {str(err).splitlines()[0]}",
                hint="install Oracle Instant Client and set oracle_client_lib_dir, or set thick_mode: false",
            ) from err
        _thick_done = True


def call_with_deadline(fn: Callable[[], T], seconds: float, what: str) -> T:
    """``fn()``, or OracleConnectTimeout after ``seconds``."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _with_alarm(fn, seconds, what)
    return _with_thread(fn, seconds, what)


def _with_alarm(fn: Callable[[], T], seconds: float, what: str) -> T:
    armed = True

    def on_alarm(signum: int, frame: Any) -> None:
        if armed:
            raise OracleConnectTimeout(f"{what}: no answer within {seconds:g}s (connect_timeout)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        result = fn()
        armed = False
        return result
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _with_thread(fn: Callable[[], T], seconds: float, what: str) -> T:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=run, name="oracle-connect", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        # The attempt cannot be cancelled from here; it ends when the server
        # answers or closes, and a late connection is closed then.
        def reap() -> None:
            worker.join()
            conn = box.get("result")
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass

        threading.Thread(target=reap, name="oracle-connect-reaper", daemon=True).start()
        raise OracleConnectTimeout(f"{what}: no answer within {seconds:g}s (connect_timeout)")
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result


def open_connection(settings: ConnectSettings) -> Any:
    """A new connection (autocommit off), or the driver's error: the caller classifies it."""
    import oracledb

    if settings.thick_mode:
        init_thick_mode(settings.lib_dir)
    kwargs = settings.connect_kwargs()
    conn = call_with_deadline(lambda: oracledb.connect(**kwargs), settings.connect_timeout, f"connecting to {settings.label}")
    try:
        conn.autocommit = False
        if settings.call_timeout_ms > 0:
            conn.call_timeout = settings.call_timeout_ms
        conn.module = "spool-target"
    except Exception:
        conn.close()
        raise
    return conn


# ---- what the server can do ---------------------------------------------------------
NOT_VISIBLE = ("ORA-00942", "ORA-01031", "ORA-00904", "ORA-06550")  # no such view, not granted, no such column/package


def _scalar(session: Any, sql: str) -> Any:
    rows = session.query(sql)
    return rows[0][0] if rows else None


def _try(session: Any, fn: Callable[[], T]) -> T | None:
    import oracledb

    try:
        return fn()
    except oracledb.DatabaseError as err:
        if error_code(err) in NOT_VISIBLE:
            return None  # something this user may not read: the caller falls back
        raise  # anything else (a lost connection...) is the caller's to classify


def detect_features(session: Any) -> ServerFeatures:
    """Ask the server once per connection; every probe works without special privileges.

    COMPATIBLE comes from ``DBMS_UTILITY.DB_VERSION`` (executable by every user), not
    from V$PARAMETER, which most users cannot read: guessing it from the version would
    create JSON columns on a 21c server still at COMPATIBLE 19.
    """
    import oracledb

    try:
        _scalar(session, "SELECT CAST(NULL AS VARCHAR2(32767)) FROM DUAL")
        extended = True
    except oracledb.DatabaseError as err:
        if error_code(err) != "ORA-00910":  # specified length too long: MAX_STRING_SIZE = STANDARD
            raise
        extended = False
    db_version = _try(session, session.db_version) or (None, None)
    return features_from_probes(
        session.server_version,
        extended_strings=extended,
        compatible=db_version[1],
        max_identifier_length=session.max_identifier_length,
        banner=_try(session, lambda: _scalar(session, "SELECT BANNER FROM V$VERSION WHERE ROWNUM = 1")),
        charset=_try(session, lambda: _scalar(
            session, "SELECT VALUE FROM NLS_DATABASE_PARAMETERS WHERE PARAMETER = 'NLS_CHARACTERSET'")),
        current_schema=_scalar(session, "SELECT SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA') FROM DUAL"),
    )


def features_from_probes(
    version_text: str,
    *,
    extended_strings: bool,
    compatible: Any = None,
    max_identifier_length: int = 0,
    banner: Any = None,
    charset: Any = None,
    current_schema: Any = None,
) -> ServerFeatures:
    """What the server can do, from its version string and the probes' answers (None: not visible).

    JSON columns need 21c at COMPATIBLE 20+, BOOLEAN 23ai at COMPATIBLE 23+, scalars in
    IS JSON COMPATIBLE 20+. A COMPATIBLE nobody could read counts as the lowest the
    server allows (19 from 21c on, else the version's own), so no column type is created
    that the server might refuse. A driver that does not report ``max_identifier_length``
    (0) gets 128 from 12.2 on, else 30.
    """
    version = tuple(int(p) for p in str(version_text).split(".") if p.isdigit())
    if not compatible:
        compatible = "19.0.0" if version[0] >= 21 else f"{version[0]}.0.0"
    return ServerFeatures.from_version(
        version,
        compatible=str(compatible),
        max_identifier_length=max_identifier_length or (128 if version[:2] >= (12, 2) else 30),
        max_string_bytes=EXTENDED_STRING_BYTES if extended_strings else STANDARD_STRING_BYTES,
        banner=banner,
        charset=charset,
        current_schema=current_schema,
    )
