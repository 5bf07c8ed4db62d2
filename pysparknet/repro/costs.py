"""The two costs of SparkNet's round, measured: C (one training step) and S (the sync).

round_costs: a short fit of the trainer's own on the cluster the runs use (K
one-core workers; oversubscribed when K exceeds the cores): C_K is the slowest
worker's training time per step, S_K the round's time outside it (round time
minus that, as bench/bench_sync.py measures the sync), medians over the
rounds between the first (which builds the solvers) and the last (which ends
the stage). Measured on the cluster just before the runs it predicts, since a
shared machine's speed drifts between minutes. compute_ms: a Net's training
step timed in fresh processes started together (bench/bench_lenet_cores.py's
way), for the one net of the serial baseline.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

STEP = """
import time
from pysparknet import Net, zoo
from pysparknet.data import fashion_mnist
net = Net(zoo.lenet(batch_size={batch}), zoo.lenet_solver(), seed=1)
net.set_training_data(fashion_mnist("train"))
net.train(20)  # warm-up
tic = time.perf_counter()
net.train({iterations})
print(1e3 * (time.perf_counter() - tic) / {iterations})
"""
STEP_TIMEOUT_S = 600
SLOTS_TIMEOUT_S = 180.0  # K executor JVMs starting on a loaded 2-core machine


def compute_ms(batch: int, iterations: int, threads: int = 1, side_by_side: int = 1) -> float:
    """Mean ms per LeNet training step of `side_by_side` processes started together."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    code = STEP.format(batch=batch, iterations=iterations)
    # Run from a neutral folder: `python -c` puts its working folder first on sys.path,
    # and from a source checkout that is the unbuilt package, not the installed one.
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tempfile.gettempdir(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(side_by_side)]
    times = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=STEP_TIMEOUT_S)
            if proc.returncode:
                raise RuntimeError(f"a timing process failed (exit {proc.returncode}): "
                                   f"{err.strip()[-2000:]}")
            times.append(float(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return sum(times) / len(times)


def round_costs(spark, workers: int, batch: int, tau: int = 10,
                rounds: int = 6) -> tuple[float, float]:
    """(C_K ms, S_K s) of K LeNet workers on `spark`'s cluster, from a short fit of its
    own: C the slowest worker's training per step, S the round's time outside it,
    medians over the rounds between the first and the last."""
    from ..data import fashion_mnist
    from ..spark import SparkNetTrainer
    from ..zoo import lenet, lenet_solver

    if rounds < 3:
        raise ValueError(f"rounds must be >= 3 (the first and last are left out), got {rounds}")
    trainer = SparkNetTrainer(spark, lenet(batch_size=batch), lenet_solver(),
                              num_workers=workers, tau=tau, seed=1,
                              slots_timeout=SLOTS_TIMEOUT_S)
    try:
        history = trainer.fit(fashion_mnist("train"), rounds=rounds, progress=False).history
    finally:
        trainer.driver_net.close()
    kept = history[1:-1]
    return (1e3 * statistics.median(r["compute_s"] / r["tau"] for r in kept),
            statistics.median(r["sync_s"] for r in kept))
