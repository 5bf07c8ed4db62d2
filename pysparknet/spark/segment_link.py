"""The wire of segment rounds: one connection per worker for a whole barrier stage.

In segment mode (rounds.py) one Spark stage runs many rounds. Each of its K
tasks opens one connection to the driver's WeightExchange, which authenticates
it as any other (TLS with the run's certificate, the run secret in the hello)
and hands it to the stage's Links. Over it:

  worker -> driver  hello: segment magic, run secret, the segment's serial, partition
  driver -> worker  one byte: the connection is the partition's link
  worker -> driver  READY (a solver in hand), NEEDS_DATA (none, and the task
                    carried no data), or ERROR
  then, per round:
  driver -> worker  round, tau, byte count; the weights     (count 0: the segment ends)
  worker -> driver  RESULT with the round's stats (JSON), then its weights, or ERROR

A worker's exceptions travel as ERROR frames (type and message), so the task
itself ends normally and its Python worker, with every solver in it, lives
on; a link that breaks means a lost process, which the driver answers by
rerunning the segment.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Optional

import numpy as np

from .. import errors
from ..errors import RoundTimeoutError, TransportError
from .transport import _HELLO, CONNECT_S, TRANSFER_S, Deadline, Ticket, _open, _recv_struct
from .transport import _SEGMENT_MAGIC as SEGMENT_MAGIC
from .transport import recv_exactly

_ACCEPTED = b"\x01"
_ROUND = struct.Struct("!QIQ")  # round, tau, weight bytes (0: end of the segment)
_FRAME = struct.Struct("!BIQ")  # kind, JSON bytes, weight bytes
READY, NEEDS_DATA, RESULT, ERROR = 1, 2, 3, 4


class LinkBroken(TransportError):
    """A worker's link broke off: its process, or the network between, was lost."""

    def __init__(self, part: int, message: str):
        super().__init__(f"partition {part}: {message}")
        self.part = part


def worker_error(part: int, meta: dict) -> errors.SparkNetError:
    """A worker's ERROR frame as the exception it reports (pysparknet's own kind)."""
    name, message = meta.get("type", "Exception"), meta.get("message", "")
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, errors.SparkNetError):
        return kind(f"on a worker (partition {part}): {message}")
    return errors.WorkerError(f"on a worker (partition {part}): {name}: {message}")


