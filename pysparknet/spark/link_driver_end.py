"""The driver's end of a stage's links (the protocol: link_protocol.py).

The listener (transport.py) attaches each task's authenticated connection as
its partition's link; the round loop then sends each round to every worker
and takes the results back:

- every result (the default): summed in partition order, so the mean is exact
  and reproducible;
- weighted by the iterations each worker did (round_seconds): each vector
  scaled by its count before it is added, the sum divided by their total;
- the first M of K (min_workers): summed as they arrive; then the late workers
  are told to stop and their results dropped.
One thread per link reads and writes it (a TLS connection is not to be read
and written at once).
"""
from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Callable, Optional

import numpy as np

from ..errors import RoundTimeoutError
from .link_protocol import (DROPPED, END, ERROR, FRAME_HEADER, NEEDS_DATA, PEERS, RESULT,
                            ROUND, STOP, LinkBroken, RoundStats, round_header, worker_error)
from .sockets import Deadline, byte_view, hang_up, readable, recv_exactly, recv_struct
from .transport import TRANSFER_S
from .wire_types import wire_dtype

_LOG = logging.getLogger("pysparknet")
POLL_S = 0.01  # how often a late worker's reader looks whether the round has closed


@contextmanager
def reading(part: int, deadline: Deadline, host: str = ""):
    """A failed read from a link as the driver reports it: the round's deadline
    passed, or the link (its worker's process, or the network) was lost."""
    try:
        yield
    except (OSError, ValueError) as error:
        if deadline.expired():
            where = f"partition {part}" + (f" on {host}" if host else "")
            raise RoundTimeoutError(f"{where} sent nothing within the round's deadline of "
                                    f"{deadline.seconds:.0f} s") from None
        raise LinkBroken(part, f"link lost ({type(error).__name__}: {error})", host) from None


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


