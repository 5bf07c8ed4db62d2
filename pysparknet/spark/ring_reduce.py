"""Ring allreduce of one float32 vector over a worker's peer links (ring_links.py).

The vector is cut into K chunks. Reduce-scatter: in step s (0..K-2) rank r
sends chunk r-s to rank r+1 and adds chunk r-s-1 from rank r-1 into its own;
after K-1 steps rank r holds the sum of chunk r+1 over every rank. All-gather:
in step s rank r sends chunk r+1-s and takes chunk r-s as it comes. Each link
carries 2(K-1)/K of the vector. Sending and receiving overlap (a sender thread);
a chunk is received in pieces, each added as it lands. The order of every sum
is fixed by the ring, so a seeded run gives the same bits every time.

With a 16-bit wire (exchange dtype 'bfloat16' or 'float16') every chunk
travels in that type and is added in float32; before the all-gather each owner
rounds its summed chunk to the wire type, so every rank (and the driver) ends
with the same float32 values. The all-gather forwards chunks as they came
and hands each piece's values on as it lands (the workers make their next
start of them while the rest is still on the way).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .sockets import byte_view, recv_exactly
from .wire_types import WireCast

PIECE = 1 << 20  # floats received (and added) at a time


def chunk_bounds(size: int, parts: int) -> list:
    """[(start, end)] of the K chunks of a vector of `size` floats."""
    edges = [size * c // parts for c in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def owned_chunk(rank: int, parts: int) -> int:
    """The chunk whose sum rank ends the reduce-scatter with."""
    return (rank + 1) % parts


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
        self._cast = WireCast(self.wire or np.float32, PIECE)

    def reduce_scatter(self, vector: np.ndarray) -> None:
        bounds = chunk_bounds(vector.size, self.parts)
        for step in range(self.parts - 1):
            send = bounds[(self.rank - step) % self.parts]
            take = bounds[(self.rank - step - 1) % self.parts]
            self._exchange(vector, send, take, add=True)

    def owned(self, vector: np.ndarray) -> np.ndarray:
        """After the reduce-scatter: this rank's summed chunk as it travels: a view of
        vector, or (a 16-bit wire) rounded to it once, in the all-gather's wire
        vector, so that every rank (and the driver) ends with the same values."""
        start, end = chunk_bounds(vector.size, self.parts)[owned_chunk(self.rank, self.parts)]
        if self.wire is None:
            return vector[start:end]
        if self._gathered.size != vector.size:
            self._gathered = np.empty(vector.size, self.wire)
        for lo in range(start, end, PIECE):
            hi = min(lo + PIECE, end)
            self._cast.to_wire(vector[lo:hi], self._gathered[lo:hi])
        return self._gathered[start:end]

    def all_gather(self, vector: np.ndarray, land=None) -> None:
        """After owned(): every rank's chunk to every rank. float32: into vector. A
        16-bit wire: each chunk is forwarded as it came, and land(lo, hi, values) takes
        each piece's float32 values as it lands, this rank's own chunk first (default:
        written into vector), so the work on them overlaps the network's."""
        bounds = chunk_bounds(vector.size, self.parts)
        own = bounds[owned_chunk(self.rank, self.parts)]
        if self.wire is not None:
            land = land or _written_into(vector)
            if self.parts == 1:
                self._land(*own, land)
        for step in range(self.parts - 1):
            send = bounds[(self.rank + 1 - step) % self.parts]
            take = bounds[(self.rank - step) % self.parts]
            if self.wire is None:
                self._exchange(vector, send, take, add=False)
            else:  # the own chunk (step 0's to send) lands while it goes
                self._forward(send, take, land, own if step == 0 else None)

    def _exchange(self, vector: np.ndarray, send: tuple, take: tuple, add: bool) -> None:
        outgoing = vector[send[0]:send[1]]
        if self.wire is None:
            sending = self._sender.submit(self.links.right.sendall, byte_view(outgoing))
        else:
            sending = self._sender.submit(self._send_converted, outgoing)
        try:
            self._receive(vector[take[0]:take[1]], add)
        except BaseException:
            self.links.close()  # wakes the sender: the ring is broken either way
            raise
        sending.result()

    def _send_converted(self, outgoing: np.ndarray) -> None:
        """A float32 chunk to the right in the wire type, a piece converted at a time
        (on the sender's thread, beside the receiving)."""
        for start in range(0, outgoing.size, PIECE):
            piece = self._out[:min(PIECE, outgoing.size - start)]
            self._cast.to_wire(outgoing[start:start + piece.size], piece)
            self.links.right.sendall(byte_view(piece))

    def _forward(self, send: tuple, take: tuple, land, own=None) -> None:
        """A 16-bit all-gather's step: send a chunk as it came, take the next (own:
        this rank's chunk, landed first while the send goes)."""
        gathered = self._gathered
        sending = self._sender.submit(self.links.right.sendall,
                                      byte_view(gathered[send[0]:send[1]]))
        try:
            if own is not None:
                self._land(*own, land)
            for lo in range(take[0], take[1], PIECE):
                hi = min(lo + PIECE, take[1])
                recv_exactly(self.links.left, byte_view(gathered[lo:hi]))
                self._land(lo, hi, land)
        except BaseException:
            self.links.close()
            raise
        sending.result()

    def _land(self, lo: int, hi: int, land) -> None:
        for start in range(lo, hi, PIECE):
            end = min(start + PIECE, hi)
            values = self._values[:end - start]
            self._cast.from_wire(self._gathered[start:end], values)
            land(start, end, values)

    def _receive(self, target: np.ndarray, add: bool) -> None:
        """A chunk from the left into target: added to it a piece at a time (in the
        wire's type), or written over it (float32's all-gather; a 16-bit one forwards)."""
        if not add:
            recv_exactly(self.links.left, byte_view(target))
            return
        for start in range(0, target.size, PIECE):
            part = target[start:start + PIECE]
            piece = self._piece[:part.size]
            recv_exactly(self.links.left, byte_view(piece))
            if self.wire is not None:
                piece = self._values[:part.size]
                self._cast.from_wire(self._piece[:part.size], piece)
            np.add(part, piece, out=part)

    def close(self) -> None:
        self._sender.shutdown(wait=False)


def _written_into(vector: np.ndarray):
    """An all-gather's default place for the pieces' values: the vector itself."""
    def land(lo: int, hi: int, values: np.ndarray) -> None:
        vector[lo:hi] = values
    return land
