"""Ring allreduce of one float32 vector over a worker's peer links (ring_links.py).

The vector is cut into K chunks. Reduce-scatter: in step s (0..K-2) rank r
sends chunk r-s to rank r+1 and adds chunk r-s-1 from rank r-1 into its own;
after K-1 steps rank r holds the sum of chunk r+1 over every rank. All-gather:
in step s rank r sends chunk r+1-s and takes chunk r-s. Each link carries
2(K-1)/K of the vector. The order of every sum is fixed by the ring, so a
seeded run gives the same bits every time.

The chunk a rank sends in step s+1 is the one it took in step s, so the two
phases run as one pipeline of pieces: each piece goes on to the right as soon
as it has landed (and been added), on a sender thread beside the receiving.
No step waits for the slowest link's whole chunk before the next begins.

With a 16-bit wire (exchange dtype 'bfloat16' or 'float16') every piece
travels in that type and is added in float32; each owner rounds its summed
chunk to the wire type once, so every rank (and the driver) ends with the same
float32 values. The all-gather forwards pieces as they came and hands each
piece's values on as it lands (the workers make their next start of them while
the rest is still on the way).
"""
from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import TransportError
from .sockets import byte_view, recv_exactly
from .wire_types import WireCast

PIECE = 1 << 20  # floats received, added and sent on at a time


