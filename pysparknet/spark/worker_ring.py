"""A stage's rounds on a worker when the workers sum among themselves
(exchange='ring'): the driver sends weights for the stage's first round only;
after each round the workers ring-allreduce their trained weights
(ring_reduce.py) and each goes on from the mean. Each sends the driver one
chunk of the sum - while the all-gather runs - so the driver holds the mean
too, for validation, checkpoints and a rerun.

The ring's vector is the trained weights (times the iterations done, when
rounds are timed) and one float more: 1 (or the iterations), whose sum is
what divides the rest for the mean.
"""
from __future__ import annotations

import threading

import numpy as np

from ..errors import TransportError
from .link_worker_end import WorkerLink
from .ring_links import RingLinks
from .ring_reduce import RingReduce, chunk_bounds, owned_chunk
from .round_training import train_round
from .sockets import Deadline
from .solvers import Solver

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
        reduce = RingReduce(ring, solver.index, len(peers))
        try:
            return _ring_rounds(link, solver, rebuilt, reduce)
        finally:
            reduce.close()
    finally:
        ring.close()


def _ring_rounds(link: WorkerLink, solver: Solver, rebuilt: bool,
                 reduce: RingReduce) -> tuple[str, int]:
    trained = 0
    for round_no, tau, weights in link.rounds(solver.buffer_for):
        flat = weights if weights is not None else solver.buffer
        if flat is None:
            raise TransportError(f"round {round_no + 1}: the driver sent no weights and this "
                                 "worker holds no mean to go on from")
        try:
            result, stats = train_round(solver, round_no, tau, flat, rebuilt)
        except Exception as error:  # noqa: BLE001 - reported to the driver
            link.error(error)
            return "error", trained
        vector = _contribution(solver, result, stats.iterations)
        reduce.reduce_scatter(vector)
        stats.chunk = owned_chunk(reduce.rank, reduce.parts)
        start, end = chunk_bounds(vector.size, reduce.parts)[stats.chunk]
        report = _in_background(link.send, stats, vector[start:end])
        reduce.all_gather(vector)
        report.join()
        if report.error is not None:
            raise report.error
        np.divide(vector[:-1], vector[-1], out=flat)  # the next round starts from the mean
        trained, rebuilt = trained + 1, False
    return "stage over", trained


def _contribution(solver: Solver, trained: np.ndarray, iterations: int) -> np.ndarray:
    """The round's vector for the ring: the weights (scaled by the iterations done,
    when rounds are timed), and the count their sum is divided by."""
    vector = getattr(solver, "ring_vector", None)
    if vector is None or vector.size != trained.size + 1:
        vector = solver.ring_vector = np.empty(trained.size + 1, np.float32)
    weight = np.float32(iterations if solver.spec.round_seconds is not None else 1)
    np.multiply(trained, weight, out=vector[:-1])
    vector[-1] = weight
    return vector


class _Background(threading.Thread):
    def __init__(self, work, *args):
        super().__init__(daemon=True, name="sparknet-ring-report")
        self.work, self.args, self.error = work, args, None

    def run(self) -> None:
        try:
            self.work(*self.args)
        except BaseException as error:  # noqa: BLE001 - raised by the caller
            self.error = error


def _in_background(work, *args) -> _Background:
    thread = _Background(work, *args)
    thread.start()
    return thread
