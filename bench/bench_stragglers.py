"""Rounds with one slow worker: plain, timed (round_seconds) and M-of-K (min_workers).

LeNet on Fashion-MNIST, K workers on local-cluster[K,1,2048], tau iterations a
round. The baseline, in the same run: plain rounds with no straggler. Then
partition 1's worker is made --slowdown times slower (PYSPARKNET_STRAGGLER,
pysparknet/spark/local_steps.py: it sleeps (F - 1) x each step's time) and the
same training runs with plain rounds, timed rounds (round_seconds = 1.1 x the
baseline's median compute time a round) and M-of-K rounds (min_workers = K - 1).
Each run trains for a fixed wall-clock budget (rounds until the fit's clock
passes --budget seconds); then the driver's weights are tested on all 10,000
test images.

    python bench/bench_stragglers.py [--workers 2] [--tau 50] [--budget 40] [--slowdown 3]
"""
from __future__ import annotations

import argparse
import statistics

from results_io import record  # bench/, beside this script

from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import SparkNetTrainer, local_spark


def run(master: str, straggler: str, args, **options) -> dict:
    conf = {"spark.executorEnv.PYSPARKNET_STRAGGLER": straggler} if straggler else {}
    spark = local_spark(master, conf=conf)
    try:
        trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(),
                                  num_workers=args.workers, tau=args.tau, seed=1, **options)
        result = trainer.fit(fashion_mnist("train"), fashion_mnist("test"), rounds=100000,
                             validate_every=10 ** 9, progress=False,
                             until=lambda record: record["elapsed_s"] >= args.budget)
        accuracy = trainer.driver_net.test()["accuracy"]
    finally:
        spark.stop()
    later = result.history[1:] or result.history  # the first round builds the solvers
    return {"round_s": statistics.median(h["round_s"] for h in later),
            "compute_s": statistics.median(h["compute_s"] for h in later),
            "rounds": len(result.history), "accuracy": accuracy,
            "elapsed_s": result.history[-1]["elapsed_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--tau", type=int, default=50)
    parser.add_argument("--budget", type=float, default=40.0, help="training seconds a run")
    parser.add_argument("--slowdown", type=float, default=3.0, help="partition 1's")
    args = parser.parse_args()
    master = f"local-cluster[{args.workers},1,2048]"
    slow = f"1:{args.slowdown:g}"
    rows = {"no straggler, plain": run(master, "", args)}
    print(f"  baseline: {rows['no straggler, plain']}", flush=True)
    seconds = round(1.1 * rows["no straggler, plain"]["compute_s"], 3)
    for name, options in (("plain", {}),
                          (f"timed, round_seconds={seconds}", {"round_seconds": seconds}),
                          (f"M-of-K, min_workers={args.workers - 1}",
                           {"min_workers": args.workers - 1})):
        rows[f"1 worker {args.slowdown:g}x slower, {name}"] = run(master, slow, args, **options)
        print(f"  {name}: {rows[f'1 worker {args.slowdown:g}x slower, {name}']}", flush=True)
    base = rows["no straggler, plain"]["round_s"]
    print(f"\nK={args.workers}, tau={args.tau}, {master}, budget {args.budget:g} s of "
          "training a run\n")
    print("| rounds | median round s | / no straggler | rounds in budget | test accuracy |")
    print("|---|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['round_s']:.3f} | {row['round_s'] / base:.2f} | "
              f"{row['rounds']} | {row['accuracy']:.4f} |")
    record("stragglers", rows=[{"variant": name, **row} for name, row in rows.items()],
           extra={**vars(args), "master": master})


if __name__ == "__main__":
    main()
