"""The GPU checks of a CUDA build: Net and Caffe's tools on one GPU, no Spark.

Run by scripts/gpu_check.sh on a GPU host (a driver and Python; torch where
installed). Each check prints its result and adds it to a JSON summary:

  agreement  LeNet, same weights and batches, 5 solver steps on CPU and GPU:
             max over blobs of max|cpu - gpu| / max|cpu|, and the loss gap
  feed       the GPU feed's transform (crop, mirror, mean, scale) against the
             CPU's, bit for bit, over 3 training steps with random draws
  accuracy   LeNet on Fashion-MNIST, 2,000 iterations on the GPU
  oom        a net too large for the GPU fails with CaffeError, then LeNet
             trains in the same process
  sticky     a kernel fault (an Embed index far out of range, which Caffe
             only DCHECKs) in a child process: its CaffeError must say the
             process has to restart
  speed      not here: bench/bench_zoo_forward_backward.py --device gpu:0 --torch

    python bench/gpu_checks.py [--checks agreement feed oom accuracy sticky] [--out F.json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np

from pysparknet import CaffeError, Net, zoo
from pysparknet.data import fashion_mnist

DEVICE = "gpu:0"


def lenet(device: str, seed: int = 1) -> Net:
    return Net(zoo.lenet(batch_size=64), zoo.lenet_solver(), device=device, seed=seed)


def _set_variable(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextlib.contextmanager
def environment(name: str, value: str | None):
    """The variable `name` set to `value` (None: unset) inside; as it was, after.
    Caffe's patched layers read SPARKNET_* variables when a shape changes."""
    before = os.environ.get(name)
    _set_variable(name, value)
    try:
        yield
    finally:
        _set_variable(name, before)


def weights_gap(images: np.ndarray, labels: np.ndarray, make_net=lenet,
                device: str | None = None) -> tuple[float, float]:
    """Max over blobs of max|cpu - gpu| / max|cpu| after 5 steps from the same
    weights on the same batches, and the loss gap; make_net(device) -> Net."""
    device = device or DEVICE
    nets = {d: make_net(d) for d in ("cpu", device)}
    start = nets["cpu"].get_weights()
    losses = {}
    for d, net in nets.items():
        net.set_weights(start)
        net.set_training_data((images[:320], labels[:320]))
        losses[d] = net.train(5)["loss"]
    cpu, gpu = nets["cpu"].get_weights(), nets[device].get_weights()
    worst = 0.0
    for layer in cpu:
        for a, b in zip(cpu[layer], gpu[layer]):
            worst = max(worst, float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)))
    for net in nets.values():
        net.close()
    return worst, abs(losses["cpu"] - losses[device])


def check_agreement(images: np.ndarray, labels: np.ndarray) -> dict:
    """With the default (measured) cuDNN algorithm picks; the heuristic picks'
    gap is reported beside it."""
    worst, loss_gap = weights_gap(images, labels)
    with environment("SPARKNET_CUDNN_SEARCH", "heuristic"):
        heuristic_worst, _ = weights_gap(images, labels)
    return {"max_relative_weight_difference": worst, "loss_difference": loss_gap,
            "max_relative_weight_difference_heuristic_picks": heuristic_worst,
            "pass": worst <= 1e-5}


