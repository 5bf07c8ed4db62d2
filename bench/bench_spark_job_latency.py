"""Where an empty SparkNet round's fixed cost goes: Spark job latency, with and
without Python tasks.

On local-cluster[K,1,1024], K partitions of a cached two-element RDD, one task
per executor, median of --jobs after 5 warm-up jobs:

- JVM only: a count() of the cached RDD, run by the JVM (baseline);
- Python tasks: the same RDD through a trivial mapPartitions (one Python task
  per executor, reused Python workers), counted by the JVM;
- Python tasks + collect: the same, collected into the driver's Python, as the
  trainer's rounds do;
- cached partitions: the trainer's cached training partitions (one stacked
  (images, labels) pair per worker: Fashion-MNIST's 60,000 images, and
  --images-per-worker ImageNet-sized 3x256x256 ones), read by a Python task -
  what every round paid before rounds ran data-free - and the same partitions
  emptied, cached alike, as the rounds now run over them.

    python bench/bench_spark_job_latency.py [--workers 2] [--jobs 30]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from results_io import record  # bench/, beside this script

from pysparknet.data import fashion_mnist
from pysparknet.spark import local_spark
from pysparknet.data.partitions import stack_partition


def fashion_mnist_records(spark, workers):
    images, labels = fashion_mnist("train")
    return spark.sparkContext.parallelize(list(zip(images, labels.tolist())), workers)


def imagenet_like_records(spark, workers, per_worker):
    """Random 3x256x256 uint8 images (what a cached ImageNet partition holds), made on
    the executors: shipped from the driver they would fill its heap."""
    def make(index, _):
        rng = np.random.default_rng(index)
        for _ in range(per_worker):
            yield rng.integers(0, 256, (3, 256, 256), np.uint8), int(rng.integers(1000))
    return spark.sparkContext.parallelize(range(workers), workers).mapPartitionsWithIndex(make)


def _drop(records):
    for _ in records:
        pass
    return iter(())


def _size(records):
    return [sum(len(labels) for _, labels in records)]


def median_ms(fn, jobs: int) -> float:
    times = []
    for _ in range(jobs + 5):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return 1e3 * statistics.median(times[5:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--images-per-worker", type=int, default=500,
                        help="of the ImageNet-like partitions (3x256x256 uint8)")
    args = parser.parse_args()
    spark = local_spark(f"local-cluster[{args.workers},1,1024]")
    try:
        cached = spark.sparkContext.parallelize(range(args.workers), args.workers).cache()
        cached.count()
        python = cached.mapPartitions(lambda part: [sum(part)])
        jvm_ms = median_ms(lambda: cached._jrdd.count(), args.jobs)
        python_ms = median_ms(lambda: python._jrdd.count(), args.jobs)
        collect_ms = median_ms(python.collect, args.jobs)
        sizes = {}
        for name, records in (
                ("Fashion-MNIST", fashion_mnist_records(spark, args.workers)),
                ("ImageNet-like", imagenet_like_records(spark, args.workers,
                                                        args.images_per_worker))):
            stacked = records.mapPartitionsWithIndex(stack_partition).cache()
            stacked.checkpoint()  # as the trainer does: tasks no longer carry the records
            stacked.count()
            emptied = stacked.mapPartitions(_drop).cache()
            emptied.count()
            nbytes = stacked.map(lambda arrays: arrays[0].nbytes).max()
            sizes[name] = (nbytes, median_ms(stacked.mapPartitions(_size).collect, args.jobs),
                           median_ms(emptied.mapPartitions(_size).collect, args.jobs))
            stacked.unpersist()
            emptied.unpersist()
    finally:
        spark.stop()
    print(f"\nlocal-cluster[{args.workers},1,1024], median of {args.jobs} jobs\n")
    print("| job | ms | / JVM only |")
    print("|---|---:|---:|")
    for name, ms in (("JVM only (count of a cached RDD)", jvm_ms),
                     ("Python tasks, counted by the JVM", python_ms),
                     ("Python tasks, collected into Python", collect_ms)):
        print(f"| {name} | {ms:.1f} | {ms / jvm_ms:.2f} |")
    for name, (nbytes, with_data_ms, data_free_ms) in sizes.items():
        print(f"| Python tasks reading cached {name} partitions ({nbytes / 1e6:.0f} MB each) "
              f"| {with_data_ms:.1f} | {with_data_ms / jvm_ms:.2f} |")
        print(f"| the same partitions emptied (data-free rounds) | {data_free_ms:.1f} | "
              f"{data_free_ms / jvm_ms:.2f} |")
    record("spark_job_latency", extra={"workers": args.workers, "jobs": args.jobs,
                                       "median_ms": {"jvm": jvm_ms, "python": python_ms,
                                                     "collect": collect_ms},
                                       "partitions": {k: dict(zip(("bytes", "with_data_ms",
                                                                   "data_free_ms"), v))
                                                      for k, v in sizes.items()}})


if __name__ == "__main__":
    main()