class DriverLinks:
    """One stage's K links, seen from the driver."""

    def __init__(self, serial: int, partitions: int, ring=None):
        """ring: exchange='ring', the class that runs its rounds over these links
        (ring_driver_end.RingRounds; given by the stage, which sits above both)."""
        self.serial, self.partitions, self.ring = serial, partitions, ring is not None
        self.ring_addresses: list = []  # exchange='ring': each worker's, from READY
        self.hosts: dict = {}  # partition -> the address its link came from, for errors
        self._ring = ring(self) if ring is not None else None
        self._conns: dict = {}
        self._cond = threading.Condition()
        self._aborted: Optional[str] = None
        self.pool = ThreadPoolExecutor(max_workers=2 * partitions + 1,
                                       thread_name_prefix="sparknet-link")
        self._receive: Optional[np.ndarray] = None

    # --- attaching and ending -------------------------------------------------
    def attach(self, serial: int, part: int, conn) -> bool:
        """Take `conn` as partition `part`'s link (False: another stage's, a partition
        that has one, or the stage ended)."""
        with self._cond:
            if (serial != self.serial or not 0 <= part < self.partitions
                    or self._aborted is not None or part in self._conns):
                return False
            self._conns[part] = conn
            self.hosts[part] = _peer_host(conn)
            self._cond.notify_all()
        return True

    def abort(self, why: str = "the stage was aborted") -> None:
        """Close every link: the workers' tasks end, the round loop's waits raise."""
        with self._cond:
            if self._aborted is None:
                self._aborted = why
            conns, self._conns = list(self._conns.values()), {}
            self._cond.notify_all()
        for conn in conns:
            hang_up(conn)

    def close(self) -> None:
        """Tell every worker the stage is over (best effort: a gone one is gone),
        then close the links."""
        ended = False
        if self._ring is not None:
            try:
                self._ring.finish()  # a round sent ahead, let finish and dropped
            except Exception as error:  # noqa: BLE001 - the links close either way
                _LOG.warning("SparkNet: the ring's round sent ahead did not finish (%s)", error)
            ended = self._ring.ended
        with self._cond:
            conns = [] if ended else list(self._conns.values())
        for conn in conns:
            try:
                conn.settimeout(TRANSFER_S)
                conn.sendall(round_header(END))
            except OSError:
                pass
        self.abort("the stage ended")
        self.pool.shutdown(wait=True)

    def ready(self, deadline: Deadline) -> list:
        """Wait for every partition's first frame: the partitions whose worker has no
        solver and whose task carried no data (empty: all are ready)."""
        conns = self._all_attached(deadline)
        firsts = [self._head(part, conn, deadline) for part, conn in enumerate(conns)]
        needs_data = [part for part, (kind, _, _) in enumerate(firsts) if kind == NEEDS_DATA]
        if self.ring and not needs_data:
            self.ring_addresses = [_ring_address(part, body)
                                   for part, (_, body, _) in enumerate(firsts)]
        return needs_data

    def send_peers(self) -> None:
        """exchange='ring': every worker gets the ring's addresses, in rank order."""
        body = json.dumps({"peers": self.ring_addresses}).encode()
        for part in range(self.partitions):
            conn = self.conn(part)
            try:
                conn.settimeout(TRANSFER_S)
                conn.sendall(round_header(PEERS, nbytes=len(body)) + body)
            except OSError as error:
                raise self.broken(part, f"link lost sending the ring's addresses ({error})") \
                    from None

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
                        f"partition(s) {missing} did not connect within the stage's "
                        f"deadline of {deadline.seconds:.0f} s") from None
            return [self._conns[p] for p in range(self.partitions)]

    def broken(self, part: int, message: str) -> LinkBroken:
        return LinkBroken(part, message, self.hosts.get(part, ""))

    def conn(self, part: int):
        with self._cond:
            if self._aborted is not None:
                raise self.broken(part, self._aborted)
            return self._conns[part]

    # --- frames ---------------------------------------------------------------
    def _head(self, part: int, conn, deadline: Deadline) -> tuple[int, bytes, int]:
        """A frame's kind and JSON body (a worker's ERROR raised as its error), and how
        many weight bytes follow."""
        with reading(part, deadline, self.hosts.get(part, "")):
            kind, body_len, nbytes = recv_struct(conn, FRAME_HEADER, deadline)
            body = bytearray(body_len)
            recv_exactly(conn, memoryview(body), deadline)
        if kind == ERROR:
            raise worker_error(part, bytes(body))
        return kind, bytes(body), nbytes

    def weights_into(self, part: int, conn, deadline: Deadline, into: Optional[np.ndarray],
                     nbytes: int) -> None:
        """The frame's weight bytes into `into` (none expected when it is None)."""
        expected = 0 if into is None else into.nbytes
        if nbytes != expected:
            raise self.broken(part, f"sent {nbytes} weight bytes, expected {expected}")
        if nbytes:
            with reading(part, deadline, self.hosts.get(part, "")):
                recv_exactly(conn, byte_view(into), deadline)

    def read_result(self, part: int, deadline: Deadline, kinds=(RESULT,)):
        """(frame kind, the worker's RoundStats, weight bytes to follow)."""
        conn = self.conn(part)
        kind, body, nbytes = self._head(part, conn, deadline)
        if kind not in kinds:
            raise self.broken(part, f"sent frame {kind} where a result belongs")
        return kind, RoundStats.from_json(body), nbytes

    # --- rounds ---------------------------------------------------------------
    def round(self, round_no: int, tau: int, weights: np.ndarray, deadline: Deadline,
              weighted: bool = False, quorum: Optional[int] = None, wire: str = "float32",
              next_tau: Optional[int] = None):
        """Send the round to every worker; (sum of their weights, the number to divide
        it by for the mean, their RoundStats in partition order). wire: the ring's
        chunk type; next_tau: the ring's next round in this stage (ring_driver_end.py)."""
        if self.ring:
            try:
                return self._ring.round(round_no, tau, weights, deadline, wire_dtype(wire),
                                        next_tau)
            except BaseException:
                self.abort("a worker's result failed")  # wakes every reader
                raise
        header = round_header(ROUND, round_no, tau, weights.nbytes)
        sends = [self.pool.submit(self.send, part, header, weights)
                 for part in range(self.partitions)]
        if self._receive is None or self._receive.size != weights.size:
            self._receive = np.empty(weights.size, np.float32)  # the second buffer
        try:
            if quorum is not None and quorum < self.partitions:
                return _Quorum(self, round_no, quorum, weighted).gather(sends, deadline)
            return self._in_order(sends, weights.size, deadline, weighted)
        except BaseException:
            self.abort("a worker's result failed")  # wakes every reader
            wait(sends)
            raise

    def send(self, part: int, header: bytes, weights: Optional[np.ndarray] = None) -> None:
        conn = self.conn(part)
        try:
            conn.settimeout(TRANSFER_S)
            conn.sendall(header)
            if weights is not None:
                conn.sendall(byte_view(weights))
        except OSError as error:
            raise self.broken(part, f"link lost sending the weights ({error})") from None

    def _in_order(self, sends: list, size: int, deadline: Deadline, weighted: bool):
        """Every result, added in partition order (scaled by its iterations, if weighted)."""
        def read(part: int, into: np.ndarray) -> RoundStats:
            sends[part].result()  # a TLS connection is not to be read and written at once
            _, stats, nbytes = self.read_result(part, deadline)
            self.weights_into(part, self.conn(part), deadline, into, nbytes)
            _scale(into, stats, weighted)
            return stats
        total = np.empty(size, np.float32)
        stats = add_in_partition_order(self.partitions, total, self._receive, read,
                                       lambda: self.abort("a worker's result failed"))
        divisor = sum(s.iterations for s in stats) if weighted else self.partitions
        return total, divisor, stats

    def stop(self, part: int, round_no: int) -> None:
        """Close the round for `part`'s worker (from the thread that reads its link)."""
        conn = self.conn(part)
        with reading(part, Deadline(TRANSFER_S), self.hosts.get(part, "")):
            conn.sendall(round_header(STOP, round_no))


