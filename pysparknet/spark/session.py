"""SparkSessions for SparkNet runs on this machine (local, local-cluster, standalone)."""
from __future__ import annotations

import os
import re
import secrets
import sys

from .master_probe import MASTER_WAIT_S, check_standalone_master

INSECURE = {"spark.authenticate": "false", "spark.network.crypto.enabled": "false"}


def secure_conf() -> dict:
    """Spark's own authentication and RPC encryption (AES-GCM), with a fresh secret:
    what carries the tasks - and in them the exchange's pin and run secret - is
    then neither readable nor forgeable on the network."""
    return {"spark.authenticate": "true", "spark.authenticate.secret": secrets.token_hex(32),
            "spark.network.crypto.enabled": "true"}


def _security(master: str, secure: bool, conf: dict) -> dict:
    """The security settings a session adds: none when the caller chose (conf names
    spark.authenticate); a fresh secret for the executors local-cluster starts;
    explicitly off when asked, since PySpark's JVM keeps an earlier session's
    settings as defaults."""
    if "spark.authenticate" in conf:
        return {}
    if master.startswith("local-cluster"):
        return secure_conf() if secure else INSECURE
    if master.startswith("local") or not secure:
        # local[N]: one JVM, no RPC between processes to protect; and Spark would make
        # a secret of its own there that outlives the session in this JVM
        return INSECURE
    return {}  # a cluster's manager or daemons hold its secret: pass it in conf


def _executor_memory(master: str) -> dict:
    """For local-cluster[K,C,MB]: executors of Spark's default 1 GB, capped at MB, said
    explicitly (an earlier session's larger setting would outlive it in the JVM, and
    a cluster whose workers hold less refuses to start)."""
    found = re.fullmatch(r"local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*(\d+)\s*\]", master)
    return {"spark.executor.memory": f"{min(1024, int(found.group(1)))}m"} if found else {}


def _base_settings() -> dict:
    """What every session of this package sets (executors run this Python)."""
    return {
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        "spark.ui.showConsoleProgress": "false",
        "spark.python.worker.reuse": "true",
        # Other native work in an executor stays on one thread; a solver takes its
        # task's cores (spark.task.cpus: task_resources.task_threads).
        "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
        "spark.executorEnv.OMP_NUM_THREADS": "1",
    }


def local_spark(master: str = "local-cluster[2,1,1024]", app_name: str = "pysparknet",
                conf: dict | None = None, checkpoint_dir: str | None = None,
                secure: bool = True, master_wait_s: float = MASTER_WAIT_S):
    """A SparkSession on `master`, bound to 127.0.0.1, whose executors run this Python.

    secure: Spark's authentication and RPC encryption on, with a fresh secret, for
    local-cluster masters (a standalone cluster's secret comes in conf:
    StandaloneCluster.spark_conf; local[N] has no RPC between processes); False
    turns them off explicitly. master_wait_s: how long a spark:// master that does
    not answer yet (still starting) is asked again, as Spark's own client would.

    local-cluster[K,1,MB] starts K executor JVMs, each with one core: SparkNet's
    one solver per executor. RDD checkpoints (the trainer uses them to keep its
    cached training data out of every task) go to checkpoint_dir, by default a
    fresh temporary folder (or conf's spark.checkpoint.dir). PySpark starts its JVM with the first session's
    settings as defaults for every later session of the process: pass each
    setting a session relies on (e.g. spark.task.maxFailures) explicitly.
    """
    import tempfile

    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Executors must run this interpreter (it has pysparknet); the conf alone
    # does not reach local-cluster executors, the environment does.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {**_base_settings(), **_executor_memory(master),
                **_security(master, secure, conf or {}), **(conf or {})}
    check_standalone_master(master, settings, SparkConf().setMaster(master)
                            .setAppName(app_name).setAll(list(settings.items())),
                            wait_s=master_wait_s)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # On a cluster of hosts the folder must be one they all share (spark.checkpoint.dir).
    checkpoint_dir = checkpoint_dir or (conf or {}).get("spark.checkpoint.dir")
    _set_checkpoint_dir(spark.sparkContext,
                        checkpoint_dir or tempfile.mkdtemp(prefix="sparknet-rdd-"), master)
    return spark


def _set_checkpoint_dir(sc, directory: str, master: str) -> None:
    """sc.setCheckpointDir, without Spark's warning that a cluster's checkpoint folder
    "must not be on the local filesystem" where that is not so: local-cluster's
    executors are processes of this machine, so they all share a local folder.
    (local_spark has just set the level to WARN; this call puts it back.)"""
    if not master.strip().startswith("local-cluster"):
        sc.setCheckpointDir(directory)
        return
    sc.setLogLevel("ERROR")
    try:
        sc.setCheckpointDir(directory)
    finally:
        sc.setLogLevel("WARN")


def conf_pairs(pairs) -> dict:
    """spark-submit's --conf KEY=VALUE settings as a dict (ValueError naming a bad one)."""
    conf = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--conf takes KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value
    return conf
