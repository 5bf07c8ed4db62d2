"""A stage's rounds on a worker when the workers sum among themselves
(exchange='ring'): the driver sends weights for the stage's first round only;
after each round the workers ring-allreduce their trained weights
(ring_reduce.py) and each goes on from the mean. Each reports its stats and
owes the driver one chunk of the sum, which it sends after the driver's next
header, while the next round trains (ring_driver_end.py), so the driver holds
the mean too, for validation, checkpoints and a rerun, without the chunks
sharing the uplinks with the all-gather.

The ring's vector is the trained weights (times the iterations done, when
rounds are timed) and one float more: 1 (or the iterations), whose sum is
what divides the rest for the mean. With a 16-bit wire (exchange dtype) it is
the round's update instead, trained minus start, and the mean is start plus
the summed update over K, in float32.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import TransportError
from .link_worker_end import WorkerLink
from .ring_links import RingLinks
from .ring_reduce import RingReduce, owned_chunk
from .round_training import train_round
from .sockets import Deadline
from .solvers import Solver
from .wire_types import wire_dtype

RING_FORM_S = 300.0  # forming the ring when the stage has no round deadline yet


def serve_ring_rounds(link: WorkerLink, solver: Solver, rebuilt: bool) -> tuple[str, int]:
    ticket = link.ticket
    ring = RingLinks(ticket.ring, ticket.secret, ticket.serial, solver.index,
                     link.conn.getsockname()[0])
    try:
        link.ready_in_ring(ring.address)
        peers = link.peers()
        if peers is None:
            return "stage over", 0
        ring.join(peers, Deadline(ticket.deadline_s or RING_FORM_S))
        reduce = RingReduce(ring, solver.index, len(peers), wire_dtype(solver.spec.exchange_dtype))
        payer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparknet-pay")
        try:
            return _ring_rounds(link, solver, rebuilt, reduce, payer)
        finally:
            reduce.close()
            payer.shutdown(wait=False)
    finally:
        ring.close()


def _ring_rounds(link: WorkerLink, solver: Solver, rebuilt: bool, reduce: RingReduce,
                 payer: ThreadPoolExecutor) -> tuple[str, int]:
    trained = 0
    for round_no, tau, weights in link.rounds(solver.buffer_for):
        # the last round's chunk goes to the driver while this round trains
        payment = payer.submit(link.pay) if link.owes() else None
        flat = weights if weights is not None else solver.buffer
        if flat is None:
            raise TransportError(f"round {round_no + 1}: the driver sent no weights and this "
                                 "worker holds no mean to go on from")
        start = _keep_start(solver, flat, reduce, sent=weights is not None)
        try:
            result, stats = train_round(solver, round_no, tau, flat, rebuilt)
        except Exception as error:  # noqa: BLE001 - reported to the driver
            _paid(payment)
            link.error(error)
            return "error", trained
        _paid(payment)  # the chunk is a view of the ring's buffers, rewritten next
        vector = _contribution(solver, result, stats.iterations, start)
        owned = _allreduce_mean(reduce, vector, start, flat)
        stats.chunk = owned_chunk(reduce.rank, reduce.parts)
        link.owe(stats, owned)
        trained, rebuilt = trained + 1, False
    return "stage over", trained


def _paid(payment) -> None:
    """Wait for the chunk's payment (raising its error: the driver's link failed)."""
    if payment is not None:
        payment.result()


def _keep_start(solver: Solver, flat: np.ndarray, reduce: RingReduce, sent: bool):
    """A 16-bit wire carries the round's update: keep the start it is taken from (a
    copy of weights the driver sent; the ring's own mean was kept as it landed)."""
    if reduce.wire is None:
        return None
    fresh = solver.ring_start is None or solver.ring_start.size != flat.size
    if fresh:
        solver.ring_start = np.empty_like(flat)
    if sent or fresh:
        np.copyto(solver.ring_start, flat)
    return solver.ring_start


def _contribution(solver: Solver, trained: np.ndarray, iterations: int,
                  start) -> np.ndarray:
    """The round's vector for the ring. float32: the weights (scaled by the
    iterations done, when rounds are timed), and the count their sum is divided
    by. A 16-bit wire: the update, trained minus start (every round's count is K)."""
    size = trained.size + (1 if start is None else 0)
    vector = solver.ring_vector
    if vector is None or vector.size != size:
        vector = solver.ring_vector = np.empty(size, np.float32)
    if start is not None:
        np.subtract(trained, start, out=vector)
        return vector
    weight = np.float32(iterations if solver.spec.round_seconds is not None else 1)
    np.multiply(trained, weight, out=vector[:-1])
    vector[-1] = weight
    return vector


def _allreduce_mean(reduce: RingReduce, summed: np.ndarray, start, flat: np.ndarray):
    """The ring's sum, and the next round's start from it, the mean (the driver
    computes it the same way): float32, the sum over its count; a 16-bit wire,
    start + the summed update over K, made piece by piece as the pieces land.
    Returns the chunk owed to the driver."""
    if start is None:
        owned = reduce.allreduce(summed)
        np.divide(summed[:-1], summed[-1], out=flat)
        return owned
    parts = np.float32(reduce.parts)

    def land(lo: int, hi: int, values: np.ndarray) -> None:
        np.divide(values, parts, out=values)
        np.add(start[lo:hi], values, out=start[lo:hi])  # kept: the next round's start
        flat[lo:hi] = start[lo:hi]
    return reduce.allreduce(summed, land)
