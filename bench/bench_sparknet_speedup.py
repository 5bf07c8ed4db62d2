"""Time to a test accuracy: SparkNet with K workers (2 by default) vs. one Net on both cores.

Baseline, in the same run: one `Net` (OpenBLAS with both cores) trains Caffe's
LeNet on Fashion-MNIST, tested on all 10,000 test images every --test-every
iterations. SparkNet: K=--workers workers on local-cluster[K,1,2048] (one core each),
--tau iterations per round, validated on the driver every --test-every
iterations per worker. Each side has its own learning rate and minibatch (each
at its best in bench/sweep_lr_tau.py; BENCHMARKS.md): by default the single
net at base_lr 0.04, batch 64, and the workers at base_lr 0.02, batch 32, tau 200.
Only training wall-clock counts on both sides (testing is left out of both
clocks); the time to the target is the clock at the first test at or above it.

Raw output: bench/results/<date>-<machine>/sparknet_speedup.json (plain), or
sparknet_speedup_<outer>.json with --outer; _k<K> added for --workers other than 2.

--workers 4 on 2 cores shares each core between two workers, so its clocks say
little; its point is sample efficiency: the images each side needs to the target
(set --sparknet-batch 16 to keep SparkNet's global batch at the one Net's 64).

Both runs are seeded, so every repeat of a seed reaches the target at the same
iteration; repeats (alternating baseline and SparkNet) only measure the clock,
and a seed's speedup is the ratio of its median times (a shared VM's speed drifts
by 20% between minutes). --seeds runs each seed's repeats in turn (both sides
take the seed: the nets' initial weights, Caffe's random streams): how much of
the ratio is the draw.

    python bench/bench_sparknet_speedup.py [--seeds 1,2,3] [--repeats 3] [--target 0.895]
        [--tau 200] [--outer bmuf --outer-momentum 0.5] [--solver-state average]

--outer / --outer-momentum / --outer-lr / --solver-state set the SparkNet
side's outer optimizer and what its solvers' history is between rounds
(SparkNetTrainer's options; defaults: SparkNet's plain mean, history kept).
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Optional

from results_io import record  # bench/, beside this script

from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist
from pysparknet.outer import OuterOptimizer
from pysparknet.spark import SparkNetTrainer, local_spark


@dataclass
class Run:
    seconds: Optional[float]  # training clock at the target; None: not reached
    iterations: int  # per worker
    accuracy: float
    compute_ms: float  # per iteration (SparkNet: the slowest worker's)
    sync_ms: float = 0.0  # per iteration, SparkNet only


def solver(base_lr):
    params = zoo.lenet_solver()
    params.base_lr = base_lr
    return params


def baseline(target, test_every, max_iterations, base_lr, batch, seed=1) -> Run:
    net = Net(zoo.lenet(batch_size=batch), solver(base_lr), seed=seed)
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
            break
    net.close()
    return Run(clock if accuracy >= target else None, done, accuracy, 1e3 * clock / done)


def sparknet(target, tau, validate_every, max_rounds, base_lr, batch, outer=None,
             solver_state="local", seed=1, workers=2) -> Run:
    spark = local_spark(f"local-cluster[{workers},1,2048]")
    try:
        trainer = SparkNetTrainer(spark, zoo.lenet(batch_size=batch), solver(base_lr),
                                  num_workers=workers, tau=tau, seed=seed,
                                  outer=outer or OuterOptimizer(), solver_state=solver_state)
        history = trainer.fit(fashion_mnist("train"), fashion_mnist("test"), rounds=max_rounds,
                              validate_every=validate_every, progress=False,
                              until=lambda record: record.get("val_accuracy", 0) >= target
                              ).history
    finally:
        spark.stop()
    clock = compute = sync = 0.0
    for record in history:
        clock += record["round_s"]
        compute += record["compute_s"]
        sync += record["sync_s"]
        if "val_accuracy" in record:
            print(f"  SparkNet: round {record['round']}, {clock:.1f} s, accuracy "
                  f"{record['val_accuracy']:.4f}, sync {record['sync_s']:.2f} s/round",
                  flush=True)
    last = history[-1]
    iterations = last["round"] * tau
    accuracy = last.get("val_accuracy", float("nan"))
    return Run(clock if accuracy >= target else None, iterations, accuracy,
               1e3 * compute / iterations, 1e3 * sync / iterations)


def sides(workers: int) -> tuple:
    """The keys of one_seed's result, in table order."""
    return ("one Net", f"SparkNet K={workers}")


def median_seconds(runs):
    times = [run.seconds for run in runs]
    return statistics.median(times) if None not in times else None


