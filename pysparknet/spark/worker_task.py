"""A stage's task on an executor: its partition's solver trains the rounds the
driver sends over the task's link (link_worker_end.py).

The data is the partition's cached (images, labels) pair - read only when the
task carries it: later stages run data-free, on the solver this worker kept -
or, with a broadcast StreamSource, the partition the worker reads from its
source. A worker with no solver and no data says so, and the driver reruns the
stage with the data.
"""
from __future__ import annotations

from typing import Iterable

from ..errors import DataError
from .link_worker_end import WorkerLink
from .round_training import train_round
from .solvers import Solver, solver_for
from .worker_ring import serve_ring_rounds


def run_stage_task(index: int, records: Iterable, spec_bc, first_round: int, start_iter: int,
                   ticket, stream_bc=None):
    """One worker's task of a stage (Spark's mapPartitionsWithIndex function): yields
    (partition, how the task ended, rounds trained), for the Spark UI and logs."""
    spec = spec_bc.value
    try:
        data = _task_data(index, records, stream_bc)
        solver, rebuilt = solver_for(spec, index, data, first_round, start_iter)
        failure = None
    except Exception as error:  # noqa: BLE001 - reported to the driver over the link
        solver, rebuilt, failure = None, False, error
    trained = 0
    try:
        with WorkerLink.open(ticket, index) as link:
            if failure is not None:
                link.error(failure)
                ended = "error"
            elif solver is None:
                link.needs_data()
                ended = "needs data"
            else:
                serve = serve_ring_rounds if ticket.ring is not None else _serve_rounds
                ended, trained = serve(link, solver, rebuilt)
    except OSError as lost:  # the driver ended the stage or went away
        ended = f"link closed ({type(lost).__name__})"
    yield index, ended, trained


def _serve_rounds(link: WorkerLink, solver: Solver, rebuilt: bool) -> tuple[str, int]:
    """The driver's star: each round's weights come from the driver and go back."""
    link.ready()
    trained = 0
    for round_no, tau, weights in link.rounds(solver.buffer_for):
        try:
            result, stats = train_round(solver, round_no, tau, weights, rebuilt, link.stopped)
        except Exception as error:  # noqa: BLE001 - reported to the driver
            link.error(error)
            return "error", trained
        link.send(stats, result)
        trained, rebuilt = trained + 1, False
    return "stage over", trained


def _task_data(index: int, records: Iterable, stream_bc):
    """What the task carried for its partition's solver: the cached (images, labels)
    pair, the stream's partition, or None (a data-free task)."""
    items = list(records)  # all of it: a worker that leaves input unread is not reused
    if stream_bc is not None:
        return stream_bc.value.parts[index]
    if len(items) > 1:
        raise DataError(f"partition {index} holds {len(items)} items, expected 1")
    return items[0] if items else None
