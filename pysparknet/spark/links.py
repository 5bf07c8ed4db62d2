"""The driver's end of a segment's links (the wire: segment_link.py).

Links are attached by the exchange's serving threads as the segment's tasks
connect; the round loop then sends each round to every worker and takes the
results back:

- every result (the default): summed in partition order, so the mean is exact
  and reproducible (transport.add_in_partition_order, as WeightExchange.gather);
- weighted by the iterations each worker did (round_seconds): each vector
  scaled by its count before it is added, the sum divided by their total;
- the first M of K (min_workers): summed as they arrive; then the late workers
  are told to stop and their results dropped. One thread per link reads and
  writes it (a TLS connection is not to be read and written at once).
"""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Optional

import numpy as np

from ..errors import RoundTimeoutError
from .segment_link import (DROPPED, ERROR, FRAME_HEADER, NEEDS_DATA, RESULT, ROUND_HEADER,
                           STOP, LinkBroken, hang_up, readable, reading, worker_error)
from .transport import (TRANSFER_S, Deadline, _recv_struct, add_in_partition_order,
                        recv_exactly)

POLL_S = 0.01  # how often a late worker's reader looks whether the round has closed


class Links:
    """One segment's K links."""

    def __init__(self, serial: int, partitions: int):
        self.serial, self.partitions = serial, partitions
        self._conns: dict = {}
        self._cond = threading.Condition()
        self._aborted: Optional[str] = None
        self._pool = ThreadPoolExecutor(max_workers=2 * partitions + 1,
                                        thread_name_prefix="sparknet-link")
        self._receive: Optional[np.ndarray] = None

    # --- attaching and ending -------------------------------------------------
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
            hang_up(conn)

    def close(self) -> None:
        self.abort("the segment ended")
        self._pool.shutdown(wait=True)

    def end(self) -> None:
        """Tell every worker the segment is over (best effort: a gone one is gone)."""
        end = ROUND_HEADER.pack(0, 0, 0)
        with self._cond:
            conns = list(self._conns.values())
        for conn in conns:
            try:
                conn.settimeout(TRANSFER_S)
                conn.sendall(end)
            except OSError:
                pass

    def ready(self, deadline: Deadline) -> list:
        """Wait for every partition's first frame: the partitions whose worker has no
        solver and whose task carried no data (empty: all are ready)."""
        conns = self._all_attached(deadline)
        return [part for part, conn in enumerate(conns)
                if self._head(part, conn, deadline)[0] == NEEDS_DATA]

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

    # --- frames ---------------------------------------------------------------
    def _head(self, part: int, conn, deadline: Deadline) -> tuple[int, dict, int]:
        """A frame's kind and meta (a worker's ERROR raised as its error), and how many
        weight bytes follow."""
        with reading(part, deadline):
            kind, meta_len, nbytes = _recv_struct(conn, FRAME_HEADER, deadline)
            body = bytearray(meta_len)
            recv_exactly(conn, memoryview(body), deadline)
            meta = json.loads(body or b"{}")
        if kind == ERROR:
            raise worker_error(part, meta)
        return kind, meta, nbytes

    def _weights(self, part: int, conn, deadline: Deadline, into: Optional[np.ndarray],
                 nbytes: int) -> None:
        """The frame's weight bytes into `into` (none expected when it is None)."""
        expected = 0 if into is None else into.nbytes
        if nbytes != expected:
            raise LinkBroken(part, f"sent {nbytes} weight bytes, expected {expected}")
        if nbytes:
            with reading(part, deadline):
                recv_exactly(conn, memoryview(into).cast("B"), deadline)

    def _result(self, part: int, sent, into: np.ndarray, deadline: Deadline) -> dict:
        sent.result()  # a TLS connection is not to be read and written at once
        conn = self._conn(part)
        kind, meta, nbytes = self._head(part, conn, deadline)
        if kind != RESULT:
            raise LinkBroken(part, f"sent frame {kind} where a result belongs")
        self._weights(part, conn, deadline, into, nbytes)
        return meta

    # --- rounds ---------------------------------------------------------------
    def round(self, round_no: int, tau: int, weights: np.ndarray, deadline: Deadline,
              weighted: bool = False, quorum: Optional[int] = None):
        """Send the round to every worker; (sum of their weights, the number to divide
        it by for the mean, their stats in partition order)."""
        header = ROUND_HEADER.pack(round_no, tau, weights.nbytes)
        sends = [self._pool.submit(self._send, part, header, weights)
                 for part in range(self.partitions)]
        if self._receive is None or self._receive.size != weights.size:
            self._receive = np.empty(weights.size, np.float32)
        try:
            if quorum is not None and quorum < self.partitions:
                return _Quorum(self, round_no, quorum, weighted).gather(sends, deadline)
            return self._in_order(sends, weights.size, deadline, weighted)
        except BaseException:
            self.abort("a worker's result failed")  # wakes every reader
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

    def _in_order(self, sends: list, size: int, deadline: Deadline, weighted: bool):
        """Every result, added in partition order (scaled by its iterations, if weighted)."""
        def read(part: int, into: np.ndarray) -> dict:
            meta = self._result(part, sends[part], into, deadline)
            _scale(into, meta, weighted)
            return meta
        total = np.empty(size, np.float32)
        stats = add_in_partition_order(self.partitions, total, self._receive, read,
                                       lambda: self.abort("a worker's result failed"))
        divisor = sum(s["iterations"] for s in stats) if weighted else self.partitions
        return total, divisor, stats

    def stop(self, part: int, round_no: int) -> None:
        """Close the round for `part`'s worker (from the thread that reads its link)."""
        conn = self._conn(part)
        with reading(part, Deadline(TRANSFER_S)):
            conn.sendall(ROUND_HEADER.pack(round_no, 0, STOP))


