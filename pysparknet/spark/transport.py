"""Where the driver's end and the workers' ends of the wire meet: the listener,
TLS, the hello, and a link handed to the stage that expects it.

Every connection is TLS 1.3 by default (exchange_tls.py): the worker trusts
only its run's certificate, which came with its task, and proves the run
secret inside the session. One connection per task, for the whole stage:
  worker -> driver  hello: magic, run secret (32 bytes), the stage's serial, partition
  driver -> worker  u64 1: the connection is now the partition's link
What follows is the link protocol (link_protocol.py).

Nothing waits without a deadline: a whole handshake (TLS and hello) gets
HANDSHAKE_S, at most MAX_PENDING connections are unauthenticated at a time
(more are closed at once; workers retry), and the accept loop outlives
errors such as EMFILE.
"""
from __future__ import annotations

import logging
import secrets
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import TransportError
from . import exchange_tls
from .sockets import Deadline, no_delay, recv_struct

_LOG = logging.getLogger("pysparknet")
HELLO = struct.Struct("!4s32sQI")  # magic, run secret, stage serial, partition
MAGIC = b"SNL1"
TAKEN = struct.Struct("!Q")
HANDSHAKE_S = 10.0  # TLS handshake + hello, whole
MAX_PENDING = 128  # connections not yet authenticated
CONNECT_S = 120.0  # how long a worker keeps trying to reach the driver
TRANSFER_S = 120.0  # the longest pause inside one transfer of weights


@dataclass(frozen=True)
class Ticket:
    """What a stage's task carries to reach the driver's listener."""

    address: tuple
    secret: bytes
    serial: int  # the stage's: a link for another stage is refused
    certificate: Optional[bytes]  # the run's TLS certificate (None: TLS off)
    deadline_s: Optional[float] = None  # the round's deadline (between rounds too)
    ring: Optional[exchange_tls.RingKeys] = None  # exchange='ring': its workers' links


class LinkListener:
    """The driver's listener: authenticates each task's connection and hands it to
    the open stage (on_link(serial, partition, connection) -> taken?).

    bind: the address to listen on (spark.driver.bindAddress); advertise: the
    name the workers connect to (spark.driver.host). tls=False sends the weights
    and the run secret in clear, for networks where every host is trusted.
    ring=True: the workers also link among themselves (exchange='ring'), with
    keys of their own that the tickets carry.
    """

    def __init__(self, bind: str = "127.0.0.1", port: int = 0, advertise: Optional[str] = None,
                 tls: bool = True, handshake_s: float = HANDSHAKE_S,
                 max_pending: int = MAX_PENDING, ring: bool = False):
        advertise = advertise or bind
        try:
            self._server = socket.create_server((bind, port), backlog=256)
        except OSError as error:
            raise TransportError(
                f"the driver cannot listen for its workers on {bind}:{port} ({error}): "
                f"spark.driver.bindAddress (or, unset, spark.driver.host) must be an address "
                f"of this machine; spark.driver.host ({advertise}) is what executors connect "
                "to") from None
        self._server.settimeout(1.0)  # the accept loop notices close()
        self.address = (advertise, self._server.getsockname()[1])
        self.secret = secrets.token_bytes(32)
        credentials = exchange_tls.generate(advertise) if tls else None
        self.certificate = credentials.certificate if credentials else None
        self.ring = exchange_tls.RingKeys.issue(tls) if ring else None
        self._tls = exchange_tls.server_context(credentials) if credentials else None
        self._handshake_s, self._max_pending = handshake_s, max_pending
        self._lock = threading.Lock()
        self._pending = 0
        self._on_link: Optional[Callable] = None
        self._closed = False
        threading.Thread(target=self._accept, name="sparknet-listener", daemon=True).start()

    def ticket(self, serial: int, deadline_s: Optional[float] = None) -> Ticket:
        return Ticket(self.address, self.secret, serial, self.certificate, deadline_s,
                      self.ring)

    def expect(self, on_link: Optional[Callable]) -> None:
        """Hand authenticated links to on_link(serial, part, conn) -> bool (None: refuse)."""
        with self._lock:
            self._on_link = on_link

    def close(self) -> None:
        self.expect(None)
        self._closed = True
        self._server.close()

    def __enter__(self) -> "LinkListener":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept(self) -> None:
        backoff, warned = 0.05, False
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError as error:  # EMFILE, ENFILE, ENOBUFS...: back off, serve on
                if self._closed:
                    return
                if not warned:
                    _LOG.warning("the driver's listener: accept failed (%s); retrying", error)
                    warned = True
                time.sleep(backoff)
                backoff = min(2 * backoff, 1.0)
                continue
            backoff = 0.05
            self._start_serving(conn)

    def _start_serving(self, conn: socket.socket) -> None:
        try:
            no_delay(conn)
        except OSError:  # the peer is already gone: nothing to serve
            conn.close()
            return
        with self._lock:
            admitted = self._pending < self._max_pending
            self._pending += admitted
        if not admitted:  # a flood: never let it take every file descriptor
            conn.close()
            return
        try:
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
        except RuntimeError:  # no thread to be had: drop it, the worker retries
            conn.close()
            with self._lock:
                self._pending -= 1

    def _handshake(self, raw: socket.socket):
        """TLS (when on) and the hello, all within HANDSHAKE_S: (connection, hello)."""
        deadline = Deadline(self._handshake_s)
        conn = raw
        try:
            if self._tls is not None:
                raw.settimeout(deadline.left())
                conn = self._tls.wrap_socket(raw, server_side=True,
                                             do_handshake_on_connect=False)
                conn.settimeout(deadline.left())
                conn.do_handshake()
            return conn, recv_struct(conn, HELLO, deadline)
        except (OSError, ValueError, TransportError):
            conn.close()
            return None, None
        finally:
            with self._lock:
                self._pending -= 1

    def _serve(self, raw: socket.socket) -> None:
        """Check a task's hello; its connection becomes its partition's link in the
        stage whose serial it names, or is closed. The reply goes out before the link
        is handed over: from then on only the stage's round loop uses it."""
        conn, hello = self._handshake(raw)
        if conn is None:
            return
        magic, secret, serial, part = hello
        with self._lock:
            on_link = self._on_link
        valid = (magic == MAGIC and secrets.compare_digest(secret, self.secret)
                 and on_link is not None)
        try:
            if valid:
                conn.settimeout(TRANSFER_S)
                conn.sendall(TAKEN.pack(1))
        except OSError:
            valid = False
        if not (valid and on_link(serial, part, conn)):
            conn.close()  # a worker whose reply came but not its link finds it closed


