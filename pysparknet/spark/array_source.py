"""Training data held on the driver as numpy arrays, handed to the workers whole.

(images, labels) arrays are cut into K contiguous slices, each shipped as a
Spark broadcast of its own: executors fetch only their slice, in Spark's 4 MB
torrent blocks, and no record is pickled on its own. The alternative - a
parallelized list of records - puts the whole training set into the tasks'
own serialized form in the driver's JVM (a 188 MB Fashion-MNIST float32 set
ran the default 1 GB driver out of heap).
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError


def is_arrays(data) -> bool:
    return (isinstance(data, tuple) and len(data) == 2
            and all(isinstance(a, np.ndarray) for a in data))


def slice_bounds(count: int, parts: int) -> list[tuple[int, int]]:
    """K contiguous, near-equal slices [i*n/K, (i+1)*n/K). (sc.parallelize cuts a
    list the same way only when it fits in K of PySpark's serialization batches,
    up to 1,024 records each: it slices batches, not records.)"""
    return [(i * count // parts, (i + 1) * count // parts) for i in range(parts)]


def array_partitions(sc, images: np.ndarray, labels: np.ndarray, parts: int):
    """(an RDD of `parts` partitions, each one (images, labels) pair; the broadcasts
    behind it, to unpersist when the fit ends)."""
    if len(images) != len(labels):
        raise DataError(f"{len(images)} images but {len(labels)} labels: give one label "
                        "per image")
    if labels.ndim != 1:
        raise DataError(f"labels must be one number per image, got shape {labels.shape}")
    bounds = slice_bounds(len(images), parts)
    if any(stop == start for start, stop in bounds):
        raise DataError(f"{len(images)} records cannot give each of {parts} workers a slice")
    slices = [sc.broadcast((np.ascontiguousarray(images[a:b]), np.ascontiguousarray(labels[a:b])))
              for a, b in bounds]

    def read_slice(index, records):
        for _ in records:  # read it all: a Python worker that leaves input unread exits
            pass
        yield slices[index].value

    rdd = sc.parallelize(range(parts), parts).mapPartitionsWithIndex(read_slice)
    return rdd, slices


def parallelized_bytes(rdd) -> "int | None":
    """What a sc.parallelize()d RDD's records take in the driver's JVM (Spark's own
    estimate), or None for any other RDD."""
    jrdd = getattr(rdd, "_jrdd", None)
    if jrdd is None or type(rdd).__name__ != "RDD":  # a PipelinedRDD computes its records
        return None
    scala_rdd = jrdd.rdd()
    if scala_rdd.getClass().getSimpleName() != "ParallelCollectionRDD":
        return None
    estimator = rdd.ctx._jvm.org.apache.spark.util.SizeEstimator
    return sum(int(estimator.estimate(part)) for part in scala_rdd.partitions())


def check_parallelized_size(rdd, share: float = 0.125) -> None:
    """Records put into the JVM by sc.parallelize travel inside their tasks, which the
    driver's scheduler serializes whole: past `share` of the driver's heap that runs it
    out of memory and the job hangs. Fail now, saying what to do instead."""
    size = parallelized_bytes(rdd)
    if size is None:
        return
    heap = int(rdd.ctx._jvm.java.lang.Runtime.getRuntime().maxMemory())
    if size > share * heap:
        raise DataError(
            f"the training records were put into the driver by sc.parallelize: "
            f"{size / 2**20:.0f} MB that Spark serializes into the tasks themselves, over "
            f"{share:.0%} of the driver's {heap / 2**20:.0f} MB heap (it would run out of "
            "memory and hang). Pass the arrays instead - fit((images, labels)) ships each "
            "worker its slice as a broadcast - or read the data on the executors "
            "(pysparknet.data), or raise spark.driver.memory")