FEED_NET = """
name: "feed_only"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 16 dim: 3 dim: 24 dim: 24 } shape { dim: 16 } }
  transform_param { crop_size: 24 mirror: true mean_value: 104 mean_value: 117
                    mean_value: 123 scale: 0.017 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
FEED_SOLVER = 'base_lr: 0.0 lr_policy: "fixed" max_iter: 100 display: 0'


def check_feed() -> dict:
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (64, 3, 32, 30), np.uint8)
    labels = rng.integers(0, 2, 64)
    seen = {}
    for device in ("cpu", DEVICE):
        net = Net(FEED_NET, FEED_SOLVER, device=device, seed=5)
        net.set_training_data((images, labels))
        seen[device] = []
        for _ in range(3):
            net.train(1)
            seen[device].append(net.blob("data"))
        net.close()
    identical = all(np.array_equal(a, b) for a, b in zip(seen["cpu"], seen[DEVICE]))
    return {"bit_exact": identical, "pass": identical}


def check_accuracy(iterations: int) -> dict:
    net = lenet(DEVICE)
    net.set_training_data(fashion_mnist("train"))
    net.set_validation_data(fashion_mnist("test"))
    tic = time.perf_counter()
    net.train(iterations)
    seconds = time.perf_counter() - tic
    accuracy = net.test()["accuracy"]
    net.close()
    return {"iterations": iterations, "accuracy": accuracy, "train_seconds": seconds,
            "ms_per_iteration": seconds * 1e3 / iterations, "pass": accuracy >= 0.875}


def too_large_net(branches: int = 24) -> str:
    """LeNet-sized weights, but 24 activations of 7.5 GB each (each under
    Caffe's 2^31-value blob limit): allocated at the first forward pass."""
    layers = ['layer { name: "data" type: "Input" top: "data" top: "label" '
              'input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } shape { dim: 1 } } }',
              'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
              'inner_product_param { num_output: 10 } }',
              'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" '
              'top: "loss" }']
    for branch in range(branches):
        layers.append(f'layer {{ name: "wide{branch}" type: "Convolution" bottom: "data" '
                      f'top: "wide{branch}" convolution_param {{ num_output: 2400000 '
                      'kernel_size: 1 } }')
    return 'name: "too_large"\n' + "\n".join(layers)


def check_oom(images: np.ndarray, labels: np.ndarray) -> dict:
    failed_with = None
    large = Net(too_large_net(), zoo.lenet_solver(), device=DEVICE, seed=1)
    try:
        large.set_training_data((images, labels))
        large.train(1)
    except CaffeError as error:
        failed_with = str(error)
    finally:
        large.close()
    net = lenet(DEVICE)
    net.set_training_data((images, labels))
    loss = net.train(20)["loss"]
    net.close()
    out_of_memory = failed_with is not None and "out of memory" in failed_with
    return {"large_net_error": (failed_with or "")[-300:], "next_net_loss": loss,
            "pass": out_of_memory and bool(np.isfinite(loss))}


FAULTING_NET = """
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 4 dim: 1 } shape { dim: 4 } } }
layer { name: "embed" type: "Embed" bottom: "data" top: "embed"
  embed_param { num_output: 8 input_dim: 10 } }
layer { name: "ip" type: "InnerProduct" bottom: "embed" top: "ip"
  inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def sticky_child() -> None:
    """Reads ~3 GB past the Embed weights: an illegal address, a sticky error."""
    net = Net(FAULTING_NET, FEED_SOLVER, device=DEVICE, seed=1)
    net.set_training_data((np.full((8, 1), 1e8, np.float32), np.zeros(8)))
    try:
        net.train(1)
        print(json.dumps({"error": None}), flush=True)
    except CaffeError as error:
        print(json.dumps({"error": str(error)[-400:]}), flush=True)


def check_sticky() -> dict:
    child = subprocess.run([sys.executable, __file__, "--device", DEVICE, "--sticky-child"],
                           capture_output=True, text=True, timeout=300)
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    error = json.loads(lines[-1])["error"] if lines else None
    said_restart = bool(error) and "restart the process" in error
    # the exit status is reported, not judged: Caffe's own teardown may abort
    # on a lost context after the error was raised and caught
    return {"child_exit": child.returncode, "error": error, "pass": said_restart}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", nargs="+",
                        default=["agreement", "feed", "oom", "accuracy", "sticky"])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--out", default="gpu_checks.json")
    parser.add_argument("--sticky-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default=DEVICE,
                        help="the GPU (cpu only rehearses the checks against themselves)")
    args = parser.parse_args()
    globals()["DEVICE"] = args.device
    if args.sticky_child:
        sticky_child()
        return
    images, labels = fashion_mnist("test")
    runs = {"agreement": lambda: check_agreement(images, labels), "feed": check_feed,
            "oom": lambda: check_oom(images, labels),
            "accuracy": lambda: check_accuracy(args.iterations), "sticky": check_sticky}
    summary = {}
    for name in args.checks:
        try:
            summary[name] = runs[name]()
        except Exception as error:  # one failed check must not hide the others
            summary[name] = {"error": f"{type(error).__name__}: {error}", "pass": False}
        print(f"[gpu_checks] {name}: {json.dumps(summary[name])}", flush=True)
        with open(args.out, "w") as out:
            json.dump(summary, out, indent=2)


if __name__ == "__main__":
    main()
