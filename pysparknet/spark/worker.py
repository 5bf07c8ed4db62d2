"""What runs inside the executors: one persistent Caffe solver per partition.

A Spark Python worker is reused across tasks (spark.python.worker.reuse), so a
module-level table keeps each partition's Net - weights, momentum history,
data position - alive from round to round. A task that finds no Net (new
worker, lost executor, moved task) builds one from the broadcast definition
and its cached partition and carries on from the broadcast weights.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from ..errors import DataError
from ..proto import caffe_pb2
from ..weights import WeightCollection

_SOLVERS: dict[tuple[str, int], "object"] = {}


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


def _solver_for(spec: NetSpec, index: int, arrays, start_iter: int):
    from ..net import Net

    key = (spec.run_id, index)
    net = _SOLVERS.get(key)
    if net is not None:
        return net, False
    for other in [k for k in _SOLVERS if k[0] != spec.run_id]:
        _SOLVERS.pop(other).close()  # a finished run's solvers
    net = Net(caffe_pb2.NetParameter.FromString(spec.net),
              caffe_pb2.SolverParameter.FromString(spec.solver),
              device=_device_for_task(spec.device),
              seed=None if spec.seed is None else spec.seed + index)
    net.set_training_data(arrays)
    net.iteration = start_iter  # the learning-rate schedule goes on
    _SOLVERS[key] = net
    return net, True


def train_round(index: int, records: Iterable, spec_bc, weights_bc, tau: int,
                start_iter: int):
    """One worker's round: set the broadcast weights, train tau steps, send weights back."""
    spec = spec_bc.value
    # Read the whole (one-element) partition: a Python worker that leaves input
    # unread is not reused, and its solvers would be lost.
    arrays = list(records)
    if len(arrays) != 1:
        raise DataError(f"partition {index} holds {len(arrays)} array pairs, expected 1")
    net, rebuilt = _solver_for(spec, index, arrays[0], start_iter)
    net.set_weights(WeightCollection(net.layout, weights_bc.value))
    tic = time.perf_counter()
    outputs = net.train(tau)
    compute_s = time.perf_counter() - tic
    yield index, net.get_weights().flat, outputs, compute_s, rebuilt


def release(run_id: str) -> int:
    """Free this worker's solvers of a run; how many there were."""
    keys = [k for k in _SOLVERS if k[0] == run_id]
    for key in keys:
        _SOLVERS.pop(key).close()
    return len(keys)