# --- the worker's end of the handshake ----------------------------------------
def _open(ticket: Ticket, deadline: Deadline) -> socket.socket:
    host, port = ticket.address
    raw = socket.create_connection((host, port), timeout=deadline.left())
    try:
        no_delay(raw)
        if ticket.certificate is None:
            return raw
        context = exchange_tls.client_context(ticket.certificate)
        conn = context.wrap_socket(raw, server_hostname=None, do_handshake_on_connect=False)
        conn.settimeout(deadline.left())
        conn.do_handshake()
        return conn
    except ssl.SSLCertVerificationError as error:
        raw.close()
        raise TransportError(
            f"the driver at {host}:{port} did not present this run's certificate "
            f"({error.verify_message}): not the run's driver; no weights sent or taken") \
            from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        raw.close()
        raise  # closed by the driver mid-handshake (overloaded): the caller retries
    except ssl.SSLError as error:
        raw.close()
        raise TransportError(f"{host}:{port} does not speak the run's TLS ({error}): "
                             "not the run's driver; no weights sent or taken") from None
    except BaseException:
        raw.close()
        raise


def connect(ticket: Ticket, part: int) -> socket.socket:
    """Connect, say hello, read the driver's TAKEN: the partition's link. Retries
    while the driver is unreachable or overloaded, up to CONNECT_S (or the round's
    deadline, if longer)."""
    patience = max(CONNECT_S, ticket.deadline_s or 0.0)
    deadline, pause, last = Deadline(patience), 0.1, None
    while not deadline.expired():
        conn = None
        try:
            conn = _open(ticket, deadline)
            conn.sendall(HELLO.pack(MAGIC, ticket.secret, ticket.serial, part))
            recv_struct(conn, TAKEN, Deadline(min(TRANSFER_S, deadline.left())))
            return conn
        except TransportError as error:
            if conn is None:  # the driver's identity: final
                raise
            conn.close()
            last = str(error)
        except OSError as error:
            if conn is not None:
                conn.close()
            last = f"{type(error).__name__}: {error}"
        time.sleep(min(pause, max(deadline.end - time.monotonic(), 0)))
        pause = min(2 * pause, 2.0)
    host, port = ticket.address
    raise TransportError(
        f"this worker got no answer from the driver at {host}:{port} within "
        f"{patience:.0f} s ({last}); executors must reach the driver at spark.driver.host "
        "(it listens on spark.driver.bindAddress)")
