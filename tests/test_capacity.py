"""Executors still starting are not a missing cluster: a fit waits for slots that
can still come, and fails at once when the cluster's settings can never offer K."""
from __future__ import annotations

import threading
import time

import pytest

from pysparknet import ClusterError, zoo
from pysparknet.spark import SparkNetTrainer, local_spark
from pysparknet.spark.capacity import capacity
from pysparknet.spark.cluster import StandaloneCluster


@pytest.mark.parametrize("master, conf, most", [
    ("local-cluster[2,1,1024]", {}, 2),
    ("local-cluster[3,2,1024]", {"spark.task.cpus": "2"}, 3),
    ("local[4]", {}, 4),
    ("spark://h:7077", {"spark.cores.max": "1"}, 1),
    ("spark://h:7077", {}, None),  # whatever the master's workers have
    ("spark://h:7077", {"spark.executor.instances": "8"}, None),  # not read by standalone
    ("yarn", {"spark.executor.instances": "3"}, 3),  # one core each, YARN's default
    ("k8s://https://api:6443", {"spark.executor.instances": "2",
                                "spark.executor.cores": "4", "spark.task.cpus": "2"}, 4),
    ("yarn", {"spark.dynamicAllocation.enabled": "true",
              "spark.dynamicAllocation.maxExecutors": "5", "spark.executor.cores": "2"}, 10),
    ("yarn", {"spark.dynamicAllocation.enabled": "true"}, None),
])
def test_the_most_slots_a_cluster_can_ever_offer(master, conf, most):
    assert capacity(conf, master).most_slots == most


def test_more_workers_than_the_cluster_can_ever_hold_fails_at_once(fmnist_train,
                                                                    monkeypatch):
    """...and names the deployment's own way to more slots where it sets one (the
    compose cluster: WORKERS=K)."""
    monkeypatch.setenv("PYSPARKNET_MORE_SLOTS", "Here: WORKERS=K docker compose up -d worker")
    spark = local_spark("local-cluster[1,1,1024]")
    try:
        trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2)
        x, y = fmnist_train[0][:200], fmnist_train[1][:200]
        started = time.monotonic()
        with pytest.raises(ClusterError, match=r"at most 1 task.*local-cluster\[1,1,1024\]"
                                               r".*num_workers=2 needs 2.*Here: WORKERS=K"):
            trainer.fit(spark.sparkContext.parallelize(list(zip(x, y.tolist())), 2),
                        rounds=1, progress=False)
        assert time.monotonic() - started < trainer.faults.slots_timeout / 10
    finally:
        spark.stop()


def test_a_fit_waits_for_executors_that_register_late(fmnist_train, caplog):
    """The master is up, its worker hosts join 40 s after the fit began (a YARN or
    Kubernetes executor's usual start): the fit waits, says so, and trains."""
    x, y = fmnist_train[0][:2000], fmnist_train[1][:2000]
    cluster = StandaloneCluster(workers=2, memory="1g").start_master()
    try:
        spark = local_spark(cluster.master_url, conf={**cluster.spark_conf,
            "spark.executor.cores": "1", "spark.cores.max": "2",
            "spark.executor.memory": "768m"})
        joined = threading.Timer(40.0, cluster.start_workers, args=(range(2),))
        joined.start()
        try:
            trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2,
                                      tau=5, seed=7)
            with caplog.at_level("WARNING", logger="pysparknet"):
                result = trainer.fit(spark.sparkContext.parallelize(
                    list(zip(x, y.tolist())), 2), rounds=2, progress=False)
        finally:
            joined.cancel()
            spark.stop()
    finally:
        cluster.stop()
    assert [h["round"] for h in result.history] == [1, 2]
    assert any("waiting for executors: 0 of 2" in r.getMessage() for r in caplog.records)
