"""The links between a ring's workers (exchange='ring'): each worker listens, and
connects to the next one; rank r sends to r+1 and hears from r-1.

As on the driver's links, every peer link is TLS 1.3 (when the run's exchange
is), pinned to a certificate the run issues for its ring and ships in its
tasks, and the connecting worker proves the run secret inside the session:
  r -> r+1  hello: magic, run secret (32 bytes), the stage's serial, r
A connection that fails any of that is closed; nothing is read from it.
Every wait has a deadline: the ring forms within the stage's.
"""
from __future__ import annotations

import os
import secrets
import socket
import struct
import threading
from typing import Optional

from ..errors import TransportError
from . import exchange_tls
from .exchange_tls import RingKeys
from .sockets import Deadline, no_delay, recv_struct
from .transport import HANDSHAKE_S, TRANSFER_S

RING_HELLO = struct.Struct("!4s32sQI")  # magic, run secret, stage serial, sender's rank
RING_MAGIC = b"SNR1"
CONNECT_S = 60.0  # connecting and TLS to the next rank (it may be slow to accept)
HOST_VARIABLE = "PYSPARKNET_RING_HOST"  # the address peers reach this worker by (NAT)


class RingLinks:
    """One worker's two peer links for a stage: `right` (sends) and `left` (hears)."""

    def __init__(self, keys: RingKeys, secret: bytes, serial: int, rank: int,
                 toward_driver: str):
        """toward_driver: this host's address on its link to the driver, which peers
        reach it by unless PYSPARKNET_RING_HOST names another."""
        self.keys, self.secret, self.serial = keys, secret, serial
        self.rank, self.size = rank, 1
        advertised = os.environ.get(HOST_VARIABLE)
        self._server = socket.create_server(("" if advertised else toward_driver, 0))
        self.address = (advertised or toward_driver, self._server.getsockname()[1])
        self.left: Optional[socket.socket] = None
        self.right: Optional[socket.socket] = None

    def join(self, peers: list, deadline: Deadline) -> None:
        """Connect to the next rank while taking the previous one's connection;
        peers: every rank's (host, port), in rank order."""
        self.size = len(peers)
        accepted: dict = {}
        taker = threading.Thread(target=self._take_left, args=(deadline, accepted),
                                 daemon=True, name="sparknet-ring-accept")
        taker.start()
        right = (self.rank + 1) % self.size
        try:
            self.right = self._connect_right(tuple(peers[right]), deadline)
        except OSError as error:
            self.close()  # the taker's accept ends with it
            raise TransportError(f"ring rank {self.rank}: rank {right} at "
                                 f"{peers[right][0]}:{peers[right][1]} did not answer "
                                 f"({type(error).__name__}: {error})") from None
        finally:
            taker.join(deadline.left() if not deadline.expired() else 0)
        if "conn" not in accepted:
            self.close()
            raise TransportError(f"ring rank {self.rank}: rank {(self.rank - 1) % self.size} "
                                 f"did not connect ({accepted.get('error', 'no answer')})")
        self.left = accepted["conn"]
        for conn in (self.left, self.right):
            conn.settimeout(TRANSFER_S)

    def _connect_right(self, address: tuple, deadline: Deadline) -> socket.socket:
        raw = socket.create_connection(address, timeout=min(deadline.left(), CONNECT_S))
        conn = raw
        try:
            no_delay(raw)
            if self.keys.certificate is not None:
                context = exchange_tls.client_context(self.keys.certificate)
                conn = context.wrap_socket(raw, server_hostname=None)
            conn.sendall(RING_HELLO.pack(RING_MAGIC, self.secret, self.serial, self.rank))
            return conn
        except BaseException:
            conn.close()
            raise

    def _take_left(self, deadline: Deadline, accepted: dict) -> None:
        """Accept until the previous rank's authenticated connection (others closed)."""
        expected = (self.rank - 1) % self.size
        while not deadline.expired():
            try:
                self._server.settimeout(deadline.left())
                raw, _ = self._server.accept()
                conn = self._authenticate(raw, expected)
            except OSError as error:
                accepted["error"] = f"{type(error).__name__}: {error}"
                return
            if conn is not None:
                accepted["conn"] = conn
                return

    def _authenticate(self, raw: socket.socket, expected: int) -> Optional[socket.socket]:
        conn, handshake = raw, Deadline(HANDSHAKE_S)
        try:
            no_delay(raw)
            if self.keys.certificate is not None:
                raw.settimeout(handshake.left())
                conn = _server_context(self.keys).wrap_socket(raw, server_side=True)
            magic, secret, serial, rank = recv_struct(conn, RING_HELLO, handshake)
        except (OSError, ValueError):
            conn.close()
            return None
        if (magic == RING_MAGIC and secrets.compare_digest(secret, self.secret)
                and serial == self.serial and rank == expected):
            return conn
        conn.close()
        return None

    def close(self) -> None:
        for conn in (self.left, self.right, self._server):
            if conn is not None:
                conn.close()


_CONTEXTS: dict = {}


def _server_context(keys: RingKeys):
    """The ring's server context, made once per worker process and key."""
    context = _CONTEXTS.get(keys.certificate)
    if context is None:
        context = exchange_tls.server_context(
            exchange_tls.RunCredentials(keys.certificate, keys.key))
        _CONTEXTS.clear()  # one run's at a time
        _CONTEXTS[keys.certificate] = context
    return context
