"""SparkSessions for SparkNet runs on this machine (local, local-cluster, standalone)."""
from __future__ import annotations

import os
import re
import sys


def _executor_memory(master: str) -> dict:
    """For local-cluster[K,C,MB]: executors of Spark's default 1 GB, capped at MB, said
    explicitly (an earlier session's larger setting would outlive it in the JVM, and
    a cluster whose workers hold less refuses to start)."""
    found = re.fullmatch(r"local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*(\d+)\s*\]", master)
    return {"spark.executor.memory": f"{min(1024, int(found.group(1)))}m"} if found else {}


def local_spark(master: str = "local-cluster[2,1,1024]", app_name: str = "pysparknet",
                conf: dict | None = None, checkpoint_dir: str | None = None):
    """A SparkSession on `master`, bound to 127.0.0.1, whose executors run this Python.

    local-cluster[K,1,MB] starts K executor JVMs, each with one core: SparkNet's
    one solver per executor. RDD checkpoints (the trainer uses them to keep its
    cached training data out of every task) go to checkpoint_dir, by default a
    fresh temporary folder (or conf's spark.checkpoint.dir). PySpark starts its JVM with the first session's
    settings as defaults for every later session of the process: pass each
    setting a session relies on (e.g. spark.task.maxFailures) explicitly.
    """
    import tempfile

    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Executors must run this interpreter (it has pysparknet); the conf alone
    # does not reach local-cluster executors, the environment does.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.pyspark.python", sys.executable)
               .config("spark.pyspark.driver.python", sys.executable)
               .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.python.worker.reuse", "true")
               # A solver's thread pool: one core per executor task.
               .config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1"))
    for key, value in {**_executor_memory(master), **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # On a cluster of hosts the folder must be one they all share (spark.checkpoint.dir).
    checkpoint_dir = checkpoint_dir or (conf or {}).get("spark.checkpoint.dir")
    spark.sparkContext.setCheckpointDir(checkpoint_dir or tempfile.mkdtemp(prefix="sparknet-rdd-"))
    return spark


def conf_pairs(pairs) -> dict:
    """spark-submit's --conf KEY=VALUE settings as a dict (ValueError naming a bad one)."""
    conf = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--conf takes KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value
    return conf