def _scale(vector: np.ndarray, stats: dict, weighted: bool) -> np.ndarray:
    """A worker's weights scaled in place by the iterations it did (weighted rounds)."""
    if weighted:
        np.multiply(vector, np.float32(stats["iterations"]), out=vector)
    return vector


class _Quorum:
    """One round's M-of-K gather: one reader per link, the first M results summed as
    they arrive; once M are in, the others are told to stop and their results (or
    their DROPPED frames) are drained."""

    def __init__(self, links: Links, round_no: int, needed: int, weighted: bool):
        self.links, self.round_no, self.needed, self.weighted = links, round_no, needed, weighted
        self.lock = threading.Lock()  # one weight transfer at a time: one receive buffer
        self.taken: list = []
        self.total: Optional[np.ndarray] = None

    def gather(self, sends: list, deadline: Deadline):
        size = self.links._receive.size
        self.total = np.zeros(size, np.float32)
        readers = [self.links._pool.submit(self._read, part, sends[part], deadline)
                   for part in range(self.links.partitions)]
        stats = [reader.result() for reader in readers]
        divisor = (sum(stats[p]["iterations"] for p in self.taken) if self.weighted
                   else len(self.taken))
        for part, meta in enumerate(stats):
            meta["dropped"] = part not in self.taken
        return self.total, divisor, stats

    def _read(self, part: int, sent, deadline: Deadline) -> dict:
        sent.result()
        conn, stopped = self.links._conn(part), False
        while not readable(conn, POLL_S):
            if deadline.expired():
                raise RoundTimeoutError(f"round {self.round_no + 1}: fewer than "
                                        f"{self.needed} results within the round's deadline "
                                        f"of {deadline.seconds:.0f} s")
            if not stopped and self.closed():
                self.links.stop(part, self.round_no)
                stopped = True
        kind, meta, nbytes = self.links._head(part, conn, deadline)
        if kind not in (RESULT, DROPPED):
            raise LinkBroken(part, f"sent frame {kind} where a result belongs")
        with self.lock:  # a late RESULT is read too, and dropped
            receive = self.links._receive if kind == RESULT else None
            self.links._weights(part, conn, deadline, receive, nbytes)
            if kind == RESULT and len(self.taken) < self.needed:
                self.total += _scale(receive, meta, self.weighted)
                self.taken.append(part)
        return meta

    def closed(self) -> bool:
        with self.lock:
            return len(self.taken) >= self.needed
