"""Per-call cost of Net.get_weights / set_weights at AlexNet's size vs. a plain memcpy.

Caffe's own AlexNet (models/bvlc_alexnet/train_val.prototxt, 60,965,224 learnable
floats) is built as a test-only net at batch 1. The baseline, measured in the
same run, is numpy's copyto between two preallocated float32 buffers of the
same size (a memcpy). Best of --repeat calls each.

    python bench/bench_weights_copy.py [--repeat 10]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from pysparknet import Net, WeightCollection, zoo
from pysparknet.prototxt import parse_net


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    alexnet = zoo.data_layers_to_inputs(
        parse_net(zoo.caffe_file("models/bvlc_alexnet/train_val.prototxt")), (3, 227, 227),
        {0: 1, 1: 1})
    for layer in alexnet.layer:
        layer.ClearField("transform_param")  # its mean file is not needed to copy weights
    net = Net(alexnet)
    n = sum(b.size for b in net.layout)
    src = np.random.default_rng(0).random(n, dtype=np.float32)
    dst = np.empty_like(src)
    weights = WeightCollection(net.layout, src.copy())
    out = WeightCollection.zeros(net.layout)
    net.set_weights(weights)

    memcpy = best_of(args.repeat, lambda: np.copyto(dst, src))
    get_into = best_of(args.repeat, lambda: net.get_weights(out=out))
    get_new = best_of(args.repeat, lambda: net.get_weights())
    set_ = best_of(args.repeat, lambda: net.set_weights(weights))
    assert net.get_weights() == weights

    mb = n * 4 / 1e6
    print(f"\nAlexNet: {n:,} floats ({mb:.0f} MB), best of {args.repeat}\n")
    print("| operation | ms | GB/s | / memcpy |")
    print("|---|---:|---:|---:|")
    for name, t in (("memcpy (np.copyto, preallocated)", memcpy),
                    ("Net.get_weights(out=preallocated)", get_into),
                    ("Net.get_weights() (new buffer)", get_new),
                    ("Net.set_weights(weights)", set_)):
        print(f"| {name} | {t * 1e3:.1f} | {mb / 1e3 / t:.2f} | {t / memcpy:.2f} |")


if __name__ == "__main__":
    main()
