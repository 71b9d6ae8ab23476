"""Reading Singer input: blocks of complete lines, from a file descriptor.

Reading big chunks and splitting them is much cheaper than reading line by
line. ``select`` with a timeout lets the caller act while the tap is idle
(ingest's flush timer needs that to keep STATE flowing).
"""

from __future__ import annotations

import os
import select
from typing import Callable, Iterator

READ_CHUNK = 1 << 20


def line_blocks(
    fd: int, idle_wait: float, on_idle: Callable[[], None], read_bytes: int = READ_CHUNK
) -> Iterator[bytes]:
    """Yield blocks of complete lines as input arrives, each ending with a newline.

    A last line without a newline is yielded on its own at the end of input;
    if it is truncated, the caller's JSON parser reports it with its line number.
    ``read_bytes`` is the most one read takes (tests make it small, to cut input
    into many blocks).
    """
    # The tail of an unfinished line, kept in pieces: a huge record
    # arriving 64 KiB at a time must not be re-copied on every read.
    carry: list[bytes | memoryview] = []
    _widen_pipe(fd)
    while True:
        try:
            ready, _, _ = select.select([fd], [], [], idle_wait)
        except (OSError, ValueError):
            ready = [fd]
        if not ready:
            on_idle()
            continue
        data = os.read(fd, read_bytes)
        if not data:
            break
        end = data.rfind(b"\n") + 1
        if not end:
            carry.append(data)
            continue
        if carry:  # one copy: the tail before it, and this read up to its last newline
            carry.append(memoryview(data)[:end])
            block = b"".join(carry)
            carry.clear()
        else:
            block = data if end == len(data) else data[:end]
        if end < len(data):
            carry.append(data[end:])
        yield block
    if carry:
        yield b"".join(carry)


def split_lines(block: bytes) -> list[bytes]:
    """A block's lines, without their newlines."""
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    return lines


def _widen_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux): fewer, larger reads from the tap."""
    try:
        import fcntl
        import stat

        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), READ_CHUNK)
    except OSError:
        pass  # not permitted or not Linux: smaller reads still work
