"""What a batched CPU convolution's chunk size buys one Net on 1 and 2 threads (the
chunked path, SPARKNET_CONV_SPLIT=gemm, as step_ms sets it): SPARKNET_CONV_BATCH_MB
at 0 (per image, upstream's path), 1, 2, 4 and 16 MB, LeNet (batch 64) Net.train
steps in fresh processes (bench_cpu_threads.py's), interleaved.
The chunked path's default (per image on one thread, 16 MB on two or more) comes
from this sweep.

    python bench/bench_conv_batch_sizes.py [--repeats 3] [--nets lenet cifar10_quick]
"""
from __future__ import annotations

import argparse

from bench_cpu_threads import BATCH, ITERATIONS, step_ms
from results_io import interleave, record, summarize  # bench/, beside this script

SIZES_MB = ("0", "1", "2", "4", "16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["lenet"],
                        choices=["lenet", "cifar10_quick"])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved, each")
    args = parser.parse_args()
    rows = []
    for net in args.nets:
        runs = {f"{mb} MB {threads}t": (lambda mb=mb, t=threads: step_ms(
                    net, ITERATIONS[net], t, mb)) for mb in SIZES_MB for threads in (1, 2)}
        samples = interleave(runs, args.repeats)
        for name, values in samples.items():
            print(f"{net} {name}: {summarize(values)}", flush=True)
        rows.append({"net": net, "batch": BATCH[net], "iterations": ITERATIONS[net],
                     "samples": samples})
    record("conv_batch_sizes", rows=rows)


if __name__ == "__main__":
    main()
