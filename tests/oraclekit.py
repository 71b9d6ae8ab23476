"""Loopback stand-ins for an Oracle listener, to get real python-oracledb errors without a server.

- a closed port: connection refused;
- ``SilentServer``: accepts the TCP connection, then never says a word (what a
  hung listener or a half-open firewall looks like);
- ``ClosingServer``: accepts and closes at once (a listener that died);
- ``TLSListener``: completes no TLS handshake a client would trust (self-signed);
- ``RefusingListener``: answers the connect packet with a TNS REFUSE carrying
  ORA-12514 ("service not registered"), as a listener does while the database
  is still starting.

Only 127.0.0.1 is used.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Server:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "_Server":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()
        for c in self.accepted:
            try:
                c.close()
            except OSError:
                pass

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            try:
                self.handle(conn)
            except OSError:
                pass

    def handle(self, conn: socket.socket) -> None:
        pass  # silent


class SilentServer(_Server):
    pass


class ClosingServer(_Server):
    def handle(self, conn: socket.socket) -> None:
        conn.close()


class RefusingListener(_Server):
    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        conn.recv(65536)  # the client's CONNECT packet
        data = b"(DESCRIPTION=(TMP=)(VSNNUM=0)(ERR=12514)(ERROR_STACK=(ERROR=(CODE=12514)(EMFI=4))))"
        body = bytes([0x22, 0x00]) + struct.pack(">H", len(data)) + data
        conn.sendall(struct.pack(">HHBBH", 8 + len(body), 0, 4, 0, 0) + body)  # packet type 4: REFUSE


class TLSListener(_Server):
    """Speaks TLS with a freshly made self-signed certificate that nobody trusts: what a
    TCPS listener looks like to a client without the right wallet (or a man in the middle)."""

    def __init__(self) -> None:
        import ssl
        import tempfile

        super().__init__()
        cert, key = _self_signed()
        self._dir = tempfile.TemporaryDirectory()
        cert_file, key_file = f"{self._dir.name}/cert.pem", f"{self._dir.name}/key.pem"
        open(cert_file, "wb").write(cert)
        open(key_file, "wb").write(key)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_file, key_file)

    def handle(self, conn: socket.socket) -> None:
        import ssl

        conn.settimeout(5)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)
        except (ssl.SSLError, OSError):
            pass  # the client gives up during the handshake: that is the point

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._dir.cleanup()


def _self_signed() -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "db.untrusted.invalid")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
