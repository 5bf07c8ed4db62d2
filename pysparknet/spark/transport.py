"""Weights between the driver and the workers over direct TCP connections.

Spark's broadcast and collect carry a weight vector through several JVM
copies and serializers (bench/bench_sync.py measures both paths). Here Spark
still schedules each round's tasks, retries failed ones and reports their
errors, but the float32 bytes go straight from the driver's buffer to the
worker's and back.

Every connection is TLS 1.3 by default (exchange_tls.py): the worker trusts
only its run's certificate, which came with its task, and proves the run
secret inside the session. One connection per task attempt:
  worker -> driver  hello: magic, run secret (32 bytes), round, partition
  driver -> worker  u64 byte count, then the round's weights
                    (0: this partition's result is already held, skip;
                     BUSY: another live attempt holds the partition, ask again)
  ... the worker trains ...
  worker -> driver  u64 byte count, then its weights
  driver -> worker  one byte: the driver holds the result
or, from a task whose worker holds no solver for its partition (rounds run
without their data, on the solvers the workers kept):
  worker -> driver  hello with the data-request magic
  driver -> worker  u64 0: the partition is being rerun with its data
The driver starts that rerun at once, while the round's other tasks wait for
their turn in the gather: waiting for the round's job to end first would
deadlock with them.

Nothing waits without a deadline: a whole handshake (TLS and hello) gets
HANDSHAKE_S, at most MAX_PENDING connections are unauthenticated at a time
(more are closed at once; workers retry), the accept loop outlives errors
such as EMFILE, and a round's results are gathered against a deadline.

The driver reads results in partition order into one running sum (the same
float operations as WeightCollection.mean, so the mean is exact and
reproducible) and holds at most one result besides the sum. A result stream
that breaks off is dropped; Spark's retry of that task sends it again.
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

import numpy as np

from ..errors import RoundTimeoutError, TransportError
from . import exchange_tls

_LOG = logging.getLogger("pysparknet")
_HELLO = struct.Struct("!4s32sQI")
_MAGIC = b"SNW2"
_NEEDS_DATA = b"SND2"
_SEGMENT_MAGIC = b"SNS1"  # a segment task's link (segment_link.py)
_COUNT = struct.Struct("!Q")
_ACK = b"\x01"
_BUSY = (1 << 64) - 1
HANDSHAKE_S = 10.0  # TLS handshake + hello, whole
MAX_PENDING = 128  # connections not yet authenticated
CONNECT_S = 120.0  # how long a worker keeps trying to get its reply
TRANSFER_S = 120.0  # the longest pause inside one transfer of weights


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


def _recv_struct(sock: socket.socket, layout: struct.Struct, deadline=None) -> tuple:
    buffer = bytearray(layout.size)
    recv_exactly(sock, memoryview(buffer), deadline)
    return layout.unpack(buffer)


def _alive(conn: socket.socket) -> bool:
    """Whether a parked connection's peer is still there (a raw peek: TLS bytes stay)."""
    try:
        return socket.socket.recv(conn, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _no_delay(conn: socket.socket) -> None:
    """Small messages (hello, count, acknowledgement, TLS handshake records) go out at
    once: Nagle's algorithm would hold one back for the peer's delayed ACK (40 ms)."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def add_in_partition_order(partitions: int, total: np.ndarray, receive: np.ndarray,
                           read: Callable, abort: Callable) -> list:
    """Sum the partitions' vectors into `total` in partition order, each as
    read(part, into) leaves it; read's results, in partition order.

    Partition 0 is read straight into the sum on a thread of its own while
    partition 1 comes into `receive` (no extra copy), so their streams - and,
    over TLS, their decryption - run side by side; later ones are read in turn
    and added. A failure calls abort() to wake the other reader, and is the one
    raised: the first to happen, not the one it caused.
    """
    results: list = [None] * partitions
    first_failed: list = []

    def read_first():
        try:
            results[0] = read(0, total)
        except BaseException as error:  # noqa: BLE001 - raised below
            first_failed.append(error)
            abort()
    first = threading.Thread(target=read_first, name="sparknet-gather-0", daemon=True)
    first.start()

    def join_first():
        first.join()
        if first_failed:
            raise first_failed[0]
    try:
        for part in range(1, partitions):
            results[part] = read(part, receive)
            if part == 1:
                join_first()
            total += receive
    except BaseException:
        if not first_failed:  # this failure came first: it is the cause
            abort()
            first.join()
            raise
        join_first()
    join_first()
    return results


@dataclass(frozen=True)
class Ticket:
    """What a round's task carries to reach the driver's exchange."""

    address: tuple
    secret: bytes
    round: int
    certificate: Optional[bytes]  # the run's TLS certificate (None: TLS off)
    deadline_s: Optional[float] = None  # the round's deadline, for the final acknowledgement


@dataclass
class _Holder:
    """The one attempt that holds a partition in this round."""

    conn: socket.socket
    parked: bool = False  # weights sent: gather() may read its result


class WeightExchange:
    """The driver's end: serves a round's weights and sums the workers' replies.

    bind: the address to listen on (spark.driver.bindAddress); advertise: the
    name the workers connect to (spark.driver.host). tls=False sends the weights
    and the run secret in clear, for networks where every host is trusted.
    """

    def __init__(self, bind: str = "127.0.0.1", port: int = 0, advertise: Optional[str] = None,
                 tls: bool = True, handshake_s: float = HANDSHAKE_S,
                 max_pending: int = MAX_PENDING):
        advertise = advertise or bind
        try:
            self._server = socket.create_server((bind, port), backlog=256)
        except OSError as error:
            raise TransportError(
                f"the weight exchange cannot listen on {bind}:{port} ({error}): "
                f"spark.driver.bindAddress (or, unset, spark.driver.host) must be an address "
                f"of this machine; spark.driver.host ({advertise}) is what executors connect "
                "to") from None
        self._server.settimeout(1.0)  # the accept loop notices close()
        self.address = (advertise, self._server.getsockname()[1])
        self.secret = secrets.token_bytes(32)
        credentials = exchange_tls.generate(advertise) if tls else None
        self.certificate = credentials.certificate if credentials else None
        self._tls = exchange_tls.server_context(credentials) if credentials else None
        self._handshake_s, self._max_pending = handshake_s, max_pending
        self._lock = threading.Condition()
        self._pending = 0
        self._round: Optional[int] = None
        self._partitions = 0
        self._weights: Optional[memoryview] = None
        self._holders: dict[int, _Holder] = {}
        self._done: set[int] = set()
        self._requested: set[int] = set()  # partitions rerun with their data this round
        self._on_needs_data = None
        self._links = None  # the open segment's (segment_link.Links)
        self._aborted = False
        self._closed = False
        self._receive: Optional[np.ndarray] = None  # reused across rounds: no page faults
        threading.Thread(target=self._accept, name="sparknet-weights", daemon=True).start()

    # --- driver API ---------------------------------------------------------
    def start_round(self, round_no: int, weights: np.ndarray, partitions: int,
                    on_needs_data=None) -> None:
        """Serve `weights` to partitions 0..partitions-1 for round_no; on_needs_data(p)
        is called (once per partition, on an exchange thread) when a task asks for
        its partition's data."""
        with self._lock:
            self._round, self._weights = round_no, memoryview(weights).cast("B")
            self._partitions = partitions
            self._done, self._requested, self._aborted = set(), set(), False
            self._holders = {}
            self._on_needs_data = on_needs_data

    def ticket(self, round_no: int, deadline_s: Optional[float] = None) -> Ticket:
        return Ticket(self.address, self.secret, round_no, self.certificate, deadline_s)

    def gather(self, partitions: int, size: int, deadline_s: Optional[float] = None):
        """Sum of the partitions' weight vectors, added in partition order
        (add_in_partition_order); raises RoundTimeoutError when they are not all in
        within deadline_s."""
        deadline = Deadline(deadline_s)
        total = np.empty(size, np.float32)
        if self._receive is None or self._receive.size != size:
            self._receive = np.empty(size, np.float32)
        add_in_partition_order(partitions, total, self._receive,
                               lambda part, into: self._read_into(part, into, deadline),
                               self.abort)
        return total

    def _read_into(self, part: int, target: np.ndarray, deadline: Deadline) -> None:
        while not self._read_result(part, target, deadline):
            pass  # that attempt broke off; its retry sends again

    def abort(self) -> None:
        """The round failed: wake gather() and drop every pending connection."""
        with self._lock:
            self._aborted = True
            for holder in self._holders.values():
                holder.conn.close()
            self._holders.clear()
            self._lock.notify_all()

    def close(self) -> None:
        self.abort()
        self.close_segment()
        self._closed = True
        self._server.close()

    def __enter__(self) -> "WeightExchange":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- gather internals ---------------------------------------------------
    def _read_result(self, part: int, target: np.ndarray, deadline: Deadline) -> bool:
        """Read one attempt's result for `part` into target; False if it broke off."""
        holder = self._parked_holder(part, deadline)
        conn, ok = holder.conn, False
        try:
            (count,) = _recv_struct(conn, _COUNT, deadline)
            if count != target.nbytes:
                raise TransportError(f"partition {part} sent {count} bytes, "
                                     f"expected {target.nbytes}")
            recv_exactly(conn, memoryview(target).cast("B"), deadline)
            conn.settimeout(TRANSFER_S)
            conn.sendall(_ACK)
            ok = True
        except OSError:
            if deadline.expired():
                raise self._timeout(part, deadline) from None
        finally:
            conn.close()
            self._drop(part, holder, done=ok)
        return ok

    def _parked_holder(self, part: int, deadline: Deadline) -> _Holder:
        with self._lock:
            while True:
                if self._aborted:
                    raise TransportError("the round was aborted")
                holder = self._holders.get(part)
                if holder is not None and holder.parked:
                    return holder
                try:
                    self._lock.wait(deadline.left())
                except socket.timeout:
                    raise self._timeout(part, deadline) from None

    def _timeout(self, part: int, deadline: Deadline) -> RoundTimeoutError:
        missing = [p for p in range(self._partitions) if p not in self._done]
        return RoundTimeoutError(
            f"round {self._round}: partition(s) {missing} sent no weights within the round's "
            f"deadline of {deadline.seconds:.0f} s (waiting on partition {part}); a worker "
            "is stuck or lost without Spark noticing")

    # --- serving ------------------------------------------------------------
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
                    _LOG.warning("weight exchange: accept failed (%s); retrying", error)
                    warned = True
                time.sleep(backoff)
                backoff = min(2 * backoff, 1.0)
                continue
            backoff = 0.05
            self._start_serving(conn)

    def _start_serving(self, conn: socket.socket) -> None:
        try:
            _no_delay(conn)
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
            return conn, _recv_struct(conn, _HELLO, deadline)
        except (OSError, ValueError):
            conn.close()
            return None, None
        finally:
            with self._lock:
                self._pending -= 1

    def _serve(self, raw: socket.socket) -> None:
        """Check a worker's hello; answer a data request, or send the weights and park
        the connection for gather()."""
        conn, hello = self._handshake(raw)
        if conn is None:
            return
        magic, secret, round_no, part = hello
        if magic == _SEGMENT_MAGIC:
            return self._attach_link(conn, secret, round_no, part)
        with self._lock:
            valid = (magic in (_MAGIC, _NEEDS_DATA) and secrets.compare_digest(secret, self.secret)
                     and round_no == self._round and not self._aborted
                     and 0 <= part < self._partitions)
            reply, holder, rerun = (self._admit(magic, part, conn) if valid
                                    else (None, None, False))
            weights, on_needs_data = self._weights, self._on_needs_data
        try:
            if reply is None:
                return conn.close()
            conn.settimeout(TRANSFER_S)
            if rerun and on_needs_data is not None:
                on_needs_data(part)
            conn.sendall(_COUNT.pack(reply))
            if holder is None:
                return conn.close()
            conn.sendall(weights)
        except OSError:
            conn.close()
            self._drop(part, holder)
            return
        with self._lock:
            holder.parked = True
            self._lock.notify_all()

    def _attach_link(self, conn: socket.socket, secret: bytes, serial: int, part: int) -> None:
        """A segment task's hello: its connection becomes the partition's link for the
        segment whose serial it names (segment_link.py), or is closed. The reply goes
        out before the link is handed over: from then on only the round loop uses it."""
        with self._lock:
            links = self._links
        valid = (secrets.compare_digest(secret, self.secret) and links is not None
                 and serial == links.serial and 0 <= part < links.partitions)
        try:
            if valid:
                conn.settimeout(TRANSFER_S)
                conn.sendall(_COUNT.pack(1))  # taken
        except OSError:
            valid = False
        if not (valid and links.attach(part, conn)):
            conn.close()  # a worker whose reply came but not its link finds it closed

    def open_segment(self, links) -> None:
        """Attach segment hellos naming links.serial to `links` (segment_link.Links)."""
        with self._lock:
            self._links = links

    def close_segment(self) -> None:
        with self._lock:
            links, self._links = self._links, None
        if links is not None:
            links.close()

    def _admit(self, magic: bytes, part: int, conn: socket.socket):
        """(reply count, holder or None, rerun?) for a valid hello; under the lock."""
        if magic == _NEEDS_DATA:
            rerun = part not in self._done and part not in self._requested
            self._requested.add(part)
            return 0, None, rerun
        if part in self._done:
            return 0, None, False
        current = self._holders.get(part)
        if current is not None and (not current.parked or _alive(current.conn)):
            return _BUSY, None, False  # one connection per partition: refused, not swapped
        if current is not None:  # that attempt died: its retry takes the partition
            current.conn.close()
        holder = self._holders[part] = _Holder(conn)
        return len(self._weights), holder, False

    def _drop(self, part: int, holder: Optional[_Holder], done: bool = False) -> None:
        """`holder` no longer holds `part` (if it still did); done: its result is summed."""
        with self._lock:
            if holder is not None and self._holders.get(part) is holder:
                del self._holders[part]
            if done:
                self._done.add(part)


# --- the worker's end -------------------------------------------------------
def _open(ticket: Ticket, deadline: Deadline) -> socket.socket:
    host, port = ticket.address
    raw = socket.create_connection((host, port), timeout=deadline.left())
    try:
        _no_delay(raw)
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
            f"the weight exchange at {host}:{port} did not present this run's certificate "
            f"({error.verify_message}): not the run's driver; no weights sent or taken") \
            from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        raw.close()
        raise  # closed by the driver mid-handshake (overloaded): the caller retries
    except ssl.SSLError as error:
        raw.close()
        raise TransportError(f"{host}:{port} does not speak the exchange's TLS ({error}): "
                             "not the run's driver; no weights sent or taken") from None
    except BaseException:
        raw.close()
        raise


