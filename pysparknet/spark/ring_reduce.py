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
with the same float32 values.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import ml_dtypes
import numpy as np

from .sockets import byte_view, recv_exactly

PIECE = 1 << 20  # floats received (and added) at a time
WIRE_DTYPES = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16),
               "float16": np.dtype(np.float16)}


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
        self._out = np.empty(0, self.wire or np.float32)

    def reduce_scatter(self, vector: np.ndarray) -> None:
        bounds = chunk_bounds(vector.size, self.parts)
        for step in range(self.parts - 1):
            send = bounds[(self.rank - step) % self.parts]
            take = bounds[(self.rank - step - 1) % self.parts]
            self._exchange(vector, send, take, add=True)

    def owned(self, vector: np.ndarray) -> np.ndarray:
        """After the reduce-scatter: this rank's summed chunk, rounded to the wire type
        (in place) so that every rank ends with the same values."""
        start, end = chunk_bounds(vector.size, self.parts)[owned_chunk(self.rank, self.parts)]
        chunk = vector[start:end]
        if self.wire is not None:
            chunk[:] = chunk.astype(self.wire)
        return chunk

    def on_wire(self, chunk: np.ndarray) -> np.ndarray:
        """A float32 chunk as it travels (a new array when the wire is 16-bit)."""
        return chunk if self.wire is None else chunk.astype(self.wire)

    def all_gather(self, vector: np.ndarray) -> None:
        """After owned(): every rank's chunk to every rank."""
        bounds = chunk_bounds(vector.size, self.parts)
        for step in range(self.parts - 1):
            send = bounds[(self.rank + 1 - step) % self.parts]
            take = bounds[(self.rank - step) % self.parts]
            self._exchange(vector, send, take, add=False)

    def _exchange(self, vector: np.ndarray, send: tuple, take: tuple, add: bool) -> None:
        outgoing = vector[send[0]:send[1]]
        if self.wire is not None:
            if self._out.size < outgoing.size:
                self._out = np.empty(outgoing.size, self.wire)
            outgoing = self._out[:outgoing.size]
            outgoing[:] = vector[send[0]:send[1]]
        sending = self._sender.submit(self.links.right.sendall, byte_view(outgoing))
        try:
            self._receive(vector[take[0]:take[1]], add)
        except BaseException:
            self.links.close()  # wakes the sender: the ring is broken either way
            raise
        sending.result()

    def _receive(self, target: np.ndarray, add: bool) -> None:
        """A chunk from the left into target: added to it, or written over it."""
        if not add and self.wire is None:
            recv_exactly(self.links.left, byte_view(target))
            return
        for start in range(0, target.size, PIECE):
            part = target[start:start + PIECE]
            piece = self._piece[:part.size]
            recv_exactly(self.links.left, byte_view(piece))
            if add:
                np.add(part, piece, out=part)  # float32 + (float32 or a 16-bit wire)
            else:
                part[:] = piece

    def close(self) -> None:
        self._sender.shutdown(wait=False)
