"""Real object-store servers for the storage tests, started and stopped here.

- S3: moto's ``ThreadedMotoServer`` (the S3 HTTP API, ``If-None-Match: *``
  and ``If-Match`` on PUT included) in this process, on a free loopback port.
- S3 with authentication: the same moto as a subprocess with
  ``INITIAL_NO_AUTH_ACTION_COUNT=0``, so unknown access keys get a real 403
  (the setting is process-wide, so it cannot share the in-process server).
- Azure: Azurite's blob service (npm ``azurite``, installed by ``.ci/run``
  into ``tests/.azurite``), in memory, on a free loopback port.
- ``FaultProxy``: a loopback HTTP proxy in front of moto that answers the
  first N requests with 503 SlowDown, as S3 throttles.
- ``dead_port``: a loopback port nothing listens on (connection refused).
"""

from __future__ import annotations

import http.client
import http.server
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

AZURITE_DIR = Path(__file__).parent / ".azurite"
AZURITE_BIN = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
AZURITE_VERSION = "3.37.0"
# Azurite's well-known development account: public, documented by Microsoft.
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
S3_KEY_ID, S3_SECRET = "AKIASTORAGETEST", "storage-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_port() -> int:
    """A port that was just free: connecting to it is refused."""
    return free_port()


def wait_for_port(port: int, proc: subprocess.Popen | None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- S3 (moto) -----------------------------------------------------------------


class MotoS3:
    def __init__(self, endpoint: str):
        import boto3

        self.endpoint = endpoint
        self.client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY_ID,
                                   aws_secret_access_key=S3_SECRET, region_name="us-east-1")

    def new_bucket(self) -> str:
        name = f"spool-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def options(self, **extra: object) -> dict[str, object]:
        return {"endpoint": self.endpoint, "access_key_id": S3_KEY_ID, "secret_access_key": S3_SECRET,
                "region": "us-east-1", **extra}

    def pending_uploads(self, bucket: str) -> list[str]:
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoS3(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_s3_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 endpoint that checks access keys (none exist, so every key is wrong)."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    log = open(tmp_path_factory.mktemp("moto-auth") / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


# -- Azure (Azurite) -----------------------------------------------------------


class Azurite:
    def __init__(self, endpoint: str):
        from azure.storage.blob import BlobServiceClient

        self.endpoint = endpoint
        self.service = BlobServiceClient(account_url=endpoint,
                                         credential={"account_name": AZ_ACCOUNT, "account_key": AZ_KEY})

    def new_container(self) -> str:
        name = f"spool-{uuid.uuid4().hex[:12]}"
        self.service.create_container(name)
        return name

    def options(self, **extra: object) -> dict[str, object]:
        return {"endpoint": self.endpoint, "account_name": AZ_ACCOUNT, "account_key": AZ_KEY, **extra}

    def uncommitted_blocks(self, container: str, blob: str) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            _, uncommitted = self.service.get_blob_client(container, blob).get_block_list("uncommitted")
        except ResourceNotFoundError:
            return 0  # no blob and no staged block under that name
        return len(uncommitted)


def ensure_azurite() -> None:
    """Skip only when node itself is missing; install Azurite if only it is."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Azure tests need node and npm for Azurite (.ci/run installs them with apt-get)")
    if not AZURITE_BIN.exists():
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(AZURITE_DIR),
                        f"azurite@{AZURITE_VERSION}"], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    ensure_azurite()
    port = free_port()
    log = open(tmp_path_factory.mktemp("azurite") / "azurite.log", "wb")
    proc = subprocess.Popen(
        [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
         "--skipApiVersionCheck", "--loose", "--silent", "--extentMemoryLimit", "512",
         "--disableTelemetry"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        yield Azurite(f"http://127.0.0.1:{port}/{AZ_ACCOUNT}")
    finally:
        stop(proc)
        log.close()


# -- faults --------------------------------------------------------------------


class FaultProxy:
    """Forwards to ``upstream`` but answers the first ``throttle`` requests
    with 503 SlowDown, the way S3 throttles."""

    SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                b"<Message>Please reduce your request rate.</Message></Error>")

    def __init__(self, upstream: str, throttle: int):
        self.upstream = upstream.removeprefix("http://")
        self.throttle = throttle
        self.requests = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    proxy.requests += 1
                    throttled = proxy.requests <= proxy.throttle
                if throttled:
                    return self._answer(503, {"Content-Type": "application/xml"}, FaultProxy.SLOWDOWN)
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                hop = {"connection", "transfer-encoding", "content-length"}
                self._answer(resp.status, {k: v for k, v in resp.getheaders() if k.lower() not in hop}, data)
                conn.close()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
