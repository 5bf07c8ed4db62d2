"""Weights between the driver and the workers over direct TCP connections.

Spark's broadcast and collect carry a weight vector through several JVM
copies and serializers (bench/bench_sync.py measures both paths). Here Spark
still schedules each round's tasks, retries failed ones and reports their
errors, but the float32 bytes go straight from the driver's buffer to the
worker's and back.

One connection per task attempt:
  worker -> driver  hello: magic, run token (16 bytes), round, partition
  driver -> worker  u64 byte count, then the round's weights
                    (0 bytes: this partition's result is already held; skip)
  ... the worker trains ...
  worker -> driver  u64 byte count, then its weights
  driver -> worker  one byte: the driver holds the result
or, from a task whose worker holds no solver for its partition (rounds run
without their data, on the solvers the workers kept):
  worker -> driver  hello with the data-request magic
  driver -> worker  one byte: the partition is being rerun with its data
The driver starts that rerun at once, while the round's other tasks wait for
their turn in the gather: waiting for the round's job to end first would
deadlock with them.

The driver reads results in partition order into one running sum (the same
float operations as WeightCollection.mean, so the mean is exact and
reproducible) and holds at most one result besides the sum. A result stream
that breaks off is dropped; Spark's retry of that task sends it again. When
two attempts of a task both finish (the first ran on in a killed executor's
orphaned Python worker), the first summed counts and the other is acknowledged
and dropped.
"""
from __future__ import annotations

import secrets
import socket
import struct
import threading
from typing import Optional

import numpy as np

from ..errors import TransportError

_HELLO = struct.Struct("!4s16sQI")
_MAGIC = b"SNW1"
_NEEDS_DATA = b"SNWD"
_COUNT = struct.Struct("!Q")
_ACK = b"\x01"


