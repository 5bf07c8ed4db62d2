"""What threads buy one Net on the CPU: the convolution's two threaded paths (patches
0013 and 0014) against upstream's per-image one.

A training step (Net.train: forward, backward, SGD update) of LeNet (batch 64,
Fashion-MNIST's shape) and CIFAR-10 quick (batch 100), and where asked the zoo's
AlexNet and GoogLeNet (batch 8), random inputs, timed in
fresh processes, interleaved (A B C ..., A B C ..., ...). The variants:

  unpatched 1t/2t   the Caffe before patch 0013 (an install of it: --unpatched DIR)
                    on Debian's default OpenBLAS (pthreads): what a Net cost before
  per-image 1t/2t   this build with SPARKNET_CONV_SPLIT=gemm SPARKNET_CONV_BATCH_MB=0
                    (upstream's per-image convolution; the default on one thread),
                    OpenBLAS on OpenMP
  batched 1t/2t     SPARKNET_CONV_SPLIT=gemm SPARKNET_CONV_BATCH_MB=16: chunks of
                    images in one GEMM (patch 0013), OpenBLAS on OpenMP
  images 2t         SPARKNET_CONV_SPLIT=images: each thread its own images, one at a
                    time (patch 0014; the default on two or more threads)
  batched 2t, pthreads BLAS   batched on OpenBLAS's pthreads build (OpenMP's idle
                    threads then sleep: pysparknet/_thread_pools.py)

And the ceiling, in the same run: one 1024^3 sgemm on 1 and 2 threads (what a
second core buys the BLAS itself on this machine).

The BLAS build is picked per process with LD_LIBRARY_PATH (Debian's
/usr/lib/<arch>/openblas-{openmp,pthread}, both installed by scripts/setup.sh).

    python bench/bench_cpu_threads.py [--nets sgemm lenet cifar10_quick] [--repeats 5]
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
shape, classes = {shape!r}, {classes}
rng = np.random.default_rng(0)
images = rng.random((batch * 2, *shape), dtype=np.float32) * 255
labels = rng.integers(0, classes, batch * 2).astype(np.float32)
net = Net(model, solver, seed=1, **net_options)
net.set_training_data((images, labels))
net.train({warmup})  # warm-up: buffers, the BLAS's threads
tic = time.perf_counter()
net.train(iterations)
print(1e3 * (time.perf_counter() - tic) / iterations)
"""
# The ceiling: what a second thread buys the BLAS itself on one large square sgemm.
GEMM = """
import ctypes, time, numpy as np
blas = ctypes.CDLL({library!r})  # its threads: the environment's *_NUM_THREADS
n = 1024
a, b, c = (np.random.default_rng(0).random((n, n), dtype=np.float32) for _ in range(3))
pointer = lambda m: m.ctypes.data_as(ctypes.c_void_p)
def gemm():  # row-major, no transposes: c = a b
    blas.cblas_sgemm(101, 111, 111, n, n, n, ctypes.c_float(1), pointer(a), n, pointer(b), n,
                     ctypes.c_float(0), pointer(c), n)
gemm()
tic = time.perf_counter()
for _ in range({iterations}):
    gemm()
print(1e3 * (time.perf_counter() - tic) / {iterations})
"""
BATCH = {"lenet": 64, "cifar10_quick": 100, "sgemm": 1024, "alexnet": 8, "googlenet": 8}
ITERATIONS = {"lenet": 200, "cifar10_quick": 30, "sgemm": 100, "alexnet": 3, "googlenet": 2}
WARMUP = {"lenet": 10, "cifar10_quick": 3, "alexnet": 1, "googlenet": 1}
# The records each net is fed: (C, H, W) and classes (the zoo entries' record shapes).
RECORDS = {"lenet": ((1, 28, 28), 10), "cifar10_quick": ((3, 32, 32), 10),
           "alexnet": ((3, 227, 227), 1000), "googlenet": ((3, 224, 224), 1000)}
