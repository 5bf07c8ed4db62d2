"""Time to 89.5% Fashion-MNIST test accuracy on this machine's cores: one Net, SparkNet
K=2 and PyTorch, the same LeNet and solver, interleaved.

  Net 2t         one Net, threads=2 (its default convolution: each thread its own
                 images, patch 0014)
  SparkNet K=2   SparkNetTrainer on local-cluster[2,1,2048]: two one-core workers,
                 tau 50, validation every 10 rounds (every 500 iterations a worker)
  PyTorch 2t     torch_lenet_cpu.py under --torch-python (skipped, saying so, without one)

All use zoo.lenet(batch_size=64) and zoo.lenet_solver() (PyTorch: the same net,
fillers and solver, written in torch) and test all 10,000 test images every 500
iterations; the clock runs from the net's construction (SparkNet: from fit's
start) to the first test at or above the target, the tests included.

    python bench/bench_cpu_to_target.py [--repeats 3] [--torch-python /tmp/torchvenv/bin/python]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from results_io import interleave, record, summarize  # bench/, beside this script

from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import SparkNetTrainer, local_spark

HERE = Path(__file__).resolve().parent
TEST_EVERY = 500
MAX_ITERATIONS = 10000
NOT_REACHED = float("inf")  # a run that never reached the target


def net_seconds(target: float, threads: int) -> float:
    tic = time.perf_counter()
    net = Net(zoo.lenet(batch_size=64), zoo.lenet_solver(), seed=1, threads=threads)
    net.set_training_data(fashion_mnist("train"))
    net.set_validation_data(fashion_mnist("test"))
    for done in range(TEST_EVERY, MAX_ITERATIONS + 1, TEST_EVERY):
        net.train(TEST_EVERY)
        accuracy = net.test()["accuracy"]
        if accuracy >= target:
            seconds = time.perf_counter() - tic
            print(f"  Net {threads}t: {accuracy:.4f} at {done} iterations, {seconds:.1f} s",
                  flush=True)
            net.close()
            return seconds
    net.close()
    return NOT_REACHED


def sparknet_seconds(target: float, parts_of_runs: list, tau: int = 50) -> float:
    """Seconds to target; the run's fit_parts() appended to parts_of_runs."""
    spark = local_spark("local-cluster[2,1,2048]")
    try:
        trainer = SparkNetTrainer(spark, zoo.lenet(batch_size=64), zoo.lenet_solver(),
                                  num_workers=2, tau=tau, seed=1)
        tic = time.perf_counter()
        history = trainer.fit(fashion_mnist("train"), fashion_mnist("test"),
                              rounds=MAX_ITERATIONS // tau, validate_every=TEST_EVERY // tau,
                              progress=False,
                              until=lambda r: r.get("val_accuracy", 0) >= target).history
        seconds = time.perf_counter() - tic
    finally:
        spark.stop()
    accuracy = history[-1].get("val_accuracy", 0.0)
    parts = fit_parts(history, seconds)
    parts_of_runs.append(parts)
    print(f"  SparkNet K=2: {accuracy:.4f} at round {history[-1]['round']}, {seconds:.1f} s "
          f"({', '.join(f'{k} {v:.1f}' for k, v in parts.items())})", flush=True)
    return seconds if accuracy >= target else NOT_REACHED


def fit_parts(history: list, seconds: float) -> dict:
    """Where a fit's seconds went: the rounds' training (the slowest worker's) and
    sync, the driver's tests, and the rest (the fit's start and end: the executor
    check, the training set cached, the links opened and closed)."""
    parts = {name: sum(r.get(f"{name}_s", 0.0) for r in history)
             for name in ("compute", "sync", "validation")}
    parts["start_end"] = seconds - sum(parts.values())
    return {f"{name}_s": round(value, 2) for name, value in parts.items()}


def torch_seconds(python: str, data: Path, target: float, threads: int) -> float:
    done = subprocess.run([python, str(HERE / "torch_lenet_cpu.py"), str(data), "--threads",
                           str(threads), "--target", str(target), "--test-every", str(TEST_EVERY),
                           "--max-iterations", str(MAX_ITERATIONS)],
                          capture_output=True, text=True, timeout=3600, cwd=HERE)
    if done.returncode:
        raise RuntimeError(f"the PyTorch run failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  PyTorch {threads}t: {result}", flush=True)
    return result["seconds"] if result["seconds"] is not None else NOT_REACHED


def torch_data(folder: Path) -> Path:
    """Fashion-MNIST as one .npz for the PyTorch process (which may lack pysparknet)."""
    (train_x, train_y), (test_x, test_y) = fashion_mnist("train"), fashion_mnist("test")
    path = folder / "fashion_mnist.npz"
    np.savez(path, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=0.895)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved, each")
    parser.add_argument("--torch-python", default="",
                        help="a Python with torch (CPU); without it PyTorch is skipped")
    parser.add_argument("--with-one-thread", action="store_true", help="also one Net, 1 thread")
    args = parser.parse_args()
    sparknet_parts: list = []  # fit_parts() of each SparkNet run, in order
    runs = {"Net 2t": lambda: net_seconds(args.target, 2),
            "SparkNet K=2": lambda: sparknet_seconds(args.target, sparknet_parts)}
    if args.with_one_thread:
        runs["Net 1t"] = lambda: net_seconds(args.target, 1)
    with tempfile.TemporaryDirectory() as folder:
        if args.torch_python:
            data = torch_data(Path(folder))
            runs["PyTorch 2t"] = lambda: torch_seconds(args.torch_python, data, args.target, 2)
        else:
            print("PyTorch skipped: no --torch-python (a Python with torch installed)")
        samples = interleave(runs, args.repeats)
    for name, values in samples.items():
        print(f"{name}: {summarize(values)}")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    if "PyTorch 2t" in medians:
        for name in ("Net 2t", "SparkNet K=2"):
            print(f"{name} / PyTorch 2t: {medians[name] / medians['PyTorch 2t']:.2f}")
    record("cpu_to_target", rows=[{"variant": k, "seconds": v} for k, v in samples.items()],
           extra={"target": args.target, "test_every": TEST_EVERY,
                  "torch": bool(args.torch_python), "sparknet_parts": sparknet_parts})


if __name__ == "__main__":
    main()
