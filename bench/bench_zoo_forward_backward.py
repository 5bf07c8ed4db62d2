"""Forward+backward ms/iteration of model-zoo nets: Net vs. `caffe time`, same build.

Each net is Caffe's own train_val prototxt (AlexNet, GoogLeNet) on the same
random 256x256 images: `caffe time` reads them from an LMDB through the net's
own Data layer (crop, mirror, mean as in the prototxt); Net.forward_backward
gets them fed from Python through the same transform, and runs the same
passes with no solver update, after one warm-up pass (as `caffe time` does).
Same batch, same run, same OpenBLAS threads. Real data matters: on all-zero
Input blobs Caffe runs faster than on images.

    python bench/bench_zoo_forward_backward.py [--batch 8] [--iterations 5]
"""
from __future__ import annotations

import argparse
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from pysparknet import Net, zoo
from pysparknet.build_info import run_tool
from pysparknet.data.datum import write_datum_lmdb
from pysparknet.proto import caffe_pb2
from pysparknet.prototxt import to_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--nets", nargs="+", default=["alexnet", "googlenet"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.nets:
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, (4 * args.batch, 3, 256, 256), np.uint8)
            labels = rng.integers(0, 1000, 4 * args.batch)
            db = Path(work) / f"{name}_lmdb"
            write_datum_lmdb(db, zip(images, labels))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kwargs = dict(batch_size=args.batch, test_batch_size=args.batch)
                model = zoo.load(name, **kwargs)
                with_data = zoo.load(name, feed=False, **kwargs,
                                     sources={caffe_pb2.TRAIN: db, caffe_pb2.TEST: db}).net
            path = Path(work) / f"{name}.prototxt"
            path.write_text(to_text(with_data))
            log = run_tool("caffe", ["time", "-model", path, "-iterations", args.iterations])
            tool_ms = float(re.search(r"Average Forward-Backward: ([\d.]+) ms", log).group(1))

            net = Net(model.net, model.solver, seed=0)
            net.set_training_data((images, labels))
            net.forward_backward(1)  # warm-up: first touches of every buffer
            tic = time.perf_counter()
            net.forward_backward(args.iterations)
            ours_ms = (time.perf_counter() - tic) * 1e3 / args.iterations
            net.close()
            rows.append((name, tool_ms, ours_ms))
    print(f"\nbatch {args.batch}, {args.iterations} iterations\n")
    print("| net | caffe time ms/iter | Net ms/iter | speed ratio (caffe / Net) |")
    print("|---|---:|---:|---:|")
    for name, tool_ms, ours_ms in rows:
        print(f"| {name} | {tool_ms:.0f} | {ours_ms:.0f} | {tool_ms / ours_ms:.3f} |")


if __name__ == "__main__":
    main()
