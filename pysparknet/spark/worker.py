"""What runs inside the executors: one persistent Caffe solver per partition.

A Spark Python worker is reused across tasks (spark.python.worker.reuse), so a
module-level table keeps each partition's Net - weights, momentum history,
data position - alive from round to round. A task that finds no Net (new
worker, lost executor, moved task) builds one from the broadcast definition
and its partition (cached, or streamed from its source) and carries on from
the broadcast weights.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from pyspark import TaskContext

from ..data.bad_records import BadRecords
from ..data.minibatches import non_finite_records
from ..errors import DataError, NetArgumentError
from ..net import Net
from ..proto import caffe_pb2
from ..weights import WeightCollection
from .local_steps import slowdown, train_steps
from .segment_link import work_segment
from .stream_buffer import BatchShare, buffered, release_buffers
from .transport import request_data, worker_exchange



@dataclass
class _Solver:
    """A partition's persistent Net, and the buffer its weights travel in (reused)."""

    net: "object"
    data: object  # what the Net reads: the cached arrays, or a stream's partition
    next_round: int  # the round this solver trains next; any other finds it stale
    buffer: Optional[np.ndarray] = None
    used: float = 0.0  # time.monotonic() of its last round

    def buffer_for(self, nbytes: int) -> np.ndarray:
        if self.buffer is None or self.buffer.nbytes != nbytes:
            self.buffer = np.empty(nbytes // 4, np.float32)
        return self.buffer

    def skipped(self) -> int:
        """Bad records a streamed partition skipped so far (cached data: counted on caching)."""
        bad = getattr(self.data, "bad", None)
        return bad.skipped if bad is not None else 0


_SOLVERS: dict[tuple[str, int], _Solver] = {}
STREAMED = -1  # the key's index of a streamed fit's solver: one per worker process
# Solvers of other runs idle this long are taken for abandoned (a driver that died
# before releasing them); live concurrent fits on one SparkSession keep theirs.
ABANDONED_S = 900.0


@dataclass(frozen=True)
class NetSpec:
    """The broadcast definition of a run's solvers."""

    run_id: str
    net: bytes
    solver: bytes
    device: str
    seed: Optional[int]
    on_unassigned_gpu: str = "warn"  # device 'gpu' and Spark assigned none: 'warn' | 'error'
    solver_state: str = "local"  # the history between rounds: 'local' | 'reset' | 'average'
    round_seconds: Optional[float] = None  # a worker's round ends at tau steps or this
    buffer_records: Optional[int] = None  # a streamed fit: each worker's recent records


def _device_for_task(device: str, on_unassigned_gpu: str = "warn") -> str:
    """'gpu' means the GPU Spark assigned to this task; with none assigned, gpu:0
    (the driver warned at the start of the fit) or an error."""
    if device != "gpu":
        return device
    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context else None
    if gpus and gpus.addresses:
        return f"gpu:{gpus.addresses[0]}"
    if on_unassigned_gpu == "error":
        raise NetArgumentError("device='gpu', but Spark assigned no GPU to this task: set "
                               "spark.task.resource.gpu.amount (and the executors' GPU "
                               "resources), or pass device='gpu:N'")
    return "gpu:0"


def partition_arrays(index: int, records: Iterable,
                     bad: Optional[BadRecords] = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack a partition's (ndarray, label) records once, naming bad records; records
    with non-finite numbers are bad data (raised, or skipped and counted by `bad`)."""
    images, labels = [], []
    for i, record in enumerate(records):
        if not (isinstance(record, (tuple, list)) and len(record) == 2):
            raise DataError(f"partition {index}, record {i}: not an (ndarray, label) pair")
        images.append(np.asarray(record[0]))
        labels.append(record[1])
    if not images:
        raise DataError(f"partition {index} holds no records (every worker needs some: "
                        f"repartition the data, e.g. rdd.repartition(num_workers))")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        first = images[0].shape
        bad_shape = next(i for i, im in enumerate(images) if im.shape != first)
        raise DataError(f"partition {index}, record {bad_shape}: shape "
                        f"{images[bad_shape].shape} differs from the partition's first "
                        f"record {first}")
    return drop_non_finite(index, np.stack(images), np.asarray(labels), bad)


def drop_non_finite(index: int, images: np.ndarray, labels: np.ndarray,
                    bad: Optional[BadRecords] = None) -> tuple[np.ndarray, np.ndarray]:
    """A partition's arrays less the records holding NaN or an infinity: bad data,
    raised naming the record, or skipped and counted by `bad`."""
    non_finite = non_finite_records(images, labels)
    if not len(non_finite):
        return images, labels
    bad = bad or BadRecords()
    for i in non_finite:
        bad.handle(f"partition {index}, record {i}",
                   DataError("NaN or infinite values (bad data, not a training problem)"))
    keep = np.ones(len(images), bool)
    keep[non_finite] = False
    if not keep.any():
        raise DataError(f"partition {index}: every record was skipped as bad")
    return images[keep], labels[keep]


def check_slice(index: int, pairs: Iterable, bad: Optional[BadRecords] = None):
    """A partition of one (images, labels) slice (array_source.py), checked."""
    for images, labels in pairs:
        yield drop_non_finite(index, images, labels, bad)


def stack_partition(index: int, records: Iterable, bad: Optional[BadRecords] = None):
    """A partition of records -> a partition of one (images, labels) pair: what the
    trainer caches, so each round ships one pair of arrays to the Python worker."""
    yield partition_arrays(index, records, bad)


@dataclass
class RoundStats:
    """What a worker's round reports to the driver (the weights travel apart)."""

    index: int
    outputs: Optional[dict] = None  # None: nothing trained (result held, or data asked for)
    compute_s: float = 0.0
    rebuilt: bool = False
    skipped: int = 0  # bad records a streamed partition skipped so far
    iterations: Optional[int] = None  # solver steps done (fewer than tau: a timed round)
    dropped: bool = False  # the driver closed the round without this result


def _kept_solver(key: tuple, round_no: int) -> Optional[_Solver]:
    """This worker's solver for key if it is current: one that missed a round (its
    partition ran on another Python worker meanwhile) holds stale momentum and data
    position, and is dropped."""
    solver = _SOLVERS.get(key)
    if solver is not None and solver.next_round != round_no:
        _SOLVERS.pop(key).net.close()
        return None
    return solver


def _drop_abandoned(run_id: str) -> None:
    now = time.monotonic()
    for other in [k for k, s in _SOLVERS.items()
                  if k[0] != run_id and now - s.used > ABANDONED_S]:
        _SOLVERS.pop(other).net.close()
        release_buffers(other[0])


def _solver_for(spec: NetSpec, index: int, data, round_no: int, start_iter: int):
    """The partition's solver, built from `data` when this worker has none (None, False
    when it has none and no data came with the task)."""
    if spec.buffer_records is not None:
        return _streamed_solver(spec, index, data, round_no, start_iter)
    key = (spec.run_id, index)
    solver = _kept_solver(key, round_no)
    if solver is not None:
        return solver, False
    if data is None:
        return None, False
    return _new_solver(spec, key, index, data, round_no, start_iter, skip=True), True


def _streamed_solver(spec: NetSpec, index: int, share: Optional[BatchShare], round_no: int,
                     start_iter: int):
    """A streamed fit's solver: one per worker process, whichever partition's share a
    micro-batch brings it (each batch's shares are placed anew); the share goes into
    the worker's buffer, and the solver reads the buffer afresh when it changed."""
    key = (spec.run_id, STREAMED)
    data, changed = buffered(key, share, spec.buffer_records)
    solver = _kept_solver(key, round_no)
    if solver is None:
        if data is None:
            return None, False
        return _new_solver(spec, key, index, data, round_no, start_iter, skip=False), True
    if changed:
        solver.net.set_training_data(data)
        solver.data = data
    return solver, False


def _new_solver(spec: NetSpec, key: tuple, index: int, data, round_no: int, start_iter: int,
                skip: bool) -> _Solver:
    """A solver for key, trained from start_iter (skip: reading on where the lost
    solver was)."""
    _drop_abandoned(spec.run_id)
    net = Net(caffe_pb2.NetParameter.FromString(spec.net),
              caffe_pb2.SolverParameter.FromString(spec.solver),
              device=_device_for_task(spec.device, spec.on_unassigned_gpu),
              seed=None if spec.seed is None else spec.seed + index)
    net.set_training_data(data)
    net.iteration = start_iter  # the learning-rate schedule goes on
    if skip:
        net.skip_training_batches(start_iter)  # and the data where the lost solver was
    solver = _SOLVERS[key] = _Solver(net, data, round_no, used=time.monotonic())
    return solver


def _task_data(index: int, records: Iterable, stream_bc):
    """What the task carried for its partition's solver: the cached (images, labels)
    pair, the stream's partition, or None (a data-free task)."""
    # Read the whole partition: a Python worker that leaves input unread is not
    # reused, and its solvers would be lost.
    items = list(records)
    if stream_bc is not None:
        return stream_bc.value.parts[index]
    if len(items) > 1:
        raise DataError(f"partition {index} holds {len(items)} items, expected 1")
    return items[0] if items else None


def _train(solver: _Solver, spec: NetSpec, index: int, tau: int, round_no: int,
           flat: np.ndarray, out: Optional[np.ndarray], rebuilt: bool, stopped=None):
    """Set the round's weights, train tau steps (or fewer: local_steps.py): (the
    trained weights in out, or None when the driver closed the round without
    them, and the round's stats)."""
    net = solver.net
    out = np.empty_like(flat) if out is None else out
    weights_size = _set_round_state(net, flat, spec.solver_state)
    tic = time.perf_counter()
    steps = train_steps(net, tau, spec.round_seconds, stopped, slowdown(index))
    compute_s = time.perf_counter() - tic
    solver.next_round, solver.used = round_no + 1, time.monotonic()
    stats = RoundStats(index, steps.outputs, compute_s, rebuilt, solver.skipped(),
                       steps.iterations, steps.stopped)
    if steps.stopped:
        return None, stats
    net.get_weights(WeightCollection(net.layout, out[:weights_size]))
    if weights_size < out.size:  # 'average': the history goes back with the weights
        net.get_history(out[weights_size:])
    return out, stats


def train_round(index: int, records: Iterable, spec_bc, tau: int, round_no: int,
                start_iter: int, weights_bc=None, exchange=None, stream_bc=None):
    """One worker's round: set the round's weights, train tau steps, send weights back.

    The data is the partition's cached (images, labels) pair - read only when the
    task carries it: rounds normally run data-free, on the solver this worker
    kept - or with `stream_bc` (a broadcast StreamSource) the partition the
    worker reads from its source. The weights come and go over the driver's
    WeightExchange when `exchange` (its transport.Ticket) is given, else by
    Spark broadcast and task result (yielding (stats, weights)).
    """
    spec = spec_bc.value
    data = _task_data(index, records, stream_bc)
    solver, rebuilt = _solver_for(spec, index, data, round_no, start_iter)
    if solver is None:  # a data-free task where this worker has no solver
        request_data(exchange, index)  # the driver reruns this partition with its data
        yield RoundStats(index)
        return
    if exchange is None:
        trained, stats = _train(solver, spec, index, tau, round_no, weights_bc.value, None,
                                rebuilt)
        yield stats, trained
        return
    stats = worker_exchange(exchange, index, solver.buffer_for,
                            lambda flat: _train(solver, spec, index, tau, round_no, flat, flat,
                                                rebuilt))
    yield stats if stats is not None else RoundStats(index, rebuilt=rebuilt)


def train_segment(index: int, records: Iterable, spec_bc, first_round: int, start_iter: int,
                  ticket, stream_bc=None):
    """One worker's task of a segment (a barrier stage): the rounds the driver sends
    over this partition's link, on this worker's solver (built from the task's data
    when it has none). Yields what happened, for the Spark UI and logs."""
    spec = spec_bc.value
    rebuilt_once = []  # the first round's stats say whether the solver was built for it

    def prepare():
        solver, rebuilt = _solver_for(spec, index, _task_data(index, records, stream_bc),
                                      first_round, start_iter)
        rebuilt_once.append(rebuilt)
        return solver

    def step(solver, round_no, tau, flat, stopped):
        rebuilt = rebuilt_once.pop() if rebuilt_once else False
        trained, stats = _train(solver, spec, index, tau, round_no, flat, flat, rebuilt,
                                stopped)
        outputs = {name: float(value) for name, value in stats.outputs.items()}
        return trained, {"outputs": outputs, "compute_s": stats.compute_s,
                         "rebuilt": rebuilt, "skipped": stats.skipped,
                         "iterations": stats.iterations, "dropped": stats.dropped}

    yield index, work_segment(ticket, index, prepare, step,
                              lambda solver, nbytes: solver.buffer_for(nbytes))


def _set_round_state(net, flat: np.ndarray, solver_state: str) -> int:
    """Set the round's weights (and history, as solver_state says) from flat; how
    many of its floats were weights (the rest, if any, is history)."""
    weights_size = sum(b.size for b in net.layout)
    net.set_weights(WeightCollection(net.layout, flat[:weights_size]))
    if solver_state == "reset":
        net.set_history(np.zeros(net.history_size(), np.float32))
    elif solver_state == "average":
        net.set_history(flat[weights_size:])
    return weights_size


def release(run_id: str) -> int:
    """Free this worker's solvers of a run; how many there were."""
    keys = [k for k in _SOLVERS if k[0] == run_id]
    for key in keys:
        _SOLVERS.pop(key).net.close()
    release_buffers(run_id)
    return len(keys)
