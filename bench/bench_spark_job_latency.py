"""Where an empty SparkNet round's fixed cost goes: Spark job latency, with and
without Python tasks.

On local-cluster[K,1,1024], K partitions of a cached two-element RDD, one task
per executor, median of --jobs after 5 warm-up jobs:

- JVM only: a count() of the cached RDD, run by the JVM (baseline);
- Python tasks: the same RDD through a trivial mapPartitions (one Python task
  per executor, reused Python workers), counted by the JVM;
- Python tasks + collect: the same, collected into the driver's Python, as the
  trainer's rounds do;
- cached Fashion-MNIST: the trainer's cached training partitions (one stacked
  (images, labels) pair of 30,000 images per worker for K=2), read by a Python
  task - what every round paid before rounds ran data-free - and the same
  partitions emptied, cached alike, as the rounds now run over them.

    python bench/bench_spark_job_latency.py [--workers 2] [--jobs 30]
"""
from __future__ import annotations

import argparse
import statistics
import time

from pysparknet.data import fashion_mnist
from pysparknet.spark import local_spark
from pysparknet.spark.worker import stack_partition


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
    args = parser.parse_args()
    spark = local_spark(f"local-cluster[{args.workers},1,1024]")
    try:
        cached = spark.sparkContext.parallelize(range(args.workers), args.workers).cache()
        cached.count()
        python = cached.mapPartitions(lambda part: [sum(part)])
        jvm_ms = median_ms(lambda: cached._jrdd.count(), args.jobs)
        python_ms = median_ms(lambda: python._jrdd.count(), args.jobs)
        collect_ms = median_ms(python.collect, args.jobs)
        images, labels = fashion_mnist("train")
        stacked = spark.sparkContext.parallelize(
            list(zip(images, labels.tolist())), args.workers
        ).mapPartitionsWithIndex(stack_partition).cache()
        stacked.count()
        emptied = stacked.mapPartitions(_drop).cache()
        emptied.count()
        with_data_ms = median_ms(stacked.mapPartitions(_size).collect, args.jobs)
        data_free_ms = median_ms(emptied.mapPartitions(_size).collect, args.jobs)
    finally:
        spark.stop()
    print(f"\nlocal-cluster[{args.workers},1,1024], median of {args.jobs} jobs\n")
    print("| job | ms | / JVM only |")
    print("|---|---:|---:|")
    for name, ms in (("JVM only (count of a cached RDD)", jvm_ms),
                     ("Python tasks, counted by the JVM", python_ms),
                     ("Python tasks, collected into Python", collect_ms),
                     ("Python tasks reading cached Fashion-MNIST partitions", with_data_ms),
                     ("Python tasks over the same partitions emptied (data-free)",
                      data_free_ms)):
        print(f"| {name} | {ms:.1f} | {ms / jvm_ms:.2f} |")


if __name__ == "__main__":
    main()
