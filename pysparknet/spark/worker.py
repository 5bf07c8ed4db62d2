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

from ..errors import DataError
from ..proto import caffe_pb2
from ..weights import WeightCollection
from .transport import request_data, worker_exchange



@dataclass
class _Solver:
    """A partition's persistent Net, and the buffer its weights travel in (reused)."""

    net: "object"
    data: object  # what the Net reads: the cached arrays, or a stream's partition
    buffer: Optional[np.ndarray] = None

    def buffer_for(self, nbytes: int) -> np.ndarray:
        if self.buffer is None or self.buffer.nbytes != nbytes:
            self.buffer = np.empty(nbytes // 4, np.float32)
        return self.buffer

    def skipped(self) -> int:
        """Bad records a streamed partition skipped so far (cached data: counted on caching)."""
        bad = getattr(self.data, "bad", None)
        return bad.skipped if bad is not None else 0


_SOLVERS: dict[tuple[str, int], _Solver] = {}


@dataclass(frozen=True)
class NetSpec:
    """The broadcast definition of a run's solvers."""

    run_id: str
    net: bytes
    solver: bytes
    device: str
    seed: Optional[int]


def _device_for_task(device: str) -> str:
    """'gpu' means the GPU Spark assigned to this task, when it assigned one."""
    if device != "gpu":
        return device
    from pyspark import TaskContext
    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context else None
    return f"gpu:{gpus.addresses[0]}" if gpus and gpus.addresses else "gpu:0"


def partition_arrays(index: int, records: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Stack a partition's (ndarray, label) records once, naming bad records."""
    images, labels = [], []
    for i, record in enumerate(records):
        if not (isinstance(record, (tuple, list)) and len(record) == 2):
            raise DataError(f"partition {index}, record {i}: not an (ndarray, label) pair")
        images.append(np.asarray(record[0]))
        labels.append(record[1])
    if not images:
        raise DataError(f"partition {index} holds no records")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        first = images[0].shape
        bad = next(i for i, im in enumerate(images) if im.shape != first)
        raise DataError(f"partition {index}, record {bad}: shape {images[bad].shape} differs "
                        f"from the partition's first record {first}")
    return np.stack(images), np.asarray(labels)


def stack_partition(index: int, records: Iterable):
    """A partition of records -> a partition of one (images, labels) pair: what the
    trainer caches, so each round ships one pair of arrays to the Python worker."""
    yield partition_arrays(index, records)


@dataclass
class RoundStats:
    """What a worker's round reports to the driver (the weights travel apart)."""

    index: int
    outputs: Optional[dict] = None  # None: nothing trained (result held, or data asked for)
    compute_s: float = 0.0
    rebuilt: bool = False
    skipped: int = 0  # bad records a streamed partition skipped so far


def _solver_for(spec: NetSpec, index: int, data, start_iter: int):
    """The partition's solver, built from `data` when this worker has none (None, False
    when it has none and no data came with the task)."""
    from ..net import Net

    key = (spec.run_id, index)
    solver = _SOLVERS.get(key)
    if solver is not None:
        return solver, False
    if data is None:
        return None, False
    for other in [k for k in _SOLVERS if k[0] != spec.run_id]:
        _SOLVERS.pop(other).net.close()  # a finished run's solvers
    net = Net(caffe_pb2.NetParameter.FromString(spec.net),
              caffe_pb2.SolverParameter.FromString(spec.solver),
              device=_device_for_task(spec.device),
              seed=None if spec.seed is None else spec.seed + index)
    net.set_training_data(data)
    net.iteration = start_iter  # the learning-rate schedule goes on
    solver = _SOLVERS[key] = _Solver(net, data)
    return solver, True


def train_round(index: int, records: Iterable, spec_bc, tau: int, start_iter: int,
                weights_bc=None, exchange=None, stream_bc=None):
    """One worker's round: set the round's weights, train tau steps, send weights back.

    The data is the partition's cached (images, labels) pair - read only when the
    task carries it: rounds normally run data-free, on the solver this worker
    kept - or with `stream_bc` (a broadcast StreamSource) the partition the
    worker reads from its source. The weights come and go over the driver's
    WeightExchange when `exchange` (address, token, round) is given, else by
    Spark broadcast and task result (yielding (stats, weights)).
    """
    spec = spec_bc.value
    # Read the whole partition: a Python worker that leaves input unread is not
    # reused, and its solvers would be lost.
    items = list(records)
    if stream_bc is not None:
        data = stream_bc.value.parts[index]
    elif len(items) > 1:
        raise DataError(f"partition {index} holds {len(items)} items, expected 1")
    else:
        data = items[0] if items else None
    solver, rebuilt = _solver_for(spec, index, data, start_iter)
    if solver is None:  # a data-free task where this worker has no solver
        request_data(*exchange, index)  # the driver reruns this partition with its data
        yield RoundStats(index)
        return
    net = solver.net

    def train(flat: np.ndarray, out: Optional[np.ndarray]):
        net.set_weights(WeightCollection(net.layout, flat))
        tic = time.perf_counter()
        outputs = net.train(tau)
        compute_s = time.perf_counter() - tic
        trained = net.get_weights(None if out is None else WeightCollection(net.layout, out))
        return trained.flat, RoundStats(index, outputs, compute_s, rebuilt, solver.skipped())

    if exchange is None:
        trained, stats = train(weights_bc.value, None)
        yield stats, trained
        return
    address, token, round_no = exchange
    stats = worker_exchange(address, token, round_no, index, solver.buffer_for,
                            lambda flat: train(flat, flat))
    yield stats if stats is not None else RoundStats(index, rebuilt=rebuilt)


def release(run_id: str) -> int:
    """Free this worker's solvers of a run; how many there were."""
    keys = [k for k in _SOLVERS if k[0] == run_id]
    for key in keys:
        _SOLVERS.pop(key).net.close()
    return len(keys)
