"""What a second core buys LeNet: one net on two OpenBLAS threads vs. two nets on one each.

The throughput half of bench_sparknet_speedup.py's ratio. For each minibatch
size, LeNet training steps on Fashion-MNIST (Net, fed from arrays) timed in
fresh processes (pysparknet/repro/costs.py): one net with OPENBLAS_NUM_THREADS=1
alone (the baseline), one net with 2 threads alone (the single net of the speedup bench), and two
1-thread nets side by side (K=2 workers, one core each). The last column is
the ceiling of K=2's speedup on images/s: 2 x (2-thread ms) / (side-by-side ms).

    python bench/bench_lenet_cores.py [--batch 32 64] [--iterations 400] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics

from results_io import interleave, record  # bench/, beside this script

from pysparknet.repro.costs import compute_ms


def ms_per_iteration(batch: int, iterations: int, threads: int, side_by_side: int) -> float:
    """Mean ms per training step of `side_by_side` processes started together."""
    return compute_ms(batch, iterations, threads, side_by_side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved, each")
    args = parser.parse_args()
    print("| batch | 1 thread, alone ms | 2 threads, alone ms | 2 x 1 thread, side by side ms "
          "| 2nd thread's gain | K=2 images/s vs. 2-thread net |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows = []
    for batch in args.batch:
        samples = interleave({  # A B C A B C A B C
            "one": lambda: ms_per_iteration(batch, args.iterations, 1, 1),
            "two": lambda: ms_per_iteration(batch, args.iterations, 2, 1),
            "pair": lambda: ms_per_iteration(batch, args.iterations, 1, 2)}, args.repeats)
        rows.append({"batch": batch, "samples": samples})
        one, two, pair = (statistics.median(samples[k]) for k in ("one", "two", "pair"))
        print(f"| {batch} | {one:.2f} | {two:.2f} | {pair:.2f} | {one / two:.2f} | "
              f"{2 * two / pair:.2f} |", flush=True)
    record("lenet_cores", rows=rows, extra={"iterations": args.iterations})

if __name__ == "__main__":
    main()
