"""Peak memory of SparkNet rounds at AlexNet's size (61M floats), K=2 workers.

bench/sized_net.py's net with 60,965,224 floats (244 MB per copy) on
local-cluster[K,1,MB]. Python-side copies are counted with tracemalloc, which
sees every numpy buffer and none of Caffe's own (C++) weights, gradients and
solver history - exactly the "beyond Caffe's own" the question asks about:

- driver: tracemalloc runs in this process; its peak is reset between rounds
  (the trainer's `until` hook) and read after each; worst of rounds 2..N;
- executors: their Python workers start with PYTHONTRACEMALLOC=1; after the
  run a probe job on each executor reads its worker's peak (whole run).

The JVMs' resident sizes are shown for completeness (the schedule decides
whether model-sized byte arrays pass through them).

    python bench/bench_memory.py [--workers 2] [--rounds 4] [--schedule segments|jobs]
"""
from __future__ import annotations

import argparse
import os
import tracemalloc
from pathlib import Path

from results_io import record  # bench/, beside this script
from sized_net import SIZES, SOLVER, sized_net, sized_records

from pysparknet.spark import SparkNetTrainer, local_spark


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _worker_peak(_):
    import os
    import tracemalloc
    return os.getpid(), tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else -1


class DriverPeaks:
    """The trainer's `until` hook: the traced peak of each round, then a reset."""

    def __init__(self):
        self.peaks: list[int] = []

    def __call__(self, record: dict) -> bool:
        self.peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.reset_peak()
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--executor-memory", type=int, default=3072, help="MB per executor")
    parser.add_argument("--schedule", choices=("segments", "jobs"), default="segments")
    args = parser.parse_args()
    n_floats = SIZES["AlexNet"]
    model = 4 * n_floats
    mb = args.executor_memory
    spark = local_spark(f"local-cluster[{args.workers},1,{mb}]",
                        conf={"spark.executor.memory": f"{mb}m", "spark.driver.memory": "4g",
                              "spark.driver.maxResultSize": "4g",
                              "spark.executorEnv.PYTHONTRACEMALLOC": "1"})
    sc = spark.sparkContext
    driver = DriverPeaks()
    try:
        trainer = SparkNetTrainer(spark, sized_net(n_floats), SOLVER,
                                  num_workers=args.workers, tau=1, seed=1, schedule=args.schedule)
        tracemalloc.start()
        trainer.fit(sized_records(sc, args.workers), rounds=args.rounds, progress=False,
                    until=driver)
        tracemalloc.stop()
        workers = dict(sc.parallelize(range(4 * args.workers), 4 * args.workers)
                       .map(_worker_peak).collect())
        jvm_pid = sc._jvm.java.lang.ProcessHandle.current().pid()
        executor_rss = {pid: _rss_mb(pid) for pid in _executor_jvms()}
        driver_jvm_rss = _rss_mb(jvm_pid)
    finally:
        spark.stop()
    print(f"\n{n_floats:,} floats = {model / 1e6:.0f} MB per copy; K={args.workers}; "
          f"schedule={args.schedule}; {args.rounds} rounds\n")
    print("| process | traced peak (MB) | model-sized copies (Python, beyond Caffe's) |")
    print("|---|---:|---:|")
    worst = max(driver.peaks[1:] or driver.peaks)
    print(f"| driver python (worst of rounds 2..{args.rounds}) | {worst / 1e6:.0f} | "
          f"{worst / model:.2f} |")
    for pid, peak in sorted(workers.items()):
        print(f"| executor python worker (pid {pid}, whole run) | {peak / 1e6:.0f} | "
              f"{peak / model:.2f} |")
    print(f"\nresident after the run: driver JVM {driver_jvm_rss:.0f} MB; executor JVMs "
          + ", ".join(f"{rss:.0f} MB" for rss in executor_rss.values()))
    record("memory", extra={"floats": n_floats, "model_bytes": model, "workers": args.workers,
                            "schedule": args.schedule, "rounds": args.rounds,
                            "driver_round_peaks": driver.peaks,
                            "worker_peaks": {str(k): v for k, v in workers.items()},
                            "driver_jvm_rss_mb": driver_jvm_rss,
                            "executor_jvm_rss_mb": list(executor_rss.values())})


def _executor_jvms() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"CoarseGrainedExecutorBackend" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


if __name__ == "__main__":
    main()