def arguments():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=0.895)
    parser.add_argument("--tau", type=int, default=200, help="SparkNet iterations per round")
    parser.add_argument("--base-lr", type=float, default=0.04, help="the single net's")
    parser.add_argument("--batch", type=int, default=64, help="the single net's minibatch")
    parser.add_argument("--sparknet-base-lr", type=float, default=0.02)
    parser.add_argument("--sparknet-batch", type=int, default=32, help="each worker's minibatch")
    parser.add_argument("--test-every", type=int, default=200,
                        help="iterations (per worker for SparkNet) between tests")
    parser.add_argument("--max-iterations", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="SparkNet's K")
    parser.add_argument("--seeds", default="1", help="comma-separated seeds, each in turn")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of each side per seed, alternating")
    parser.add_argument("--outer", default="plain", help="SparkNet's outer optimizer")
    parser.add_argument("--outer-momentum", type=float, default=None)
    parser.add_argument("--outer-lr", type=float, default=None)
    parser.add_argument("--solver-state", default="local", choices=["local", "reset", "average"])
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.test_every % args.tau:
        parser.error("--test-every must be a multiple of --tau")
    try:
        args.seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds takes whole numbers separated by commas, not {args.seeds!r}")
    return args


def one_seed(args, outer, seed: int) -> dict:
    """Both sides' repeats for one seed, alternating; its speedup from their medians."""
    bases, sparks = [], []
    for repeat in range(args.repeats):
        print(f"seed {seed}, repeat {repeat + 1}/{args.repeats}", flush=True)
        bases.append(baseline(args.target, args.test_every, args.max_iterations,
                              args.base_lr, args.batch, seed))
        sparks.append(sparknet(args.target, args.tau, args.test_every // args.tau,
                               args.max_iterations // args.tau, args.sparknet_base_lr,
                               args.sparknet_batch, outer, args.solver_state, seed,
                               args.workers))
    base_s, spark_s = median_seconds(bases), median_seconds(sparks)
    return {"seed": seed, "one Net": bases, sides(args.workers)[1]: sparks,
            "speedup": base_s / spark_s if base_s and spark_s else None}


def print_seed(result: dict, args) -> None:
    print("| seed | run | reached at (iterations per worker) | accuracy | training s, each "
          "repeat | median s | ms / iteration (compute + sync) | speedup |")
    print("|---|---|---:|---:|---|---:|---:|---:|")
    for name in sides(args.workers):
        runs = result[name]
        run, median = runs[0], median_seconds(runs)
        speedup = 1.0 if name == "one Net" else result["speedup"]
        each = ", ".join("-" if r.seconds is None else f"{r.seconds:.1f}" for r in runs)
        cost = f"{run.compute_ms:.2f}" + (f" + {run.sync_ms:.2f}" if run.sync_ms else "")
        print(f"| {result['seed']} | {name} | {run.iterations} | {run.accuracy:.4f} | {each} | "
              f"{'-' if median is None else f'{median:.1f}'} | {cost} | "
              f"{'-' if speedup is None else f'{speedup:.2f}'} |")
    base, spark = result["one Net"][0], result[sides(args.workers)[1]][0]
    print(f"images to the target: one Net {base.iterations * args.batch}, SparkNet "
          f"{args.workers * spark.iterations * args.sparknet_batch} (all workers)\n",
          flush=True)


def main() -> None:
    args = arguments()
    outer = OuterOptimizer(args.outer, args.outer_momentum, args.outer_lr)
    print(f"target test accuracy {args.target:.1%}; one Net: base_lr {args.base_lr}, batch "
          f"{args.batch}; SparkNet: base_lr {args.sparknet_base_lr}, batch "
          f"{args.sparknet_batch} per worker, tau {args.tau}, outer {outer.config()}, "
          f"solver history {args.solver_state}; seeds {args.seeds}, {args.repeats} repeats "
          "each\n", flush=True)
    results = []
    for seed in args.seeds:
        results.append(one_seed(args, outer, seed))
        print_seed(results[-1], args)
    # one stored record per outer optimizer: plain's and the others' tables side by side
    name = "sparknet_speedup" + ("" if outer.kind == "plain" else f"_{outer.kind}") + \
        ("" if args.workers == 2 else f"_k{args.workers}")
    record(name, repeats={f"{side} seed {r['seed']}": [run.seconds for run in r[side]]
                          for r in results for side in sides(args.workers)},
           rows=[{"side": side, "seed": r["seed"], **vars(run)} for r in results
                 for side in sides(args.workers) for run in r[side]],
           extra={**vars(args), "outer": outer.config(),
                  "speedups": {str(r["seed"]): r["speedup"] for r in results}})


if __name__ == "__main__":
    main()
