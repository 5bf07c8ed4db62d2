"""Before a fit: do the executors run a Python that imports this pysparknet and
this Caffe build? Otherwise the first round fails deep in a worker traceback
(a bare ModuleNotFoundError from cloudpickle), after the data was cached.

The probe is compiled from source here, outside any module, so cloudpickle
ships it by value: unpickling it needs no pysparknet on the executor.
"""
from __future__ import annotations

import threading
import uuid

from ..errors import ClusterError

from .. import __version__
from ..build_info import build_info

_PROBE_SOURCE = '''
def probe(records):
    import sys
    for _ in records:  # read it all: a Python worker that leaves input unread exits
        pass
    try:
        import pysparknet
        from pysparknet.build_info import build_info
        info = build_info()
        return [(sys.executable, pysparknet.__version__, info["key"], info["cuda"], None)]
    except Exception as error:
        return [(sys.executable, None, None, None, f"{type(error).__name__}: {error}")]
'''


def _probe():
    namespace = {"__name__": "pysparknet_executor_probe"}  # not importable: by value
    exec(compile(_PROBE_SOURCE, "<pysparknet executor probe>", "exec"), namespace)
    return namespace["probe"]


FIXES = ("executors must run a Python with pysparknet installed (the same version and "
         "Caffe build): set PYSPARK_PYTHON to it in the environment that starts them "
         "(local-cluster and standalone executors take it from there; spark.pyspark.python "
         "names the driver's and, on YARN/Kubernetes, the executors'), or ship a packed "
         "environment (venv-pack, conda-pack) with spark.archives and point "
         "PYSPARK_PYTHON into it, as Spark's Python package management docs describe")


def check_executors(sc, tasks: int, timeout_s: float = 120.0) -> None:
    """One small job (`tasks` tasks): ClusterError naming the executors' Python and
    the fixes if they cannot import pysparknet, or run another build of it."""
    mine = (__version__, build_info()["key"])
    answers = _run_probe(sc, tasks, timeout_s)
    for python, version, key, _, error in answers:
        if error is not None:
            raise ClusterError(f"the executors' Python ({python}) cannot import pysparknet "
                               f"({error}): {FIXES}")
        if (version, key) != mine:
            raise ClusterError(f"the executors' Python ({python}) has pysparknet {version} "
                               f"with Caffe build {key}; the driver has {mine[0]} with "
                               f"build {mine[1]}: {FIXES}")


def _run_probe(sc, tasks: int, timeout_s: float) -> list:
    group = f"sparknet-executor-check-{uuid.uuid4().hex[:8]}"
    outcome: dict = {}
    probe = _probe()

    def run():
        sc.setJobGroup(group, "SparkNet: do the executors import pysparknet?")
        try:
            outcome["answers"] = sc.parallelize(range(tasks), tasks).mapPartitions(
                probe).collect()
        except Exception as error:  # noqa: BLE001 - reported below
            outcome["error"] = error
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        sc.cancelJobGroup(group)
        raise ClusterError(f"the executors did not answer a one-task-each import check "
                           f"within {timeout_s:.0f} s (none registered, or their Python "
                           f"does not start): {FIXES}")
    if "error" in outcome:
        raise ClusterError(f"the executors could not run Python for an import check "
                           f"({str(outcome['error']).splitlines()[0][:300]}): {FIXES}")
    return outcome["answers"]
