"""Socket primitives every end of the wire uses: deadlines, exact reads, hang-ups."""
from __future__ import annotations

import select
import socket
import ssl
import struct
import time
from typing import Optional

import numpy as np

from ..errors import TransportError


class Deadline:
    """A point in time; left() is the socket timeout that still fits before it."""

    def __init__(self, seconds: Optional[float]):
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def left(self) -> Optional[float]:
        if self.end is None:
            return None
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise socket.timeout(f"deadline of {self.seconds:.0f} s passed")
        return remaining

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


def recv_exactly(sock: socket.socket, view: memoryview, deadline: Optional[Deadline] = None):
    got = 0
    while got < len(view):
        if deadline is not None:
            sock.settimeout(deadline.left())
        n = sock.recv_into(view[got:])
        if n == 0:
            raise TransportError(f"connection closed after {got} of {len(view)} bytes")
        got += n


def byte_view(array: np.ndarray) -> memoryview:
    """An array's bytes, to send or receive into (any dtype, bfloat16 included)."""
    return memoryview(array.view(np.uint8))


def recv_struct(sock: socket.socket, layout: struct.Struct, deadline=None) -> tuple:
    buffer = bytearray(layout.size)
    recv_exactly(sock, memoryview(buffer), deadline)
    return layout.unpack(buffer)


def no_delay(conn: socket.socket) -> None:
    """Small messages (hello, headers, TLS handshake records) go out at once: Nagle's
    algorithm would hold one back for the peer's delayed ACK (40 ms)."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def readable(conn, timeout: float) -> bool:
    """Bytes wait on `conn` (TLS keeps some decrypted in its own buffer), or arrive
    within timeout seconds."""
    if isinstance(conn, ssl.SSLSocket) and conn.pending():
        return True
    poller = select.poll()  # not select(): a driver may hold descriptors past 1024
    poller.register(conn, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(timeout * 1000))


def hang_up(conn) -> None:
    """Close a connection so that a thread blocked reading it wakes at once (a bare
    close does not wake it on Linux); the raw shutdown leaves TLS's state alone."""
    try:
        socket.socket.shutdown(conn, socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
