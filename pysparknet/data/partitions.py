"""A Spark partition's records as the arrays a solver trains on.

What the trainer caches is one (images, labels) pair per partition, so each
round ships one pair of arrays to the Python worker, not a pickle per record.
Records holding NaN or an infinity are bad data: raised naming the record, or
skipped and counted (bad_records.py).
"""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
from pyspark.accumulators import AccumulatorParam

from ..errors import DataError
from .bad_records import BadRecords
from .minibatches import non_finite_records


def drain(records: Iterable) -> None:
    """Read a task's input to its end: a Python worker that leaves input unread is not
    reused, and the solvers it holds would be lost with it."""
    for _ in records:
        pass


class PartitionSizes(AccumulatorParam):
    """{partition: records} as the tasks counted them (a task run again reports the
    same size, so a retry does not count twice)."""

    def zero(self, value: dict) -> dict:
        return {}

    def addInPlace(self, sizes: dict, more: dict) -> dict:
        sizes.update(more)
        return sizes


def partition_arrays(index: int, records: Iterable,
                     bad: Optional[BadRecords] = None) -> tuple[np.ndarray, np.ndarray]:
    """Stack a partition's (ndarray, label) records once, naming bad records."""
    images, labels = [], []
    for i, record in enumerate(records):
        if not (isinstance(record, (tuple, list)) and len(record) == 2):
            raise DataError(f"partition {index}, record {i}: not an (ndarray, label) pair")
        images.append(np.asarray(record[0]))
        labels.append(record[1])
    if not images:
        raise DataError(f"partition {index} holds no records (every worker needs some: "
                        f"repartition the data, e.g. rdd.repartition(num_workers))")
    first = images[0].shape
    bad_shape = next((i for i, im in enumerate(images) if im.shape != first), None)
    if bad_shape is not None:
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


def check_slice(index: int, pairs: Iterable, bad: Optional[BadRecords] = None, sizes=None):
    """A partition of one (images, labels) slice, checked (its size added to `sizes`)."""
    for images, labels in pairs:
        checked = drop_non_finite(index, images, labels, bad)
        if sizes is not None:
            sizes.add({index: len(checked[1])})
        yield checked


def stack_partition(index: int, records: Iterable, bad: Optional[BadRecords] = None,
                    sizes=None):
    """A partition of records -> a partition of one (images, labels) pair (its size
    added to `sizes`)."""
    stacked = partition_arrays(index, records, bad)
    if sizes is not None:
        sizes.add({index: len(stacked[1])})
    yield stacked