def chunk_bounds(size: int, parts: int) -> list:
    """[(start, end)] of the K chunks of a vector of `size` floats."""
    edges = [size * c // parts for c in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def owned_chunk(rank: int, parts: int) -> int:
    """The chunk whose sum rank ends the reduce-scatter with."""
    return (rank + 1) % parts


def pieces(bounds: tuple):
    """A chunk's (lo, hi) pieces, in the order they travel."""
    start, end = bounds
    return ((lo, min(lo + PIECE, end)) for lo in range(start, end, PIECE))


class RingReduce:
    """Rank `rank` of `parts`, over links with .left (read) and .right (written);
    wire: the dtype chunks travel in (None: float32 as they are)."""

    def __init__(self, links, rank: int, parts: int, wire=None):
        self.links, self.rank, self.parts = links, rank, parts
        self.wire = None if wire is None or np.dtype(wire) == np.float32 else np.dtype(wire)
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparknet-ring")
        self._piece = np.empty(PIECE, self.wire or np.float32)
        self._values = np.empty(PIECE if self.wire is not None else 0, np.float32)
        self._out = np.empty(PIECE if self.wire is not None else 0, self.wire or np.float32)
        self._gathered = np.empty(0, self.wire or np.float32)  # a 16-bit all-gather's
        self._cast = WireCast(self.wire or np.float32, PIECE)  # the receiving thread's
        self._send_cast = WireCast(self.wire or np.float32, PIECE)  # the sender's

    def allreduce(self, vector: np.ndarray, land=None) -> np.ndarray:
        """Sum vector over the ring. float32: the sum lands in vector. A 16-bit wire:
        land(lo, hi, values) takes each piece's float32 values as it lands (default:
        written into vector). Returns this rank's owned chunk as it travelled (a view,
        rewritten by the next call), which the driver is owed."""
        if self.wire is not None:
            land = land or _written_into(vector)
            if self._gathered.size != vector.size:
                self._gathered = np.empty(vector.size, self.wire)
        bounds = chunk_bounds(vector.size, self.parts)
        outbox: queue.SimpleQueue = queue.SimpleQueue()
        sending = self._sender.submit(self._send_all, outbox) if self.parts > 1 else None
        try:
            self._queue(outbox, vector, bounds[self.rank], converted=self.wire is not None)
            self._reduce_scatter(outbox, vector, bounds, land)
            self._all_gather(outbox, vector, bounds, land)
        except BaseException:
            self.links.close()  # wakes the sender: the ring is broken either way
            raise
        finally:
            outbox.put(None)
        if sending is not None:
            sending.result()
        own = bounds[owned_chunk(self.rank, self.parts)]
        return (vector if self.wire is None else self._gathered)[own[0]:own[1]]

    def _reduce_scatter(self, outbox, vector: np.ndarray, bounds: list, land) -> None:
        """Take chunk r-s-1 in step s, add it, and send it on (the last step's, this
        rank's own sum, rounded to the wire first)."""
        for step in range(self.parts - 1):
            last = step == self.parts - 2
            for lo, hi in pieces(bounds[(self.rank - step - 1) % self.parts]):
                self._receive_added(vector[lo:hi])
                if not last:
                    self._queue(outbox, vector, (lo, hi), converted=self.wire is not None)
                else:
                    self._own_piece(outbox, vector, lo, hi, land)
        if self.parts == 1:
            for lo, hi in pieces(bounds[0]):
                self._own_piece(outbox, vector, lo, hi, land)

    def _own_piece(self, outbox, vector: np.ndarray, lo: int, hi: int, land) -> None:
        """A piece of this rank's summed chunk: to the all-gather as it will travel."""
        if self.wire is None:
            self._queue(outbox, vector, (lo, hi))
            return
        self._cast.to_wire(vector[lo:hi], self._gathered[lo:hi])
        self._queue(outbox, self._gathered, (lo, hi))
        self._land(lo, hi, land)

    def _all_gather(self, outbox, vector: np.ndarray, bounds: list, land) -> None:
        """Take chunk r-s in step s, keep it and send it on (the last step's stops)."""
        gathered = vector if self.wire is None else self._gathered
        for step in range(self.parts - 1):
            last = step == self.parts - 2
            for lo, hi in pieces(bounds[(self.rank - step) % self.parts]):
                recv_exactly(self.links.left, byte_view(gathered[lo:hi]))
                if not last:
                    self._queue(outbox, gathered, (lo, hi))
                if self.wire is not None:
                    self._land(lo, hi, land)

    def _queue(self, outbox, source: np.ndarray, span: tuple, converted: bool = False) -> None:
        """Pieces of source[span] for the sender, in order (converted: float32 that
        travels in the wire type, converted as it goes)."""
        if self.parts > 1:
            for lo, hi in pieces(span):
                outbox.put((source[lo:hi], converted))

    def _send_all(self, outbox) -> None:
        """The sender thread: each queued piece to the right, until None."""
        try:
            self._send_queued(outbox)
        except BaseException:
            self.links.close()  # the receiving fails at once instead of at its deadline
            raise

    def _send_queued(self, outbox) -> None:
        idle_s = self.links.right.gettimeout()  # the links' own pause limit (ring_links)
        while True:
            try:
                item = outbox.get(timeout=idle_s)
            except queue.Empty:
                raise TransportError(f"ring rank {self.rank}: nothing to send on for "
                                     f"{idle_s:.0f} s") from None
            if item is None:
                return
            values, converted = item
            if converted:
                wire = self._out[:values.size]
                self._send_cast.to_wire(values, wire)
                values = wire
            self.links.right.sendall(byte_view(values))

    def _land(self, lo: int, hi: int, land) -> None:
        values = self._values[:hi - lo]
        self._cast.from_wire(self._gathered[lo:hi], values)
        land(lo, hi, values)

    def _receive_added(self, target: np.ndarray) -> None:
        """A piece from the left, added into target (in float32)."""
        piece = self._piece[:target.size]
        recv_exactly(self.links.left, byte_view(piece))
        if self.wire is not None:
            values = self._values[:target.size]
            self._cast.from_wire(piece, values)
            piece = values
        np.add(target, piece, out=target)

    def close(self) -> None:
        self._sender.shutdown(wait=False)


def _written_into(vector: np.ndarray):
    """An all-gather's default place for the pieces' values: the vector itself."""
    def land(lo: int, hi: int, values: np.ndarray) -> None:
        vector[lo:hi] = values
    return land
