"""The training partitions as the rounds use them, made from what fit() was given:
(images, labels) arrays, an RDD of records, a DataFrame, or a StreamSource.

Each is cached as one (images, labels) pair per partition, made in one pass of
Python over the data: its size counted on the way (an accumulator) and the
cache filled by a count in the JVM. Rounds after the solvers are built run
over a data-free twin of the cached RDD - the JVM's sample of none of its
records, so its tasks are placed with the cached blocks (and the solvers
built from them) but ship nothing to Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
from pyspark import RDD

from ..data.bad_records import BadRecords
from ..data.partitions import PartitionSizes, check_slice, stack_partition
from ..data.spark_sources import dataframe_records
from ..data.streams import StreamSource
from ..errors import DataError
from .array_source import array_partitions, check_parallelized_size, is_arrays
from .failures import worker_failure


@dataclass
class TrainingSet:
    """The training partitions as the rounds use them."""

    with_data: object  # an RDD whose tasks carry their data (or a stream's index)
    data_free: object  # the same partitions, placed alike, carrying nothing
    count: int  # records
    stream: object = None  # the broadcast StreamSource, when streamed
    solvers_built: bool = False  # after the first round: rounds may run data-free
    slices: list = field(default_factory=list)  # broadcast array slices behind with_data

    def unpersist(self) -> None:
        self.with_data.unpersist()
        if self.data_free is not self.with_data:
            self.data_free.unpersist()
        for broadcast in self.slices + ([self.stream] if self.stream is not None else []):
            broadcast.unpersist()


def as_records(data, num_workers: int):
    """A DataFrame's (image, label) columns as an RDD of records, in K even partitions
    (a query's output may leave some empty); RDDs as they are."""
    is_dataframe = hasattr(data, "rdd") and hasattr(data, "columns")
    return dataframe_records(data.repartition(num_workers)) if is_dataframe else data


def training_set(sc, data, num_workers: int, on_bad_record: str) -> TrainingSet:
    """The fit's training partitions (DataError when they cannot fill a minibatch on
    every worker is the caller's check: it knows the batch size)."""
    if isinstance(data, StreamSource):
        return _streamed(sc, data, num_workers)
    data = as_records(data, num_workers)
    bad = getattr(data, "bad_records", None)
    if bad is None:  # records as they are: non-finite numbers are their bad data
        bad = BadRecords(on_bad_record, sc.accumulator(0) if on_bad_record == "skip" else None)
    sizes = sc.accumulator({}, PartitionSizes())
    slices = []
    if is_arrays(data):  # a broadcast slice per worker, no records pickled
        arrays, slices = array_partitions(sc, *data, num_workers)
        stacked = arrays.mapPartitionsWithIndex(partial(check_slice, bad=bad, sizes=sizes))
    else:
        stacked = _stacked_records(sc, data, num_workers, bad, sizes)
    stacked.cache()
    try:  # fills the cache, checking every record's shape, in the JVM's count
        stacked._jrdd.count()
    except Exception as error:  # noqa: BLE001
        stacked.unpersist()
        for broadcast in slices:
            broadcast.unpersist()
        raise worker_failure(error) from error
    bad.report("training data")
    return TrainingSet(stacked, data_free(stacked), sum(sizes.value.values()), slices=slices)


def _stacked_records(sc, records, num_workers: int, bad, sizes):
    """An RDD of records -> partitions of one (images, labels) pair each."""
    check_parallelized_size(records)
    if records.getNumPartitions() != num_workers:
        records = records.repartition(num_workers)
    stacked = records.mapPartitionsWithIndex(partial(stack_partition, bad=bad, sizes=sizes))
    if sc.getCheckpointDir():
        # Cut the lineage: an RDD made by sc.parallelize carries its records in every
        # task it has, i.e. in every round. The checkpoint files still let a lost
        # executor's partition be read back.
        stacked.checkpoint()
    return stacked


def data_free(cached) -> RDD:
    """The cached RDD's partitions with none of their records: the JVM samples none
    (no Python reads them), and its tasks prefer where the cached blocks live."""
    empty = cached._jrdd.sample(False, 0.0, 0)
    return RDD(empty, cached.ctx, cached._jrdd_deserializer)


def _streamed(sc, source: StreamSource, num_workers: int) -> TrainingSet:
    """One task per partition; each worker reads its part from the source itself."""
    if source.num_partitions != num_workers:
        raise DataError(f"the stream has {source.num_partitions} partitions; the trainer "
                        f"has {num_workers} workers: make one per worker")
    empty = [i for i, count in enumerate(source.counts) if count == 0]
    if empty:
        raise DataError(f"stream partition(s) {empty} hold no records")
    tasks = placement(sc, num_workers)
    return TrainingSet(tasks, tasks, sum(source.counts), sc.broadcast(source))


def placement(sc, num_workers: int):
    """K cached one-number partitions, one on each executor: tasks over them prefer
    the executor that ran them before, where the solvers live."""
    tasks = sc.parallelize(range(num_workers), num_workers).cache()
    tasks._jrdd.count()
    return tasks


def validation_arrays(data, num_workers: int):
    """Validation data as (images, labels) arrays on the driver."""
    if data is None or isinstance(data, tuple):
        return data
    if isinstance(data, StreamSource):  # read here, on the driver
        records = [record for part in data.parts for record in part]
    else:
        records = as_records(data, num_workers).collect()
    return np.stack([np.asarray(r[0]) for r in records]), np.asarray([r[1] for r in records])
