"""The wire of segment rounds: one connection per worker for a whole barrier stage.

In segment mode (rounds.py) one Spark stage runs many rounds. Each of its K
tasks opens one connection to the driver's WeightExchange, which authenticates
it as any other (TLS with the run's certificate, the run secret in the hello)
and hands it to the stage's Links. Over it:

  worker -> driver  hello: segment magic, run secret, the segment's serial, partition
  driver -> worker  u64 1: the connection is the partition's link
  worker -> driver  READY (a solver in hand), NEEDS_DATA (none, and the task
                    carried no data), or ERROR
  then, per round:
  driver -> worker  round, tau, byte count; the weights     (count 0: the segment ends)
  worker -> driver  RESULT with the round's stats (JSON), then its weights, or ERROR
With min_workers < K the driver may close a round before a worker is done:
  driver -> worker  round, 0, STOP       (the worker stops at its next step)
  worker -> driver  DROPPED with its stats, no weights   (or RESULT, if it was
                    done first; a STOP that arrives after it is skipped)

A worker's exceptions travel as ERROR frames (type and message), so the task
itself ends normally and its Python worker, with every solver in it, lives
on; a link that breaks means a lost process, which the driver answers by
rerunning the segment.
"""
from __future__ import annotations

import json
import select
import socket
import ssl
import struct
from contextlib import contextmanager
from typing import Callable, Optional

from .. import errors
from ..errors import RoundTimeoutError, TransportError
from .failures import own_error, own_error_name
from .transport import _SEGMENT_MAGIC as SEGMENT_MAGIC
from .transport import TRANSFER_S, Deadline, Ticket, _recv_struct
from .transport import _reply as connect
from .transport import recv_exactly

ROUND_HEADER = struct.Struct("!QIQ")  # round, tau, weight bytes (0: end of the segment)
FRAME_HEADER = struct.Struct("!BIQ")  # kind, JSON bytes, weight bytes
READY, NEEDS_DATA, RESULT, ERROR, DROPPED = 1, 2, 3, 4, 5
STOP = (1 << 64) - 1  # as a round's byte count: the round is closed, stop training


class LinkBroken(TransportError):
    """A worker's link broke off: its process, or the network between, was lost."""

    def __init__(self, part: int, message: str):
        super().__init__(f"partition {part}: {message}" if part >= 0 else message)
        self.part = part  # -1: the segment as a whole (its job ended before every link)


def worker_error(part: int, meta: dict) -> errors.SparkNetError:
    """A worker's ERROR frame as the exception it reports (pysparknet's own kind)."""
    name, message = meta.get("type", "Exception"), meta.get("message", "")
    where = f"on a worker (partition {part})"
    return own_error(name, f"{where}: {message}") or \
        errors.WorkerError(f"{where}: {name}: {message}")


@contextmanager
def reading(part: int, deadline: Deadline):
    """A failed read from a link as the driver reports it: the round's deadline
    passed, or the link (its worker's process, or the network) was lost."""
    try:
        yield
    except (OSError, ValueError) as error:
        if deadline.expired():
            raise RoundTimeoutError(f"partition {part} sent nothing within the round's "
                                    f"deadline of {deadline.seconds:.0f} s") from None
        raise LinkBroken(part, f"link lost ({type(error).__name__}: {error})") from None


def readable(conn, timeout: float) -> bool:
    """Bytes wait on `conn` (TLS keeps some decrypted in its own buffer), or arrive
    within timeout seconds."""
    if isinstance(conn, ssl.SSLSocket) and conn.pending():
        return True
    poller = select.poll()  # not select(): a driver may hold descriptors past 1024
    poller.register(conn, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(timeout * 1000))


def hang_up(conn) -> None:
    """Close a link so that a thread blocked reading it wakes at once (a bare close
    does not wake it on Linux); the raw shutdown leaves TLS's state alone."""
    try:
        socket.socket.shutdown(conn, socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def _error_meta(error: BaseException) -> dict:
    """An exception as an ERROR frame says it: the nearest pysparknet error kind."""
    return {"type": own_error_name(error), "message": str(error)}


def _send_frame(conn, kind: int, meta: Optional[dict] = None, weights=None) -> None:
    body = json.dumps(meta or {}).encode()
    nbytes = 0 if weights is None else weights.nbytes
    conn.sendall(FRAME_HEADER.pack(kind, len(body), nbytes) + body)
    if nbytes:
        conn.sendall(memoryview(weights).cast("B"))


# --- the worker's end ---------------------------------------------------------
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
    conn, _ = connect(ticket, SEGMENT_MAGIC, part)  # the driver took it as the link
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
        round_no, tau, nbytes = _recv_struct(conn, ROUND_HEADER, Deadline(ticket.deadline_s))
        if nbytes == STOP:  # for a round this worker had answered already
            continue
        if nbytes == 0:
            return {"ended": "segment over", "rounds": rounds}
        weights = buffer_for(solver, nbytes)
        conn.settimeout(TRANSFER_S)
        recv_exactly(conn, memoryview(weights).cast("B"))
        try:
            trained, stats = step(solver, round_no, tau, weights, _StopWatch(conn, round_no))
        except Exception as failure:  # noqa: BLE001 - reported to the driver
            _send_frame(conn, ERROR, _error_meta(failure))
            return {"ended": "error", "rounds": rounds}
        conn.settimeout(TRANSFER_S)
        _send_frame(conn, RESULT if trained is not None else DROPPED, stats, trained)
        rounds += 1


class _StopWatch:
    """Between solver steps: has the driver closed this round without us (min_workers)?
    Nothing else comes from the driver mid-round, so anything readable is its STOP."""

    def __init__(self, conn, round_no: int):
        self.conn, self.round_no, self.stopped = conn, round_no, False

    def __call__(self) -> bool:
        if not self.stopped and readable(self.conn, 0.0):
            round_no, _, nbytes = _recv_struct(self.conn, ROUND_HEADER, Deadline(TRANSFER_S))
            if nbytes != STOP or round_no != self.round_no:
                raise TransportError(f"the driver sent {nbytes} bytes for round {round_no} "
                                     f"in the middle of round {self.round_no}")
            self.stopped = True
        return self.stopped
