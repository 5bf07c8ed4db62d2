"""The most tasks a cluster can ever run at once, read from its settings.

A fit needing more than that can never start: it fails at once. A fit needing no
more waits while executors register (seconds on local-cluster, 30-120 s on YARN
or Kubernetes). None when the settings leave it open (a standalone master with
no spark.cores.max offers whatever its workers have).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Capacity:
    most_slots: Optional[int]  # None: not bounded by the settings
    reason: str                # the settings it comes from, for messages


def _number(conf, key: str) -> Optional[int]:
    value = conf.get(key, None)
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _local_capacity(master: str) -> Optional[Capacity]:
    cluster = re.fullmatch(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*\d+\s*\]", master)
    if cluster:
        executors, cores = int(cluster.group(1)), int(cluster.group(2))
        return Capacity(executors * cores, f"master {master}: {executors} executor(s) of "
                                           f"{cores} core(s)")
    local = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", master)
    if local:
        threads = local.group(1) or "1"
        cores = os.cpu_count() or 1 if threads == "*" else int(threads)
        return Capacity(cores, f"master {master}: {cores} thread(s)")
    return None


def _executor_cores(conf, master: str) -> Optional[int]:
    cores = _number(conf, "spark.executor.cores")
    if cores is None and master.startswith(("yarn", "k8s://")):
        return 1  # those managers' default
    return cores


def _cluster_capacity(conf, master: str) -> Capacity:
    cores = _executor_cores(conf, master)
    if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        most = _number(conf, "spark.dynamicAllocation.maxExecutors")
        if most is not None and cores is not None:
            return Capacity(most * cores, f"spark.dynamicAllocation.maxExecutors={most} "
                                          f"x spark.executor.cores={cores}")
        return Capacity(None, "dynamic allocation without a bound")
    cores_max = _number(conf, "spark.cores.max")
    if cores_max is not None:
        return Capacity(cores_max, f"spark.cores.max={cores_max}")
    instances = _number(conf, "spark.executor.instances")
    if instances is not None and cores is not None and not master.startswith("spark://"):
        return Capacity(instances * cores, f"spark.executor.instances={instances} "
                                           f"x spark.executor.cores={cores}")
    return Capacity(None, f"master {master}")


def capacity(conf, master: str) -> Capacity:
    """The most task slots the settings allow (cores / spark.task.cpus)."""
    master = master.strip()
    found = _local_capacity(master) or _cluster_capacity(conf, master)
    task_cpus = _number(conf, "spark.task.cpus") or 1
    if found.most_slots is None or task_cpus == 1:
        return found
    return Capacity(found.most_slots // task_cpus,
                    f"{found.reason} / spark.task.cpus={task_cpus}")
