"""Time to a test accuracy: SparkNet with K=2 workers vs. one Net on both cores.

Baseline, in the same run: one `Net` (OpenBLAS with both cores) trains Caffe's
LeNet on Fashion-MNIST, tested on all 10,000 test images every --test-every
iterations. SparkNet: K=2 workers on local-cluster[2,1,2048] (one core each),
--tau iterations per round, validated on the driver every --test-every
iterations per worker. Both sides use Caffe's LeNet solver, each with its own
learning rate: --base-lr 0.02 for the single net (its best of 0.01/0.02/0.04
on this data, see BENCHMARKS.md) and --sparknet-base-lr, by default K x that
(the linear scaling rule: the mean of K workers' steps is a step on K x the
batch). Only training wall-clock counts on both sides (testing is left out of
both clocks); the time to the target is the clock at the first test at or
above it.

    python bench/bench_sparknet_speedup.py [--target 0.895] [--tau 100]
"""
from __future__ import annotations

import argparse
import time

from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import SparkNetTrainer, local_spark


def solver(base_lr):
    params = zoo.lenet_solver()
    params.base_lr = base_lr
    return params


def baseline(target, test_every, max_iterations, base_lr):
    net = Net(zoo.lenet(), solver(base_lr), seed=1)
    net.set_training_data(fashion_mnist("train"))
    net.set_validation_data(fashion_mnist("test"))
    clock, done = 0.0, 0
    while done < max_iterations:
        tic = time.perf_counter()
        net.train(test_every)
        clock += time.perf_counter() - tic
        done += test_every
        accuracy = net.test()["accuracy"]
        print(f"  Net: {done} iterations, {clock:.1f} s, accuracy {accuracy:.4f}", flush=True)
        if accuracy >= target:
            return clock, done, accuracy
    return None, done, accuracy


def sparknet(target, tau, validate_every, max_rounds, base_lr):
    spark = local_spark("local-cluster[2,1,2048]")
    try:
        train_x, train_y = fashion_mnist("train")
        rdd = spark.sparkContext.parallelize(list(zip(train_x, train_y.tolist())), 2)
        trainer = SparkNetTrainer(spark, zoo.lenet(), solver(base_lr), num_workers=2,
                                  tau=tau, seed=1)
        result = trainer.fit(rdd, fashion_mnist("test"), rounds=max_rounds,
                             validate_every=validate_every, progress=False,
                             until=lambda record: record.get("val_accuracy", 0) >= target)
    finally:
        spark.stop()
    clock = 0.0
    for record in result.history:
        clock += record["round_s"]
        if "val_accuracy" in record:
            print(f"  SparkNet: round {record['round']}, {clock:.1f} s, accuracy "
                  f"{record['val_accuracy']:.4f}, sync {record['sync_s']:.2f} s/round",
                  flush=True)
            if record["val_accuracy"] >= target:
                return clock, record["round"], record["val_accuracy"]
    return None, result.history[-1]["round"], result.history[-1].get("val_accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=0.895)
    parser.add_argument("--tau", type=int, default=100, help="SparkNet iterations per round")
    parser.add_argument("--base-lr", type=float, default=0.02, help="the single net's")
    parser.add_argument("--sparknet-base-lr", type=float, help="default: 2 x --base-lr")
    parser.add_argument("--test-every", type=int, default=200,
                        help="iterations (per worker for SparkNet) between tests")
    parser.add_argument("--max-iterations", type=int, default=8000)
    args = parser.parse_args()
    if args.test_every % args.tau:
        parser.error("--test-every must be a multiple of --tau")
    sparknet_lr = args.sparknet_base_lr or 2 * args.base_lr
    base = baseline(args.target, args.test_every, args.max_iterations, args.base_lr)
    spark = sparknet(args.target, args.tau, args.test_every // args.tau,
                     args.max_iterations // args.tau, sparknet_lr)
    print(f"\ntarget test accuracy {args.target:.1%}; base_lr: one Net {args.base_lr}, "
          f"SparkNet {sparknet_lr}\n")
    print("| run | reached at | training time (s) | accuracy | speedup |")
    print("|---|---|---:|---:|---:|")
    print(f"| one Net, both cores | {base[1]} iterations | {base[0] or float('nan'):.1f} | "
          f"{base[2]:.4f} | 1.00 |")
    ratio = base[0] / spark[0] if base[0] and spark[0] else float("nan")
    print(f"| SparkNet K=2, tau={args.tau} | round {spark[1]} | {spark[0] or float('nan'):.1f} | "
          f"{spark[2]:.4f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
