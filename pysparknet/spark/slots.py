"""What a fit needs of the cluster, checked before any work: K tasks at once, each
partition always on the same Python worker.

A round's K tasks wait for each other (the driver gathers them in partition
order), so a cluster that cannot run K at once deadlocks as soon as a task
waits for a slot held by a finished one. In local mode every task runs in one
executor whose pool of Python workers hands partitions to whichever worker is
idle, so a partition's solver (momentum, data position) is not where its next
task runs.
"""
from __future__ import annotations

import logging
import os
import re
import time
import warnings

from ..errors import ClusterError
from .capacity import capacity

_LOG = logging.getLogger("pysparknet")


def check_master(master: str, num_workers: int) -> None:
    """local[N>1] cannot keep K>1 solvers apart: refuse it with the way out."""
    match = re.fullmatch(r"local\[(\d+|\*)(?:,\s*\d+)?\]", master.strip())
    if num_workers > 1 and match and (match.group(1) == "*" or int(match.group(1)) > 1):
        raise ClusterError(
            f"master {master!r}: in local mode one executor runs every task and its Python "
            "workers swap partitions between rounds, so solvers are rebuilt or stale and "
            f"seeded runs are not reproducible. Use local-cluster[{num_workers},1,2048] "
            f"({num_workers} executor processes of one core each), a cluster master, or "
            "num_workers=1")


def max_task_attempts(sc) -> int:
    """spark.task.maxFailures as Spark applies it (local[N] masters: 1, or their F)."""
    conf = sc.getConf()
    local = re.fullmatch(r"local(?:\[[^,\]]+(?:,\s*(\d+))?\])?", sc.master.strip())
    default = (local.group(1) or "1") if local else "4"
    return int(conf.get("spark.task.maxFailures", default) or default)


def concurrent_slots(sc) -> int:
    """Tasks the cluster can run at once now (Spark's own count, all executors)."""
    jsc = sc._jsc.sc()
    profile = jsc.resourceProfileManager().defaultResourceProfile()
    return int(jsc.maxNumConcurrentTasks(profile))


def executor_count(sc) -> int:
    return max(len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1, 0)  # less the driver


def wait_for_slots(sc, needed: int, timeout_s: float) -> int:
    """Wait until `needed` tasks can run at once. ClusterError at once when the
    cluster's settings can never offer that many; after timeout_s when executors
    that could still come have not registered (with a progress line meanwhile)."""
    most = capacity(sc.getConf(), sc.master)
    if most.most_slots is not None and most.most_slots < needed:
        raise ClusterError(
            f"the cluster can run at most {most.most_slots} task(s) at once ({most.reason}); "
            f"SparkNet with num_workers={needed} needs {needed} at once (a round's tasks "
            f"wait for each other). {_more_slots()}")
    started, next_note = time.monotonic(), _NOTE_EVERY_S
    slots = concurrent_slots(sc)
    while slots < needed:
        waited = time.monotonic() - started
        if waited >= timeout_s:
            raise ClusterError(
                f"the cluster runs {slots} task(s) at once; SparkNet with num_workers="
                f"{needed} needs {needed} at once, and no more executors registered in "
                f"{timeout_s:.0f} s (Faults(slots_timeout=...)). {_more_slots()}")
        if waited >= next_note:  # executors still starting: say so, now and then
            _LOG.warning("waiting for executors: %d of %d task slots after %.0f s (up to "
                         "%.0f s)", slots, needed, waited, timeout_s)
            next_note += _NOTE_EVERY_S
        time.sleep(0.25)
        slots = concurrent_slots(sc)
    _warn_shared_executors(sc, needed, slots)
    return slots


_MORE_SLOTS = ("Add executors or cores (spark.executor.instances, spark.cores.max), or "
               "lower num_workers")
# A deployment's own way to more slots (the compose cluster sets it: WORKERS=K).
MORE_SLOTS_VARIABLE = "PYSPARKNET_MORE_SLOTS"


def _more_slots() -> str:
    own = os.environ.get(MORE_SLOTS_VARIABLE, "").strip()
    return f"{own}. Otherwise: {_MORE_SLOTS}" if own else _MORE_SLOTS
_NOTE_EVERY_S = 15.0


def _warn_shared_executors(sc, needed: int, slots: int) -> None:
    executors = executor_count(sc)
    if needed > 1 and executors and slots > executors:
        _LOG.warning("executors run %d task slots between %d executors: partitions can move "
                     "between an executor's Python workers, rebuilding their solvers; set "
                     "spark.executor.cores=1 (or spark.task.cpus to the executor's cores) for "
                     "reproducible runs", slots, executors)


def check_gpu_assignment(conf, on_unassigned_gpu: str) -> None:
    """device='gpu' without GPUs in Spark's task resources: every worker would take
    gpu:0 (all on one card, or none at all); warn, or fail as asked."""
    try:
        per_task = float(conf.get("spark.task.resource.gpu.amount", "0") or 0)
    except ValueError:
        per_task = 0.0
    if per_task > 0:
        return
    message = ("device='gpu' but spark.task.resource.gpu.amount is not set: Spark assigns "
               "no GPU to the tasks, so every worker uses gpu:0. Set it (with "
               "spark.executor.resource.gpu.amount and a discovery script), or pass "
               "device='gpu:N'")
    if on_unassigned_gpu == "error":
        raise ClusterError(message)
    warnings.warn(message, stacklevel=3)
