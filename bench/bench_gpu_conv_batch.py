"""Caffe's own GPU convolution (engine: CAFFE, what runs where cuDNN cannot:
a build without cuDNN, dilated or N-D convolutions): one image at a time, as
upstream (SPARKNET_CONV_BATCH_MB=0), against chunks of images in one
strided-batched GEMM (patch 0012, the default), with cuDNN's layer as the
reference; the same net, data and GPU in one run. Also checks that the batched
layer trains as the CPU does: same weights and batches, 5 steps of LeNet.

    python bench/bench_gpu_conv_batch.py [--nets lenet alexnet] [--iterations 20]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from pysparknet import Net, zoo
from pysparknet.proto import caffe_pb2

from gpu_checks import environment, weights_gap  # bench/, beside this script
from results_io import gpu_info, record  # bench/, beside this script

BATCH = {"lenet": 64, "alexnet": 256}
SHAPE = {"lenet": (1, 28, 28), "alexnet": (3, 256, 256)}


def model(name: str, engine: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = zoo.load(name, batch_size=BATCH[name], test_batch_size=BATCH[name])
    for layer in loaded.net.layer:
        if layer.type == "Convolution":
            layer.convolution_param.engine = engine
    return loaded


def step_ms(name: str, engine: int, batch_mb: str | None, device: str, iterations: int):
    """Net.forward_backward ms per iteration, with SPARKNET_CONV_BATCH_MB set."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2 * BATCH[name], *SHAPE[name]), np.uint8)
    labels = rng.integers(0, 10 if name == "lenet" else 1000, 2 * BATCH[name])
    loaded = model(name, engine)
    with environment("SPARKNET_CONV_BATCH_MB", batch_mb):
        net = Net(loaded.net, loaded.solver, seed=0, device=device)
        net.set_training_data((images, labels))
        net.forward_backward(1)
        tic = time.perf_counter()
        net.forward_backward(iterations)
        elapsed = (time.perf_counter() - tic) * 1e3 / iterations
        net.close()
    return elapsed


def agreement(device: str) -> float:
    """gpu_checks' CPU vs GPU gap, for LeNet with engine CAFFE."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (320, 1, 28, 28), np.uint8)
    labels = rng.integers(0, 10, 320)
    loaded = model("lenet", caffe_pb2.ConvolutionParameter.CAFFE)
    return weights_gap(images, labels, device=device,
                       make_net=lambda d: Net(loaded.net, loaded.solver, seed=1, device=d))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["lenet", "alexnet"])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--device", default="gpu:0")
    args = parser.parse_args()
    caffe, cudnn = caffe_pb2.ConvolutionParameter.CAFFE, caffe_pb2.ConvolutionParameter.CUDNN
    gap = agreement(args.device)
    print(f"LeNet, engine CAFFE, batched: CPU vs GPU after 5 steps, max relative weight "
          f"difference {gap:.2e}", flush=True)
    rows = []
    print("\n| net | batch | engine CAFFE, per image ms | engine CAFFE, batched ms | "
          "per image / batched | cuDNN ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.nets:
        per_image = step_ms(name, caffe, "0", args.device, args.iterations)
        batched = step_ms(name, caffe, None, args.device, args.iterations)
        with_cudnn = (step_ms(name, cudnn, None, args.device, args.iterations)
                      if args.device != "cpu" else float("nan"))  # CPU: no cuDNN
        print(f"| {name} | {BATCH[name]} | {per_image:.2f} | {batched:.2f} | "
              f"{per_image / batched:.2f} | {with_cudnn:.2f} |", flush=True)
        rows.append({"net": name, "batch": BATCH[name], "per_image_ms": per_image,
                     "batched_ms": batched, "cudnn_ms": with_cudnn})
    record("gpu_conv_batch", rows=rows, extra={"weights_gap": gap, "gpu": gpu_info(),
                                               "iterations": args.iterations})


if __name__ == "__main__":
    main()
