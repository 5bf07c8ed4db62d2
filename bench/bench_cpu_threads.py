"""What threads buy one Net on the CPU: the batched convolution (patch 0013) and its threads.

A training step (Net.train: forward, backward, SGD update) of LeNet (batch 64,
Fashion-MNIST's shape) and CIFAR-10 quick (batch 100), random inputs, timed in
fresh processes, interleaved (A B C ..., A B C ..., ...). The variants:

  unpatched 1t/2t   the Caffe before patch 0013 (an install of it: --unpatched DIR)
                    on Debian's default OpenBLAS (pthreads): what a Net cost before
  per-image 1t/2t   this build with SPARKNET_CONV_BATCH_MB=0 (upstream's per-image
                    convolution), OpenBLAS on OpenMP
  batched 1t/2t     this build's default, OpenBLAS on OpenMP
  batched 2t, pthreads BLAS   the same on OpenBLAS's pthreads build (OpenMP's idle
                    threads then sleep: pysparknet/_thread_pools.py)

The BLAS build is picked per process with LD_LIBRARY_PATH (Debian's
/usr/lib/<arch>/openblas-{openmp,pthread}, both installed by scripts/setup.sh).

    python bench/bench_cpu_threads.py [--nets lenet cifar10_quick] [--repeats 3]
        [--unpatched /tmp/oldpkg]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile

from results_io import interleave, record, summarize  # bench/, beside this script

STEP = """
import time, numpy as np
from pysparknet import Net, zoo
net_name, batch, iterations, net_options = {net!r}, {batch}, {iterations}, {net_options}
model = zoo.lenet(batch_size=batch) if net_name == "lenet" else zoo.load(net_name, batch_size=batch)
solver = zoo.lenet_solver() if net_name == "lenet" else model.solver
shape = (1, 28, 28) if net_name == "lenet" else (3, 32, 32)
rng = np.random.default_rng(0)
images = rng.random((batch * 4, *shape), dtype=np.float32) * 255
labels = rng.integers(0, 10, batch * 4).astype(np.float32)
net = Net(model, solver, seed=1, **net_options)
net.set_training_data((images, labels))
net.train(10)  # warm-up: buffers, the BLAS's threads
tic = time.perf_counter()
net.train(iterations)
print(1e3 * (time.perf_counter() - tic) / iterations)
"""
BATCH = {"lenet": 64, "cifar10_quick": 100}
ITERATIONS = {"lenet": 200, "cifar10_quick": 30}  # a few seconds of steps each
BLAS_DIRS = {blas: f"/usr/lib/{sysconfig.get_config_var('MULTIARCH')}/openblas-{blas}"
             for blas in ("openmp", "pthread")}
TIMEOUT_S = 900


def step_ms(net: str, iterations: int, threads: int, batch_mb: str = "", site: str = "",
            blas: str = "openmp") -> float:
    """ms per training step in a fresh process; batch_mb: SPARKNET_CONV_BATCH_MB ("": the
    default, "0": per image); site: a folder to import pysparknet from."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               LD_LIBRARY_PATH=BLAS_DIRS[blas])
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("SPARKNET_CONV_BATCH_MB", None)
    if batch_mb:
        env["SPARKNET_CONV_BATCH_MB"] = batch_mb
    if site:
        env["PYTHONPATH"] = site
    # An older install knows no threads=: the environment above sets its threads.
    net_options = {} if site else {"threads": threads}
    code = STEP.format(net=net, batch=BATCH[net], iterations=iterations,
                       net_options=net_options)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode:
        raise RuntimeError(f"a timing process failed: {done.stderr.strip()[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def variants(net: str, iterations: int, unpatched: str) -> dict:
    runs = {}
    for threads in (1, 2):
        if unpatched:
            runs[f"unpatched {threads}t"] = lambda t=threads: step_ms(
                net, iterations, t, "0", unpatched, blas="pthread")
        runs[f"per-image {threads}t"] = lambda t=threads: step_ms(net, iterations, t, "0")
        runs[f"batched {threads}t"] = lambda t=threads: step_ms(net, iterations, t)
    runs["batched 2t, pthreads BLAS"] = lambda: step_ms(net, iterations, 2, blas="pthread")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["lenet", "cifar10_quick"],
                        choices=sorted(BATCH))
    parser.add_argument("--iterations", type=int, default=0,
                        help="timed steps a process (default: LeNet 200, CIFAR-10 quick 30)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved, each")
    parser.add_argument("--unpatched", default="",
                        help="a folder holding an install of pysparknet before patch 0013")
    args = parser.parse_args()
    rows = []
    for net in args.nets:
        iterations = args.iterations or ITERATIONS[net]
        samples = interleave(variants(net, iterations, args.unpatched), args.repeats)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        for name, values in samples.items():
            print(f"{net} {name}: {summarize(values)}", flush=True)
        print(f"{net}: batched 2t is {medians['batched 1t'] / medians['batched 2t']:.2f}x "
              f"batched 1t, {medians['per-image 1t'] / medians['batched 2t']:.2f}x per-image 1t",
              flush=True)
        rows.append({"net": net, "batch": BATCH[net], "iterations": iterations,
                     "samples": samples})
    record("cpu_threads", rows=rows, extra={"unpatched": bool(args.unpatched)})


if __name__ == "__main__":
    main()
