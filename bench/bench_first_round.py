"""Wall time before the first round: Fashion-MNIST handed to fit as parallelized
records (what the CLI did up to 2026-11-26) vs. as (images, labels) arrays.

Same session (local-cluster[2,1,2048], the demo's), LeNet, K=2, tau=50: time
from the data on the driver as numpy arrays to the start of round 1 (the fit's
wall time until round 1 ends, less that round's own time), median of --repeat
runs of each, alternating.

    python bench/bench_first_round.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

from results_io import record  # bench/, beside this script

from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import SparkNetTrainer, local_spark


def time_to_first_round(spark, x, y, as_records: bool) -> float:
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=50,
                              seed=1)
    tic = time.perf_counter()
    data = spark.sparkContext.parallelize(list(zip(x, y.tolist())), 2) if as_records else (x, y)
    result = trainer.fit(data, rounds=1, progress=False)
    return time.perf_counter() - tic - result.history[0]["round_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x, y = fashion_mnist("train")
    spark = local_spark("local-cluster[2,1,2048]")
    times = {"records": [], "arrays": []}
    try:
        time_to_first_round(spark, x[:1000], y[:1000], False)  # warm the executors
        for _ in range(args.repeat):
            for name in times:
                times[name].append(time_to_first_round(spark, x, y, name == "records"))
                print(f"  {name}: {times[name][-1]:.2f} s", flush=True)
    finally:
        spark.stop()
    records, arrays = (statistics.median(times[k]) for k in ("records", "arrays"))
    print("| training data into fit | s before round 1 (median) | vs records |")
    print("|---|---:|---:|")
    print(f"| parallelized records (60,000) | {records:.2f} | 1.00 |")
    print(f"| (images, labels) arrays | {arrays:.2f} | {arrays / records:.2f} |")
    record("first_round", repeats=times, extra={"images": len(x)})


if __name__ == "__main__":
    main()
