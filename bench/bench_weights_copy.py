"""Per-call cost of Net.get_weights / set_weights at AlexNet's size vs. a plain memcpy,
and of what replaces them on the executors: share_weights + sync_shared_weights.

Caffe's own AlexNet (models/bvlc_alexnet/train_val.prototxt, 60,965,224 learnable
floats) is built as a test-only net at batch 1. The baseline, measured in the
same run, is numpy's copyto between two preallocated float32 buffers of the
same size (a memcpy). A second net shares its weights with a buffer
(Net.share_weights): a round there costs share_weights (weights written into the
buffer) and sync_shared_weights (trained weights read from it), no copy. --repeat
calls each, interleaved; raw output via results_io.

    python bench/bench_weights_copy.py [--repeat 10]
"""
from __future__ import annotations

import argparse

import numpy as np
from results_io import interleave, record, timed  # bench/, beside this script

from pysparknet import Net, WeightCollection, zoo
from pysparknet.prototxt import parse_net


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
    shared, flat = Net(alexnet), src.copy()

    def shared_round():
        shared.share_weights(flat)
        shared.sync_shared_weights()

    samples = interleave({  # A B C D A B C D ...
        "memcpy (np.copyto, preallocated)": timed(lambda: np.copyto(dst, src)),
        "Net.get_weights(out=preallocated)": timed(lambda: net.get_weights(out=out)),
        "Net.get_weights() (new buffer)": timed(lambda: net.get_weights()),
        "Net.set_weights(weights)": timed(lambda: net.set_weights(weights)),
        "share_weights + sync_shared_weights (a round, shared)": timed(shared_round),
    }, args.repeat)
    assert net.get_weights() == weights and shared.get_weights() == weights

    mb = n * 4 / 1e6
    memcpy = min(samples["memcpy (np.copyto, preallocated)"])
    print(f"\nAlexNet: {n:,} floats ({mb:.0f} MB), best of {args.repeat}\n")
    print("| operation | ms | GB/s | / memcpy |")
    print("|---|---:|---:|---:|")
    for name, times in samples.items():
        t = min(times)
        print(f"| {name} | {t * 1e3:.1f} | {mb / 1e3 / t:.2f} | {t / memcpy:.2f} |")
    record("weights_copy", repeats=samples, extra={"floats": n, "megabytes": mb})

if __name__ == "__main__":
    main()
