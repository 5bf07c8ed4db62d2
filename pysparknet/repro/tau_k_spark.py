"""The measured side of the tau/K study: C and S on this machine, and real Spark runs.

Each K gets its own local-cluster[K,1,MB] (one core per executor: SparkNet's
one solver per worker); with K above this machine's cores the workers share
them, and every row says so. C and S are measured on the cluster the runs
use, just before and just after each run (repro/costs.py), so they see the
same load as the run (a shared machine's speed drifts from minute to minute).
"""
from __future__ import annotations

import os

from ..data import fashion_mnist
from ..spark import SparkNetTrainer, local_spark
from ..zoo import lenet, lenet_solver
from . import costs
from .tau_k import Settings

EXECUTOR_MB = 1536


def cores() -> int:
    return len(os.sched_getaffinity(0))


def oversubscribed(workers: int) -> bool:
    return workers > cores()


def _spark_fit(spark, settings: Settings, train, test, workers: int, tau: int) -> dict:
    trainer = SparkNetTrainer(spark, lenet(batch_size=settings.batch), lenet_solver(),
                              num_workers=workers, tau=tau, seed=settings.seed,
                              slots_timeout=costs.SLOTS_TIMEOUT_S)
    try:
        history = trainer.fit(train, test, rounds=settings.rounds(workers, tau),
                              validate_every=settings.test_every(workers, tau),
                              progress=False).history
    finally:
        trainer.driver_net.close()
    clock, points = 0.0, []
    for record in history:
        clock += record["round_s"]  # training rounds only: validation is between them
        if "val_accuracy" in record:
            points.append({"round": record["round"], "iterations": record["iterations"],
                           "images": record["round"] * tau * workers * settings.batch,
                           "accuracy": record["val_accuracy"], "loss": record["val_loss"],
                           "train_s": clock})
    compute = sum(r["compute_s"] for r in history) / sum(r["tau"] for r in history)
    sync = sorted(r["sync_s"] for r in history)[len(history) // 2]
    return {"workers": workers, "tau": tau, "points": points,
            "compute_ms_per_step": 1e3 * compute, "median_sync_s": sync,
            "oversubscribed": oversubscribed(workers)}


def _cluster(workers: int):
    return local_spark(f"local-cluster[{workers},1,{EXECUTOR_MB}]",
                       app_name=f"tau-k K={workers}",
                       conf={"spark.executor.memory": f"{EXECUTOR_MB}m"})


def _calibrate(spark, settings: Settings, k: int, progress) -> tuple[float, float]:
    compute, sync = costs.round_costs(spark, k, settings.batch)
    progress(f"  K={k}: C {compute:.2f} ms per step, S {1e3 * sync:.1f} ms per round"
             + (f" ({k} workers on {cores()} cores)" if oversubscribed(k) else ""))
    return compute, sync


def _mean(pairs) -> tuple[float, float]:
    return tuple(sum(values) / len(values) for values in zip(*pairs))


def spark_runs(settings: Settings, workers: tuple, taus: tuple,
               progress=print) -> tuple[dict, dict, list]:
    """({K: C_K ms}, {K: S_K s}, [one run per (K, tau)]): each K on its own
    local-cluster, C and S measured there before and after each run (a run's own
    costs: the mean of the two around it; C_K, S_K: the mean of all)."""
    train, test = fashion_mnist("train"), fashion_mnist("test")
    computes, syncs, runs = {}, {}, []
    for k in workers:
        spark = _cluster(k)
        try:
            calibrations = [_calibrate(spark, settings, k, progress)]
            for tau in taus:
                run = _spark_fit(spark, settings, train, test, k, tau)
                last = run["points"][-1]
                progress(f"  Spark K={k} tau={tau}: accuracy {last['accuracy']:.4f}, "
                         f"{last['train_s']:.1f} s training"
                         + (f" ({k} workers on {cores()} cores)" if oversubscribed(k) else ""))
                calibrations.append(_calibrate(spark, settings, k, progress))
                run["compute_ms"], run["sync_s"] = _mean(calibrations[-2:])
                runs.append(run)
        finally:
            spark.stop()
        computes[k], syncs[k] = _mean(calibrations)
    return computes, syncs, runs


def measure_costs(settings: Settings, workers: tuple, progress=print) -> tuple[dict, dict]:
    """C_K and S_K for K with no Spark runs (each on its own local-cluster); K=1 is
    one net alone in a fresh process, with no sync."""
    computes, syncs = {}, {}
    for k in workers:
        if k == 1:
            computes[1] = costs.compute_ms(settings.batch, 200)
            progress(f"  K=1: C {computes[1]:.2f} ms per step (one net, one thread)")
            continue
        spark = _cluster(k)
        try:
            computes[k], syncs[k] = _calibrate(spark, settings, k, progress)
        finally:
            spark.stop()
    return computes, syncs