def _scale(vector: np.ndarray, stats: RoundStats, weighted: bool) -> np.ndarray:
    """A worker's weights scaled in place by the iterations it did (weighted rounds)."""
    if weighted:
        np.multiply(vector, np.float32(stats.iterations), out=vector)
    return vector


class _Quorum:
    """One round's M-of-K gather: one reader per link, the first M results summed as
    they arrive; once M are in, the others are told to stop and their results (or
    their DROPPED frames) are drained."""

    def __init__(self, links: DriverLinks, round_no: int, needed: int, weighted: bool):
        self.links, self.round_no, self.needed, self.weighted = links, round_no, needed, weighted
        self.lock = threading.Lock()  # one weight transfer at a time: one receive buffer
        self.taken: list = []
        self.total: Optional[np.ndarray] = None

    def gather(self, sends: list, deadline: Deadline):
        self.total = np.zeros(self.links._receive.size, np.float32)
        readers = [self.links.pool.submit(self._read, part, sends[part], deadline)
                   for part in range(self.links.partitions)]
        stats = [reader.result() for reader in readers]
        divisor = (sum(stats[p].iterations for p in self.taken) if self.weighted
                   else len(self.taken))
        for part, one in enumerate(stats):
            one.dropped = part not in self.taken
        return self.total, divisor, stats

    def _read(self, part: int, sent, deadline: Deadline) -> RoundStats:
        sent.result()
        self._wait_readable(part, deadline)
        kind, stats, nbytes = self.links.read_result(part, deadline, (RESULT, DROPPED))
        with self.lock:  # a late RESULT is read too, and dropped
            receive = self.links._receive if kind == RESULT else None
            self.links.weights_into(part, self.links.conn(part), deadline, receive, nbytes)
            if kind == RESULT and len(self.taken) < self.needed:
                self.total += _scale(receive, stats, self.weighted)
                self.taken.append(part)
        return stats

    def _wait_readable(self, part: int, deadline: Deadline) -> None:
        """Until the worker's frame arrives; once the quorum is in, tell it to stop."""
        conn, stopped = self.links.conn(part), False
        while not readable(conn, POLL_S):
            if deadline.expired():
                raise RoundTimeoutError(f"round {self.round_no + 1}: fewer than "
                                        f"{self.needed} results within the round's deadline "
                                        f"of {deadline.seconds:.0f} s")
            if not stopped and self.closed():
                self.links.stop(part, self.round_no)
                stopped = True

    def closed(self) -> bool:
        with self.lock:
            return len(self.taken) >= self.needed


def _ring_address(part: int, body: bytes) -> list:
    """A READY frame's ring address ([host, port]), checked."""
    try:
        host, port = json.loads(body)["ring"]
        if isinstance(host, str) and isinstance(port, int) and 0 < port < 65536:
            return [host, port]
    except (ValueError, KeyError, TypeError):
        pass
    raise LinkBroken(part, f"sent no ring address with READY ({body[:100]!r})")


def _peer_host(conn) -> str:
    try:
        return str(conn.getpeername()[0])
    except (OSError, IndexError):
        return ""