def _reply(ticket: Ticket, magic: bytes, part: int):
    """Connect, say hello, read the driver's count: (connection, count). Retries while
    the driver is unreachable, overloaded or busy with another attempt, up to
    CONNECT_S (or the round's deadline, if longer)."""
    patience = max(CONNECT_S, ticket.deadline_s or 0.0)
    deadline, pause, last = Deadline(patience), 0.1, None
    while not deadline.expired():
        conn = None
        try:
            conn = _open(ticket, deadline)
            conn.sendall(_HELLO.pack(magic, ticket.secret, ticket.round, part))
            (count,) = _recv_struct(conn, _COUNT, Deadline(min(TRANSFER_S, deadline.left())))
            if count != _BUSY:
                return conn, count
            conn.close()
            last, pause = "another attempt of this task holds its partition", 1.0
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
        f"this worker got no answer from the driver's weight exchange at {host}:{port} "
        f"within {patience:.0f} s ({last}); executors must reach the driver at "
        "spark.driver.host (the exchange listens on spark.driver.bindAddress), or train "
        "with sync='spark'")


def request_data(ticket: Ticket, part: int) -> None:
    """Ask the driver to rerun this round's task of `part` with its data (this worker
    has no solver for it); returns once the driver has taken the request."""
    conn, _ = _reply(ticket, _NEEDS_DATA, part)
    conn.close()


def worker_exchange(ticket: Ticket, part: int, buffer_for, train):
    """The worker's end of one round.

    buffer_for(nbytes) -> a float32 array to receive the weights into (reused);
    train(weights) -> (trained weights to send, anything to return). Returns
    None when the driver already holds this partition's result.
    """
    conn, count = _reply(ticket, _MAGIC, part)
    with conn:
        if count == 0:
            return None
        weights = buffer_for(count)
        conn.settimeout(TRANSFER_S)
        recv_exactly(conn, memoryview(weights).cast("B"))
        trained, extra = train(weights)
        conn.sendall(_COUNT.pack(trained.nbytes))
        conn.sendall(memoryview(trained).cast("B"))
        # gather() takes results in partition order: this waits for the others
        recv_exactly(conn, memoryview(bytearray(1)), Deadline(ticket.deadline_s))
        return extra
