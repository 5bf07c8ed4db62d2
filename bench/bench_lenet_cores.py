"""What a second core buys LeNet: one net on two OpenBLAS threads vs. two nets on one each.

The throughput half of bench_sparknet_speedup.py's ratio. For each minibatch
size, LeNet training steps on Fashion-MNIST (Net, fed from arrays) timed in
fresh processes: one net with OPENBLAS_NUM_THREADS=1 alone (the baseline), one
net with 2 threads alone (the single net of the speedup bench), and two
1-thread nets side by side (K=2 workers, one core each). The last column is
the ceiling of K=2's speedup on images/s: 2 x (2-thread ms) / (side-by-side ms).

    python bench/bench_lenet_cores.py [--batch 32 64] [--iterations 400]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

STEP = """
import time
from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist
net = Net(zoo.lenet(batch_size={batch}), zoo.lenet_solver(), seed=1)
net.set_training_data(fashion_mnist("train"))
net.train(50)  # warm-up
tic = time.perf_counter()
net.train({iterations})
print(1e3 * (time.perf_counter() - tic) / {iterations})
"""


def ms_per_iteration(batch: int, iterations: int, threads: int, side_by_side: int) -> float:
    """Mean ms per training step of `side_by_side` processes started together."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    code = STEP.format(batch=batch, iterations=iterations)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(side_by_side)]
    times = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a timing process failed (exit {proc.returncode})")
        times.append(float(out.strip().splitlines()[-1]))
    return sum(times) / len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--iterations", type=int, default=400)
    args = parser.parse_args()
    print("| batch | 1 thread, alone ms | 2 threads, alone ms | 2 x 1 thread, side by side ms "
          "| 2nd thread's gain | K=2 images/s vs. 2-thread net |")
    print("|---:|---:|---:|---:|---:|---:|")
    for batch in args.batch:
        one = ms_per_iteration(batch, args.iterations, 1, 1)
        two = ms_per_iteration(batch, args.iterations, 2, 1)
        pair = ms_per_iteration(batch, args.iterations, 1, 2)
        print(f"| {batch} | {one:.2f} | {two:.2f} | {pair:.2f} | {one / two:.2f} | "
              f"{2 * two / pair:.2f} |", flush=True)


if __name__ == "__main__":
    main()
