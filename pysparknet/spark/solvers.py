"""The executors' persistent Caffe solvers: one per partition, kept between rounds.

A Spark Python worker is reused across tasks (spark.python.worker.reuse), so a
module-level table keeps each partition's Net - weights, momentum history,
data position - alive from round to round and stage to stage. A task that
finds no Net (new worker, lost executor, moved task) builds one from the
broadcast definition and its partition (cached, or streamed from its source).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..data.partitions import drain
from ..net import Net
from ..proto import caffe_pb2
from .stream_buffer import BatchShare, buffered, release_buffers
from .task_resources import device_for_task, task_threads


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
    exchange_dtype: str = "float32"  # what the ring's chunks travel in


@dataclass
class Solver:
    """A partition's persistent Net, and the buffer its weights travel in (reused; the
    net's weights live in it from its first round on: Net.share_weights)."""

    net: Net
    spec: NetSpec
    index: int  # the partition it trains
    data: object  # what the Net reads: the cached arrays, or a stream's buffer
    next_round: int  # the round this solver trains next; any other finds it stale
    buffer: Optional[np.ndarray] = None
    used: float = 0.0  # time.monotonic() of its last round
    ring_vector: Optional[np.ndarray] = None  # exchange='ring': what the ring sums
    ring_start: Optional[np.ndarray] = None  # and, with a 16-bit wire, the round's start

    def buffer_for(self, nbytes: int) -> np.ndarray:
        if self.buffer is None or self.buffer.nbytes != nbytes:
            self.buffer = np.empty(nbytes // 4, np.float32)
        return self.buffer

    def skipped(self) -> int:
        """Bad records a streamed partition skipped so far (cached data: counted on caching)."""
        bad = getattr(self.data, "bad", None)
        return bad.skipped if bad is not None else 0


_SOLVERS: dict[tuple[str, int], Solver] = {}
STREAMED = -1  # the key's index of a streamed fit's solver: one per worker process
# Solvers of other runs idle this long are taken for abandoned (a driver that died
# before releasing them); live concurrent fits on one SparkSession keep theirs.
ABANDONED_S = 900.0


def solver_for(spec: NetSpec, index: int, data, round_no: int,
               start_iter: int) -> tuple[Optional[Solver], bool]:
    """(the partition's solver, whether it was built now): built from `data` when
    this worker has none; (None, False) when it has none and no data came."""
    if spec.buffer_records is not None:
        return _streamed_solver(spec, index, data, round_no, start_iter)
    key = (spec.run_id, index)
    solver = _kept_solver(key, round_no)
    if solver is not None:
        return solver, False
    if data is None:
        return None, False
    return _new_solver(spec, key, index, data, round_no, start_iter, skip=True), True


def _kept_solver(key: tuple, round_no: int) -> Optional[Solver]:
    """This worker's solver for key if it is current: one that missed a round (its
    partition ran on another Python worker meanwhile) holds stale momentum and data
    position, and is dropped."""
    solver = _SOLVERS.get(key)
    if solver is not None and solver.next_round != round_no:
        _SOLVERS.pop(key).net.close()
        return None
    return solver


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
                skip: bool) -> Solver:
    """A solver for key, trained from start_iter (skip: reading on where the lost
    solver was)."""
    _drop_abandoned(spec.run_id)
    net = Net(caffe_pb2.NetParameter.FromString(spec.net),
              caffe_pb2.SolverParameter.FromString(spec.solver),
              device=device_for_task(spec.device, spec.on_unassigned_gpu),
              seed=None if spec.seed is None else spec.seed + index,
              threads=task_threads())
    net.set_training_data(data)
    net.iteration = start_iter  # the learning-rate schedule goes on
    if skip:
        net.skip_training_batches(start_iter)  # and the data where the lost solver was
    solver = _SOLVERS[key] = Solver(net, spec, index, data, round_no, used=time.monotonic())
    return solver


def _drop_abandoned(run_id: str) -> None:
    now = time.monotonic()
    for other in [k for k, s in _SOLVERS.items()
                  if k[0] != run_id and now - s.used > ABANDONED_S]:
        _SOLVERS.pop(other).net.close()
        release_buffers(other[0])


def release(run_id: str) -> int:
    """Free this worker's solvers of a run; how many there were."""
    keys = [k for k in _SOLVERS if k[0] == run_id]
    for key in keys:
        _SOLVERS.pop(key).net.close()
    release_buffers(run_id)
    return len(keys)


def release_task(run_id: str):
    """A task that frees this worker's solvers of a run (a mapPartitions function)."""
    def free(records):
        drain(records)
        yield release(run_id)
    return free
