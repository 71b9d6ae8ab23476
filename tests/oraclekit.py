"""Loopback stand-ins for an Oracle listener, to get real python-oracledb errors without a server.

- a closed port: connection refused;
- ``SilentServer``: accepts the TCP connection, then never says a word (what a
  hung listener or a half-open firewall looks like);
- ``ClosingServer``: accepts and closes at once (a listener that died);
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
