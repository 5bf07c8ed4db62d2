"""Peak memory of a SparkNet round at AlexNet's size (61M floats), K=2 workers.

bench/sized_net.py's net with 60,965,224 floats (244 MB) on
local-cluster[K,1,MB]. Between rounds (the trainer's `until` hook, on the
driver) the bench resets every process's peak-RSS counter (/proc/PID/clear_refs)
and reads its RSS; after the next round it reads the peak (VmHWM). Growth =
peak - RSS before the round, in units of the weight vector's size:

- driver Python process: the copies it holds at the peak are 1 (the current
  weights, held through the round so a failed round loses nothing) + growth;
  Caffe's own buffers in the driver's Net are allocated before and not counted;
- each executor's Python worker: growth is what the round adds beyond Caffe's
  own weights, gradients and solver history (allocated in round 1);
- the JVMs (driver, executors) are shown for completeness: the bytes pass
  through them as Spark broadcast blocks and task results.

Linux only (reads /proc). Run as a user allowed to write /proc/PID/clear_refs
of Spark's processes (their owner or root).

    python bench/bench_memory.py [--workers 2] [--rounds 4]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from sized_net import SIZES, SOLVER, sized_net, sized_records

from pysparknet.spark import SparkNetTrainer, local_spark


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int, tree) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def spark_processes() -> dict[int, str]:
    """This driver's processes by role: driver python/JVM, executor JVMs, python workers."""
    me = os.getpid()
    tree = _children()
    roles = {me: "driver python"}
    for pid in _descendants(me, tree):
        cmd = _cmdline(pid)
        if "CoarseGrainedExecutorBackend" in cmd:
            roles[pid] = "executor JVM"
        elif "java" in cmd.split(" ")[0]:
            roles[pid] = "driver JVM"
        elif "python" in cmd and any(roles.get(p) == "executor JVM" for p in roles
                                     if pid in _descendants(p, tree)):
            roles[pid] = "executor python"
    return roles


class PeakTracker:
    """Resets peaks before a round and reads them after it."""

    def __init__(self):
        self.before: dict[int, int] = {}
        self.rounds: list[dict[int, tuple[str, int, int]]] = []

    def __call__(self, record: dict) -> bool:
        if self.before:
            self.rounds.append({pid: (role, self.before[pid], _status(pid)["VmHWM"])
                                for pid, role in spark_processes().items()
                                if pid in self.before})
        self.before = {}
        for pid in spark_processes():
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            self.before[pid] = _status(pid)["VmRSS"]
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="K")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--executor-memory", type=int, default=3072, help="MB per executor")
    args = parser.parse_args()
    n_floats = SIZES["AlexNet"]
    model = 4 * n_floats
    spark = local_spark(f"local-cluster[{args.workers},1,{args.executor_memory}]",
                        conf={"spark.driver.memory": "4g", "spark.driver.maxResultSize": "4g"})
    tracker = PeakTracker()
    try:
        trainer = SparkNetTrainer(spark, sized_net(n_floats), SOLVER,
                                  num_workers=args.workers, tau=1, seed=1)
        trainer.fit(sized_records(spark.sparkContext, args.workers), rounds=args.rounds,
                    progress=False, until=tracker)
    finally:
        spark.stop()
    print(f"\n{n_floats:,} floats = {model / 1e6:.0f} MB per copy; K={args.workers}; "
          f"rounds 2..{args.rounds}, worst round\n")
    print("| process | RSS before round (MB) | peak growth in a round (MB) | "
          "growth / model size | copies held at peak |")
    print("|---|---:|---:|---:|---:|")
    pids = sorted(tracker.rounds[-1], key=lambda p: tracker.rounds[-1][p][0])
    for pid in pids:
        role = tracker.rounds[-1][pid][0]
        growth = max(r[pid][2] - r[pid][1] for r in tracker.rounds if pid in r)
        before = tracker.rounds[-1][pid][1]
        held = f"{1 + growth / model:.2f}" if role == "driver python" else \
            (f"{growth / model:.2f} beyond Caffe's" if role == "executor python" else "-")
        print(f"| {role} (pid {pid}) | {before / 1e6:.0f} | {growth / 1e6:.0f} | "
              f"{growth / model:.2f} | {held} |")


if __name__ == "__main__":
    main()