def _hang_up(conn) -> None:
    """Close a link so that a thread blocked reading it wakes at once (a bare close
    does not wake it on Linux); the raw shutdown leaves TLS's state alone."""
    try:
        socket.socket.shutdown(conn, socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def _error_meta(error: BaseException) -> dict:
    """An exception as an ERROR frame says it: the nearest pysparknet error kind."""
    named = next((cls.__name__ for cls in type(error).__mro__
                  if cls.__module__ == errors.__name__), type(error).__name__)
    return {"type": named, "message": str(error)}


def _send_frame(conn, kind: int, meta: Optional[dict] = None, weights=None) -> None:
    body = json.dumps(meta or {}).encode()
    nbytes = 0 if weights is None else weights.nbytes
    conn.sendall(_FRAME.pack(kind, len(body), nbytes) + body)
    if nbytes:
        conn.sendall(memoryview(weights).cast("B"))


# --- the driver's end ---------------------------------------------------------
class Links:
    """The driver's end of one segment: the K links, attached as workers connect.

    attach() is called by the exchange's serving threads; everything else by the
    round loop on the driver's thread (and a helper pool it owns).
    """

    def __init__(self, serial: int, partitions: int):
        self.serial, self.partitions = serial, partitions
        self._conns: dict = {}
        self._cond = threading.Condition()
        self._aborted: Optional[str] = None
        self._pool = ThreadPoolExecutor(max_workers=partitions + 1,
                                        thread_name_prefix="sparknet-link")
        self._receive: Optional[np.ndarray] = None

    def attach(self, part: int, conn) -> bool:
        """Take `conn` as partition `part`'s link (False: it has one, or the segment ended)."""
        with self._cond:
            if self._aborted is not None or part in self._conns:
                return False
            self._conns[part] = conn
            self._cond.notify_all()
        return True

    def abort(self, why: str = "the segment was aborted") -> None:
        """Close every link: the workers' tasks end, the round loop's waits raise."""
        with self._cond:
            if self._aborted is None:
                self._aborted = why
            conns, self._conns = list(self._conns.values()), {}
            self._cond.notify_all()
        for conn in conns:
            _hang_up(conn)

    def close(self) -> None:
        self.abort("the segment ended")
        self._pool.shutdown(wait=True)

    def ready(self, deadline: Deadline) -> list:
        """Wait for every partition's first frame: the partitions whose worker has no
        solver and whose task carried no data (empty: all are ready)."""
        conns = self._all_attached(deadline)
        return [part for part, conn in enumerate(conns)
                if self._frame(part, conn, deadline)[0] == NEEDS_DATA]

    def _all_attached(self, deadline: Deadline) -> list:
        with self._cond:
            while len(self._conns) < self.partitions:
                if self._aborted is not None:
                    raise LinkBroken(-1, self._aborted)
                try:
                    self._cond.wait(deadline.left())
                except OSError:  # Deadline.left(): socket.timeout
                    missing = sorted(set(range(self.partitions)) - set(self._conns))
                    raise RoundTimeoutError(
                        f"partition(s) {missing} did not connect within the segment's "
                        f"deadline of {deadline.seconds:.0f} s") from None
            return [self._conns[p] for p in range(self.partitions)]

    def _conn(self, part: int):
        with self._cond:
            if self._aborted is not None:
                raise LinkBroken(part, self._aborted)
            return self._conns[part]

    def _frame(self, part: int, conn, deadline: Deadline, into: Optional[np.ndarray] = None):
        """One frame from `part`: (kind, meta), its weights read into `into`."""
        try:
            kind, meta_len, nbytes = _recv_struct(conn, _FRAME, deadline)
            body = bytearray(meta_len)
            recv_exactly(conn, memoryview(body), deadline)
            expected = 0 if into is None or kind != RESULT else into.nbytes
            if nbytes == expected and nbytes:
                recv_exactly(conn, memoryview(into).cast("B"), deadline)
            meta = json.loads(body or b"{}")
        except (OSError, ValueError) as error:
            if deadline.expired():
                raise RoundTimeoutError(f"partition {part} sent nothing within the round's "
                                        f"deadline of {deadline.seconds:.0f} s") from None
            raise LinkBroken(part, f"link lost ({type(error).__name__}: {error})") from None
        if kind == ERROR:
            raise worker_error(part, meta)
        if nbytes != expected:
            raise LinkBroken(part, f"sent {nbytes} weight bytes, expected {expected}")
        return kind, meta

    def round(self, round_no: int, tau: int, weights: np.ndarray,
              deadline: Deadline) -> tuple[np.ndarray, list]:
        """Send the round to every worker; (sum of their weights in partition order,
        their stats in partition order)."""
        header = _ROUND.pack(round_no, tau, weights.nbytes)
        sends = [self._pool.submit(self._send, part, header, weights)
                 for part in range(self.partitions)]
        try:
            return self._gather(sends, weights.size, deadline)
        except BaseException:
            wait(sends)
            raise

    def _send(self, part: int, header: bytes, weights: np.ndarray) -> None:
        conn = self._conn(part)
        try:
            conn.settimeout(TRANSFER_S)
            conn.sendall(header)
            conn.sendall(memoryview(weights).cast("B"))
        except OSError as error:
            raise LinkBroken(part, f"link lost sending the weights ({error})") from None

    def _gather(self, sends: list, size: int, deadline: Deadline) -> tuple[np.ndarray, list]:
        """Partitions 0 and 1 read side by side (as WeightExchange.gather), the rest in
        turn into one receive buffer, each added in partition order."""
        total = np.empty(size, np.float32)
        if self._receive is None or self._receive.size != size:
            self._receive = np.empty(size, np.float32)
        stats = [None] * self.partitions
        first = self._pool.submit(self._result, 0, sends[0], total, deadline)
        try:
            for part in range(1, self.partitions):
                stats[part] = self._result(part, sends[part], self._receive, deadline)
                if part == 1:
                    stats[0] = first.result()
                total += self._receive
        except BaseException:
            self.abort("a worker's result failed")  # wakes partition 0's reader
            first.exception()
            raise
        stats[0] = first.result()
        return total, stats

    def _result(self, part: int, sent, into: np.ndarray, deadline: Deadline) -> dict:
        # A TLS connection is not to be read and written at once: the send goes first.
        sent.result()
        kind, meta = self._frame(part, self._conn(part), deadline, into)
        if kind != RESULT:
            raise LinkBroken(part, f"sent frame {kind} where a result belongs")
        return meta

    def end(self) -> None:
        """Tell every worker the segment is over (best effort: a gone one is gone)."""
        end = _ROUND.pack(0, 0, 0)
        with self._cond:
            conns = list(self._conns.values())
        for conn in conns:
            try:
                conn.settimeout(TRANSFER_S)
                conn.sendall(end)
            except OSError:
                pass


# --- the worker's end ---------------------------------------------------------
def _connect(ticket: Ticket, part: int):
    """The partition's link, accepted by the driver; retries while the driver is
    unreachable or busy, up to CONNECT_S."""
    deadline, pause, last = Deadline(CONNECT_S), 0.1, None
    while not deadline.expired():
        conn = None
        try:
            conn = _open(ticket, deadline)
            conn.sendall(_HELLO.pack(SEGMENT_MAGIC, ticket.secret, ticket.round, part))
            recv_exactly(conn, memoryview(bytearray(1)), Deadline(min(TRANSFER_S,
                                                                         deadline.left())))
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
    raise TransportError(f"this worker's segment link to the driver's weight exchange at "
                         f"{host}:{port} was not accepted within {CONNECT_S:.0f} s ({last}); "
                         "executors must reach the driver at spark.driver.host")


def work_segment(ticket: Ticket, part: int, prepare: Callable, step: Callable,
                 buffer_for: Callable) -> dict:
    """The worker's end of a segment. prepare() -> the solver (None: none here,
    and the task carried no data);
    step(solver, round, tau, weights) -> (weights to send, stats dict);
    buffer_for(solver, nbytes) -> where the weights are received. Returns what
    happened (rounds trained, how it ended); raises only when the driver cannot
    be reached."""
    try:
        solver, error = prepare(), None
    except Exception as failure:  # noqa: BLE001 - reported to the driver
        solver, error = None, failure
    conn = _connect(ticket, part)
    with conn:
        try:
            if error is not None:
                _send_frame(conn, ERROR, _error_meta(error))
                return {"ended": "error", "rounds": 0}
            if solver is None:
                _send_frame(conn, NEEDS_DATA)
                return {"ended": "needs data", "rounds": 0}
            _send_frame(conn, READY)
            return _serve_rounds(conn, ticket, solver, step, buffer_for)
        except OSError as lost:  # the driver ended the segment or went away
            return {"ended": f"link closed ({type(lost).__name__})", "rounds": None}


def _serve_rounds(conn, ticket: Ticket, solver, step, buffer_for) -> dict:
    rounds = 0
    while True:
        # Between rounds the driver validates and checkpoints: the round's deadline.
        round_no, tau, nbytes = _recv_struct(conn, _ROUND, Deadline(ticket.deadline_s))
        if nbytes == 0:
            return {"ended": "segment over", "rounds": rounds}
        weights = buffer_for(solver, nbytes)
        conn.settimeout(TRANSFER_S)
        recv_exactly(conn, memoryview(weights).cast("B"))
        try:
            trained, stats = step(solver, round_no, tau, weights)
        except Exception as failure:  # noqa: BLE001 - reported to the driver
            _send_frame(conn, ERROR, _error_meta(failure))
            return {"ended": "error", "rounds": rounds}
        conn.settimeout(TRANSFER_S)
        _send_frame(conn, RESULT, stats, trained)
        rounds += 1