ZOO_NETS = ("alexnet", "googlenet")  # slow: the variants before and after only
BLAS_DIRS = {blas: f"/usr/lib/{sysconfig.get_config_var('MULTIARCH')}/openblas-{blas}"
             for blas in ("openmp", "pthread")}
TIMEOUT_S = 900


def openblas(build: str) -> dict:
    """The environment that loads Debian's OpenBLAS `build` (openmp or pthread)."""
    return {"LD_LIBRARY_PATH": BLAS_DIRS[build]}


def step_ms(net: str, iterations: int, threads: int, batch_mb: str = "", site: str = "",
            blas_env: dict | None = None, library: str = "libopenblas.so.0",
            split: str = "gemm") -> float:
    """ms per training step in a fresh process; batch_mb: SPARKNET_CONV_BATCH_MB ("": the
    default, "0": per image) and split: SPARKNET_CONV_SPLIT, the convolution's path;
    site: a folder to import pysparknet from; blas_env: the
    environment that loads the BLAS (default: OpenBLAS's OpenMP build), whose `library`
    the sgemm ceiling calls."""
    env = dict(os.environ, **{f"{lib}_NUM_THREADS": str(threads)
                              for lib in ("OPENBLAS", "OMP", "BLIS", "MKL")},
               **(blas_env or openblas("openmp")))
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("SPARKNET_CONV_BATCH_MB", None)
    env["SPARKNET_CONV_SPLIT"] = split
    if batch_mb:
        env["SPARKNET_CONV_BATCH_MB"] = batch_mb
    if site:
        env["PYTHONPATH"] = site
    # An older install knows no threads=: the environment above sets its threads.
    net_options = {} if site else {"threads": threads}
    code = GEMM.format(library=library, iterations=iterations) if net == "sgemm" else \
        STEP.format(net=net, batch=BATCH[net], iterations=iterations, net_options=net_options,
                    shape=RECORDS[net][0], classes=RECORDS[net][1], warmup=WARMUP[net])
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode:
        raise RuntimeError(f"a timing process failed: {done.stderr.strip()[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def variants(net: str, iterations: int, unpatched: str) -> dict:
    if net == "sgemm":
        return {f"{t}t": lambda t=t: step_ms(net, iterations, t) for t in (1, 2)}
    runs = {}
    for threads in (1, 2):
        if unpatched:
            runs[f"unpatched {threads}t"] = lambda t=threads: step_ms(
                net, iterations, t, "0", unpatched, blas_env=openblas("pthread"))
        if net not in ZOO_NETS:
            runs[f"per-image {threads}t"] = lambda t=threads: step_ms(net, iterations, t, "0")
        runs[f"batched {threads}t"] = lambda t=threads: step_ms(net, iterations, t, "16")
    runs["images 2t"] = lambda: step_ms(net, iterations, 2, split="images")
    if net not in ZOO_NETS:
        runs["batched 2t, pthreads BLAS"] = lambda: step_ms(
            net, iterations, 2, "16", blas_env=openblas("pthread"))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["sgemm", "lenet", "cifar10_quick"],
                        choices=sorted(BATCH), help="also: alexnet googlenet (batch 8; "
                        "unpatched and batched only)")
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
        if net == "sgemm":
            print(f"sgemm {BATCH[net]}^3: 2 threads {medians['1t'] / medians['2t']:.2f}x one",
                  flush=True)
        else:
            one = medians.get("per-image 1t", medians["batched 1t"])
            print(f"{net}: images 2t is {one / medians['images 2t']:.2f}x one thread, batched "
                  f"2t {one / medians['batched 2t']:.2f}x", flush=True)
        rows.append({"net": net, "batch": BATCH[net], "iterations": iterations,
                     "samples": samples})
    record("cpu_threads", rows=rows, extra={"unpatched": bool(args.unpatched)})


if __name__ == "__main__":
    main()
