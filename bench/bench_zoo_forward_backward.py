"""Forward+backward ms/iteration of model-zoo nets: Net vs. `caffe time`, same build.

Each net is Caffe's own train_val prototxt (AlexNet, GoogLeNet) on the same
random 256x256 images: `caffe time` reads them from an LMDB through the net's
own Data layer (crop, mirror, mean as in the prototxt); Net.forward_backward
gets them fed from Python through the same transform, and runs the same
passes with no solver update, after one warm-up pass (as `caffe time` does).
Same batch, same run, same OpenBLAS threads. Real data matters: on all-zero
Input blobs Caffe runs faster than on images.

    python bench/bench_zoo_forward_backward.py [--batch 8] [--iterations 5]
    python bench/bench_zoo_forward_backward.py --device gpu:0 --nets lenet alexnet googlenet \\
        --iterations 50 --torch

On a GPU, the table adds Net.train (with the solver's update), Net
forward+backward with cuDNN's heuristic algorithm picks
(SPARKNET_CUDNN_SEARCH=heuristic; the default measures them), and PyTorch's
training step on the same GPU (bench/torch_baselines.py): fp32 with heuristic
and with measured picks (cudnn.benchmark), and TF32.
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

import torch_baselines  # bench/, beside this script
from gpu_checks import environment  # bench/, beside this script
from results_io import gpu_info, record  # bench/, beside this script


RECORD_SHAPE = {"lenet": (1, 28, 28)}  # the others: (3, 256, 256) images
GPU_BATCH = {"lenet": 64, "alexnet": 256, "googlenet": 64}  # SparkNet's GPU study sizes


def timing_net(name: str, batch: int, work: Path):
    """The zoo net with its own Data layer over an LMDB of random images, written as
    a prototxt for `caffe time`: (its path, the fed model, the images and labels,
    the NetParameter written)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4 * batch, *RECORD_SHAPE.get(name, (3, 256, 256))),
                          np.uint8)
    labels = rng.integers(0, 10 if name == "lenet" else 1000, 4 * batch)
    db = work / f"{name}_lmdb"
    write_datum_lmdb(db, zip(images, labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = dict(batch_size=batch, test_batch_size=batch)
        model = zoo.load(name, **kwargs)
        with_data = zoo.load(name, feed=False, **kwargs,
                             sources={caffe_pb2.TRAIN: db, caffe_pb2.TEST: db}).net
    path = work / f"{name}.prototxt"
    path.write_text(to_text(with_data))
    return path, model, (images, labels), with_data


def caffe_time_ms(name: str, batch: int, work: Path, device: str, iterations: int,
                  keep_logs=None):
    """`caffe time` on the net's own Data layer over an LMDB of random images;
    the same images and labels come back for the Net run."""
    path, model, data, _ = timing_net(name, batch, work)
    gpu = ["-gpu", device.split(":")[1]] if device.startswith("gpu") else []
    log = run_tool("caffe", ["time", "-model", path, "-iterations", iterations, *gpu])
    if keep_logs:  # its per-layer forward and backward times
        (Path(keep_logs) / f"caffe_time_{name}.log").write_text(log)
    return forward_backward_ms(log), model, data


def forward_backward_ms(log: str) -> float:
    """The ms per forward-backward pass a `caffe time` log reports."""
    return float(re.search(r"Average Forward-Backward: ([\d.]+) ms", log).group(1))


def net_ms(model, data, device: str, iterations: int) -> tuple[float, float]:
    """Net.forward_backward (what `caffe time` measures) and Net.train (with the
    solver's update) in ms/iteration, each after a warm-up pass."""
    net = Net(model.net, model.solver, seed=0, device=device)  # picks cuDNN algorithms
    net.set_training_data(data)
    net.forward_backward(1)  # warm-up: first touches of every buffer
    tic = time.perf_counter()
    net.forward_backward(iterations)
    forward_backward = (time.perf_counter() - tic) * 1e3 / iterations
    net.train(1)
    tic = time.perf_counter()
    net.train(iterations)
    train = (time.perf_counter() - tic) * 1e3 / iterations
    net.close()
    return forward_backward, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default: 8 on CPU; 64/256/64 for LeNet/AlexNet/"
                             "GoogLeNet on a GPU)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--nets", nargs="+", default=["alexnet", "googlenet"])
    parser.add_argument("--device", default="cpu", help="cpu or gpu:N")
    parser.add_argument("--keep-logs", metavar="DIR",
                        help="write each `caffe time` log (per-layer times) into DIR")
    parser.add_argument("--torch", action="store_true",
                        help="also time PyTorch training steps on the same GPU (fp32, TF32)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.nets:
            batch = args.batch or (GPU_BATCH[name] if args.device != "cpu" else 8)
            tool_ms, model, data = caffe_time_ms(name, batch, Path(work), args.device,
                                                 args.iterations, args.keep_logs)
            ours_ms, train_ms = net_ms(model, data, args.device, args.iterations)
            heuristic_ms = heuristic_net_ms(model, data, args) if args.device != "cpu" else None
            torch_ms = torch_steps_ms(name, batch) if args.torch else None
            rows.append((name, batch, tool_ms, ours_ms, train_ms, heuristic_ms, torch_ms))
            if args.torch and name == "alexnet":
                print_same_graph_alexnet(batch)
            print(f"[bench] {rows[-1]}", flush=True)
    print_table(rows, args)
    keys = ("net", "batch", "caffe_time_ms", "net_forward_backward_ms", "net_train_ms",
            "net_heuristic_ms", "torch_fp32_heuristic_fp32_measured_tf32_ms")
    record(f"zoo_forward_backward_{args.device.replace(':', '')}",
           rows=[dict(zip(keys, r)) for r in rows],
           extra={"device": args.device, "iterations": args.iterations,
                  "gpu": gpu_info() if args.device != "cpu" else None})


def heuristic_net_ms(model, data, args) -> float:
    """Net.forward_backward with cuDNN's heuristic algorithm picks (the
    variable is read whenever a convolution's shape changes)."""
    with environment("SPARKNET_CUDNN_SEARCH", "heuristic"):
        return net_ms(model, data, args.device, args.iterations)[0]


def torch_steps_ms(name: str, batch: int) -> tuple[float, float, float]:
    """PyTorch's step: fp32 heuristic picks, fp32 measured picks, TF32."""
    return (torch_baselines.step_ms(name, batch, tf32=False),
            torch_baselines.step_ms(name, batch, tf32=False, benchmark=True),
            torch_baselines.step_ms(name, batch, tf32=True))


def print_same_graph_alexnet(batch: int) -> None:
    """PyTorch on Caffe's own AlexNet graph (LRN, two-group convolutions)."""
    fp32 = torch_baselines.step_ms("caffe_alexnet", batch, tf32=False)
    tf32 = torch_baselines.step_ms("caffe_alexnet", batch, tf32=True)
    print(f"[bench] PyTorch on Caffe's AlexNet graph, batch {batch}: fp32 {fp32:.2f} ms, "
          f"TF32 {tf32:.2f} ms", flush=True)


def print_table(rows, args) -> None:
    print(f"\n{args.device}, {args.iterations} iterations\n")
    print("| net | batch | caffe time ms/iter | Net forward+backward ms/iter | speed ratio "
          "(caffe / Net) | Net train ms/iter | Net fwd+bwd, heuristic cuDNN picks | "
          "PyTorch fp32 step ms | Net / PyTorch fp32 | PyTorch fp32 step, cudnn.benchmark | "
          "Net / that | PyTorch TF32 step ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    nan = float("nan")
    for name, batch, tool_ms, ours_ms, train_ms, heuristic_ms, torch_ms in rows:
        fp32, fp32_measured, tf32 = torch_ms or (nan, nan, nan)
        print(f"| {name} | {batch} | {tool_ms:.2f} | {ours_ms:.2f} | {tool_ms / ours_ms:.3f} | "
              f"{train_ms:.2f} | {heuristic_ms or nan:.2f} | {fp32:.2f} | {ours_ms / fp32:.2f} | "
              f"{fp32_measured:.2f} | {ours_ms / fp32_measured:.2f} | {tf32:.2f} |")


if __name__ == "__main__":
    main()