def recv_exactly(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise TransportError(f"connection closed after {got} of {len(view)} bytes")
        got += n


def _recv_struct(sock: socket.socket, layout: struct.Struct) -> tuple:
    buffer = bytearray(layout.size)
    recv_exactly(sock, memoryview(buffer))
    return layout.unpack(buffer)


class WeightExchange:
    """The driver's end: serves a round's weights and sums the workers' replies."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.token = secrets.token_bytes(16)
        self._server = socket.create_server((host, port))
        self.address = (host, self._server.getsockname()[1])
        self._lock = threading.Condition()
        self._round: Optional[int] = None
        self._weights: Optional[memoryview] = None
        self._waiting: dict[int, socket.socket] = {}  # partition -> connection with a result
        self._done: set[int] = set()
        self._requested: set[int] = set()  # partitions rerun with their data this round
        self._on_needs_data = None
        self._aborted = False
        self._closed = False
        self._receive: Optional[np.ndarray] = None  # reused across rounds: no page faults
        threading.Thread(target=self._accept, name="sparknet-weights", daemon=True).start()

    # --- driver API ---------------------------------------------------------
    def start_round(self, round_no: int, weights: np.ndarray, on_needs_data=None) -> None:
        """Serve `weights` for round_no; on_needs_data(partition) is called (once per
        partition, on an exchange thread) when a task asks for its partition's data."""
        with self._lock:
            self._round, self._weights = round_no, memoryview(weights).cast("B")
            self._done, self._requested, self._aborted = set(), set(), False
            self._on_needs_data = on_needs_data

    def gather(self, partitions: int, size: int) -> np.ndarray:
        """Sum of the partitions' weight vectors, added in partition order."""
        total = np.empty(size, np.float32)
        if self._receive is None or self._receive.size != size:
            self._receive = np.empty(size, np.float32)
        for part in range(partitions):
            target = total if part == 0 else self._receive
            while True:
                conn = self._next_result(part)
                try:
                    (count,) = _recv_struct(conn, _COUNT)
                    if count != target.nbytes:
                        raise TransportError(f"partition {part} sent {count} bytes, "
                                             f"expected {target.nbytes}")
                    recv_exactly(conn, memoryview(target).cast("B"))
                    conn.sendall(_ACK)
                    break
                except OSError:  # this attempt broke off; its retry sends again
                    continue
                finally:
                    conn.close()
            with self._lock:
                self._done.add(part)
                duplicate = self._waiting.pop(part, None)
            if duplicate is not None:  # another attempt of this task, already training
                self._release_duplicate(duplicate)
            if part:
                total += self._receive
        return total

    def abort(self) -> None:
        """The round failed: wake gather() and drop every pending connection."""
        with self._lock:
            self._aborted = True
            for conn in self._waiting.values():
                conn.close()
            self._waiting.clear()
            self._lock.notify_all()

    def close(self) -> None:
        self.abort()
        self._closed = True
        self._server.close()

    def __enter__(self) -> "WeightExchange":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals ----------------------------------------------------------
    def _next_result(self, part: int) -> socket.socket:
        with self._lock:
            while part not in self._waiting:
                if self._aborted:
                    raise TransportError("the round was aborted")
                self._lock.wait()
            return self._waiting.pop(part)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        """Check a worker's hello, send it the weights, park the connection for gather()."""
        try:
            conn.settimeout(30)
            magic, token, round_no, part = _recv_struct(conn, _HELLO)
            with self._lock:
                valid = (magic in (_MAGIC, _NEEDS_DATA)
                         and secrets.compare_digest(token, self.token)
                         and round_no == self._round and not self._aborted)
                weights, skip = self._weights, part in self._done
                rerun = (valid and magic == _NEEDS_DATA and not skip
                         and part not in self._requested)
                if rerun:
                    self._requested.add(part)
                on_needs_data = self._on_needs_data
            if not valid:
                conn.close()
                return
            if magic == _NEEDS_DATA:
                if rerun and on_needs_data is not None:
                    on_needs_data(part)
                conn.sendall(_ACK)
                conn.close()
                return
            conn.settimeout(None)  # training between the two transfers takes what it takes
            if skip:
                conn.sendall(_COUNT.pack(0))
                conn.close()
                return
            conn.sendall(_COUNT.pack(len(weights)))
            conn.sendall(weights)
        except OSError:
            conn.close()
            return
        with self._lock:
            if part in self._done:  # summed while this attempt was being served
                self._release_duplicate(conn)
                return
            previous = self._waiting.pop(part, None)
            if previous is not None:  # an older attempt of the same task
                previous.close()
            self._waiting[part] = conn
            self._lock.notify_all()

    @staticmethod
    def _release_duplicate(conn: socket.socket) -> None:
        """Another attempt of a task whose result is already summed (Spark retried it
        while the first attempt - say, on an executor killed mid-round - still ran to
        the end): take its result when it comes, acknowledge and drop it, so that
        its task ends instead of waiting for an acknowledgement forever."""
        def drain():
            try:
                (count,) = _recv_struct(conn, _COUNT)
                scratch = memoryview(bytearray(min(count, 1 << 20) or 1))
                while count:
                    got = conn.recv_into(scratch, min(count, len(scratch)))
                    if got == 0:
                        return
                    count -= got
                conn.sendall(_ACK)
            except OSError:
                pass
            finally:
                conn.close()
        threading.Thread(target=drain, name="sparknet-duplicate", daemon=True).start()


def _connect(address):
    try:
        return socket.create_connection(tuple(address), timeout=60)
    except OSError as error:
        raise TransportError(f"this worker cannot reach the driver's weight exchange at "
                             f"{address[0]}:{address[1]} ({error}); executors must reach the "
                             f"driver (spark.driver.host), or train with sync='spark'") from None


def request_data(address, token: bytes, round_no: int, part: int) -> None:
    """Ask the driver to rerun this round's task of `part` with its data (this worker
    has no solver for it); returns once the driver has taken the request."""
    with _connect(address) as conn:
        conn.sendall(_HELLO.pack(_NEEDS_DATA, token, round_no, part))
        recv_exactly(conn, memoryview(bytearray(1)))


def worker_exchange(address, token: bytes, round_no: int, part: int, buffer_for, train):
    """The worker's end of one round.

    buffer_for(nbytes) -> a float32 array to receive the weights into (reused);
    train(weights) -> (trained weights to send, anything to return). Returns
    None when the driver already holds this partition's result.
    """
    with _connect(address) as conn:
        conn.settimeout(None)
        conn.sendall(_HELLO.pack(_MAGIC, token, round_no, part))
        (count,) = _recv_struct(conn, _COUNT)
        if count == 0:
            return None
        weights = buffer_for(count)
        recv_exactly(conn, memoryview(weights).cast("B"))
        trained, extra = train(weights)
        conn.sendall(_COUNT.pack(trained.nbytes))
        conn.sendall(memoryview(trained).cast("B"))
        recv_exactly(conn, memoryview(bytearray(1)))
        return extra
