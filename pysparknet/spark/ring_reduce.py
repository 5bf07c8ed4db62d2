"""Ring allreduce of one float32 vector over a worker's peer links (ring_links.py).

The vector is cut into K chunks. Reduce-scatter: in step s (0..K-2) rank r
sends chunk r-s to rank r+1 and adds chunk r-s-1 from rank r-1 into its own;
after K-1 steps rank r holds the sum of chunk r+1 over every rank. All-gather:
in step s rank r sends chunk r+1-s and takes chunk r-s as it comes. Each link
carries 2(K-1)/K of the vector. Sending and receiving overlap (a sender thread);
a chunk is received in pieces, each added as it lands. The order of every sum
is fixed by the ring, so a seeded run gives the same bits every time.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .sockets import recv_exactly

PIECE = 1 << 20  # floats received (and added) at a time


def chunk_bounds(size: int, parts: int) -> list:
    """[(start, end)] of the K chunks of a vector of `size` floats."""
    edges = [size * c // parts for c in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def owned_chunk(rank: int, parts: int) -> int:
    """The chunk whose sum rank ends the reduce-scatter with."""
    return (rank + 1) % parts


class RingReduce:
    """Rank `rank` of `parts`, over links with .left (read) and .right (written)."""

    def __init__(self, links, rank: int, parts: int):
        self.links, self.rank, self.parts = links, rank, parts
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparknet-ring")
        self._piece = np.empty(PIECE, np.float32)

    def reduce_scatter(self, vector: np.ndarray) -> None:
        bounds = chunk_bounds(vector.size, self.parts)
        for step in range(self.parts - 1):
            send = bounds[(self.rank - step) % self.parts]
            take = bounds[(self.rank - step - 1) % self.parts]
            self._exchange(vector, send, take, add=True)

    def all_gather(self, vector: np.ndarray) -> None:
        bounds = chunk_bounds(vector.size, self.parts)
        for step in range(self.parts - 1):
            send = bounds[(self.rank + 1 - step) % self.parts]
            take = bounds[(self.rank - step) % self.parts]
            self._exchange(vector, send, take, add=False)

    def _exchange(self, vector: np.ndarray, send: tuple, take: tuple, add: bool) -> None:
        sending = self._sender.submit(self.links.right.sendall,
                                      memoryview(vector[send[0]:send[1]]).cast("B"))
        try:
            if add:
                self._receive_adding(vector[take[0]:take[1]])
            else:
                recv_exactly(self.links.left, memoryview(vector[take[0]:take[1]]).cast("B"))
        except BaseException:
            self.links.close()  # wakes the sender: the ring is broken either way
            raise
        sending.result()

    def _receive_adding(self, target: np.ndarray) -> None:
        for start in range(0, target.size, PIECE):
            part = target[start:start + PIECE]
            piece = self._piece[:part.size]
            recv_exactly(self.links.left, memoryview(piece).cast("B"))
            np.add(piece, part, out=part)

    def close(self) -> None:
        self._sender.shutdown(wait=False)
