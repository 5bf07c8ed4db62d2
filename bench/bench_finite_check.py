"""What the non-finite check on float records costs (NaN/Inf are bad data).

Fashion-MNIST's 60,000 training images as float32 in [0, 1] (188 MB): the
check pysparknet runs on an array source (`non_finite_records`) against a plain
copy of the same array (memory bandwidth, same run), and against training
LeNet on the same records (one Net, batch 64, the time per record).

    python bench/bench_finite_check.py [--repeat 5]
"""
from __future__ import annotations

import argparse

import numpy as np
from results_io import interleave, record, timed  # bench/, beside this script

from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist
from pysparknet.data.minibatches import non_finite_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100, help="LeNet steps timed")
    args = parser.parse_args()
    images, labels = fashion_mnist("train")
    floats = images.astype(np.float32)[:, None] / np.float32(255)
    samples = interleave({"non-finite check": timed(lambda: non_finite_records(floats, labels)),
                          "np.copy (baseline)": timed(lambda: floats.copy())}, args.repeat)
    check, copy = (min(samples[k]) for k in ("non-finite check", "np.copy (baseline)"))
    net = Net(zoo.lenet(batch_size=64), zoo.lenet_solver(), seed=1)
    net.set_training_data((floats, labels))
    net.train(10)  # warm up
    train = timed(lambda: net.train(args.iterations))() / (args.iterations * 64)
    n = len(floats)
    print(f"{n:,} records, {floats.nbytes / 1e6:.0f} MB float32")
    print("| what | ms for all | us per record | vs copy | vs LeNet training |")
    print("|---|---:|---:|---:|---:|")
    for name, took in (("non-finite check", check), ("np.copy (baseline)", copy)):
        print(f"| {name} | {took * 1e3:.1f} | {took / n * 1e6:.3f} | {took / copy:.2f} | "
              f"{took / n / train:.5f} |")
    print(f"| LeNet training, batch 64 (one Net) | - | {train * 1e6:.1f} | - | 1 |")
    record("finite_check", repeats=samples,
           extra={"records": n, "megabytes": floats.nbytes / 1e6, "train_s_per_record": train,
                  "train_iterations": args.iterations})

if __name__ == "__main__":
    main()
