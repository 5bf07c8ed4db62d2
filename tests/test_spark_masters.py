"""What a fit needs of its master: K task slots at once, partitions that stay with
their solvers (seeded runs reproducible), and fits on one session kept apart."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from pyspark import SparkConf

from pysparknet import zoo
from pysparknet.errors import ClusterError
from pysparknet.spark import SparkNetTrainer, local_spark
from pysparknet.spark.cluster import StandaloneCluster
from pysparknet.spark.master_probe import check_standalone_master

LOOPBACK = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}

LOCAL_1 = """
import numpy as np
from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.spark import SparkNetTrainer, local_spark
x, y = fashion_mnist("train")
records = list(zip(x[:N_RECORDS], y[:N_RECORDS].tolist()))
spark = local_spark("local[1]")
runs = [SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1, tau=5, seed=21)
        .fit(spark.sparkContext.parallelize(records, 1), rounds=4, progress=False)
        .weights.flat for _ in range(2)]
spark.stop()
print("identical", bool(np.array_equal(runs[0], runs[1])))
"""


def _records(fmnist_train, n=2000):
    x, y = fmnist_train[0][:n], fmnist_train[1][:n]
    return list(zip(x, y.tolist()))


def _fit(spark, records, num_workers=2, seed=21, rounds=4):
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=num_workers,
                              tau=5, seed=seed)
    rdd = spark.sparkContext.parallelize(records, num_workers)
    return trainer.fit(rdd, rounds=rounds, progress=False).weights.flat.copy()


@pytest.fixture
def session():
    sessions = []

    def start(master, **conf):
        spark = local_spark(master, conf={"spark.task.maxFailures": "4", **conf})
        sessions.append(spark)
        return spark
    yield start
    for spark in sessions:
        spark.stop()


def test_more_workers_than_task_slots_is_a_clear_error_in_seconds(session, fmnist_train):
    spark = session("local-cluster[2,1,1024]")
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=3, tau=5)
    rdd = spark.sparkContext.parallelize(_records(fmnist_train, 600), 3)
    tic = time.monotonic()
    with pytest.raises(ClusterError, match="at most 2 task.*num_workers=3 needs 3 at once"):
        trainer.fit(rdd, rounds=2, progress=False)
    assert time.monotonic() - tic < 30


def test_local_mode_with_several_workers_is_refused_with_the_way_out(session):
    spark = session("local[2]")
    with pytest.raises(ClusterError, match=r"local-cluster\[3,1,2048\]"):
        SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=3)


def test_seeded_runs_are_identical_on_local_cluster_and_local_1(session, fmnist_train,
                                                                 tmp_path):
    records = _records(fmnist_train)
    spark = session("local-cluster[2,1,1024]")
    first, second = _fit(spark, records), _fit(spark, records)
    np.testing.assert_array_equal(first, second)
    spark.stop()
    # Local mode's Python workers start in the JVM's folder, here the source tree
    # (whose pysparknet/ has no native build): a driver of its own, started elsewhere.
    script = LOCAL_1.replace("N_RECORDS", "2000")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("identical True"), out.stdout


def test_seeded_runs_are_identical_on_a_standalone_cluster(session, fmnist_train):
    records = _records(fmnist_train)
    with StandaloneCluster(workers=2, memory="1g") as cluster:
        spark = session(cluster.master_url, **{
            **cluster.spark_conf, "spark.executor.cores": "1", "spark.cores.max": "2",
            "spark.executor.memory": "768m"})
        np.testing.assert_array_equal(_fit(spark, records), _fit(spark, records))
        spark.stop()


def test_concurrent_fits_on_one_session_each_get_their_solo_result(session, fmnist_train):
    """One executor, one Python worker: both fits' solvers live side by side in it."""
    spark = session("local-cluster[1,1,1024]")
    records = _records(fmnist_train)
    solo = {seed: _fit(spark, records, num_workers=1, seed=seed, rounds=6) for seed in (1, 2)}
    together, errors = {}, []

    def fit(seed):
        try:
            together[seed] = _fit(spark, records, num_workers=1, seed=seed, rounds=6)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
    threads = [threading.Thread(target=fit, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for seed in (1, 2):
        np.testing.assert_array_equal(together[seed], solo[seed])


def test_a_client_the_master_will_not_authenticate_is_told_so_before_any_session():
    """Spark's own client would retry for 60 s, then fail with a stopped context; the
    probe asks the master with Spark's RPC client and names the cause."""
    cluster = StandaloneCluster(workers=1).start_master().wait_for_workers(0)  # auth on
    restart = threading.Timer(3.0, cluster.start_master)
    try:
        without = {"spark.authenticate": "false"}
        other = {**cluster.spark_conf, "spark.authenticate.secret": "0" * 64}
        for conf in (without, other):
            with pytest.raises(ClusterError, match="refused this client's authentication.*"
                                                   "spark.authenticate.secret"):
                local_spark(cluster.master_url, conf=conf)
        port = cluster.master_url.rpartition(":")[2]
        cluster.stop()
        with pytest.raises(ClusterError, match=f"did not answer in 3 s.*127.0.0.1:{port}"):
            local_spark(cluster.master_url, conf=cluster.spark_conf, master_wait_s=3)
        with pytest.raises(ValueError, match="master_wait_s .* at least 0, not -1"):
            local_spark(cluster.master_url, conf=cluster.spark_conf, master_wait_s=-1)
        # A master still starting is waited for, as Spark's own client would.
        restart.start()
        check_standalone_master(cluster.master_url, {**cluster.spark_conf, **LOOPBACK},
                                SparkConf(), wait_s=60)
    finally:
        restart.cancel()
        if restart.ident is not None:  # started: its master must exist before the stop
            restart.join()
        cluster.stop()
