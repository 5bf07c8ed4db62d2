"""The first steps a new user takes: arrays into fit, zoo nets into Net, the DSL's
names, executors that cannot import pysparknet, a GPU asked for and not assigned."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from pysparknet import DataError, Net, NetArgumentError, zoo
from pysparknet.errors import ClusterError
from pysparknet.netparams import (ActivationLayer, ConvLayer, LinearLayer, NetDefinitionError,
                                  NetParams, PoolLayer, RDDLayer, SoftmaxWithLoss)
from pysparknet.spark import SparkNetTrainer


@pytest.fixture(scope="module")
def float_train(fmnist_train):
    """All 60,000 Fashion-MNIST images as float32 (188 MB; pixel values, which the
    zoo LeNet's transform_param scales)."""
    images, labels = fmnist_train
    return images.astype(np.float32)[:, None], labels


def test_the_whole_float_training_set_trains_from_arrays(spark, float_train, fmnist_test):
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=25,
                              seed=2)
    result = trainer.fit(float_train, (fmnist_test[0][:1000], fmnist_test[1][:1000]),
                         rounds=4, progress=False)
    assert [h["round"] for h in result.history] == [1, 2, 3, 4]
    assert all(np.isfinite(h["loss"]) for h in result.history)
    assert result.history[-1]["val_accuracy"] > 0.5


def test_arrays_feed_each_worker_the_slice_parallelize_would(spark, fmnist_train):
    """Same K contiguous slices as sc.parallelize(records, K) cuts 1,000 records (two
    of its 500-record batches): the same training."""
    x, y = fmnist_train[0][:1000], fmnist_train[1][:1000]

    def fit(data):
        trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2,
                                  tau=5, seed=8)
        return trainer.fit(data, rounds=2, progress=False).weights.flat
    from_records = fit(spark.sparkContext.parallelize(list(zip(x, y.tolist())), 2))
    np.testing.assert_array_equal(fit((x, y)), from_records)


def test_too_many_parallelized_records_fail_fast_and_say_what_to_do(spark, float_train):
    x, y = float_train
    rdd = spark.sparkContext.parallelize(list(zip(x, y.tolist())), 2)
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=5)
    tic = time.monotonic()
    with pytest.raises(DataError, match=r"sc.parallelize.*fit\(\(images, labels\)\)"):
        trainer.fit(rdd, rounds=1, progress=False)
    assert time.monotonic() - tic < 30
    # The driver is fine afterwards.
    assert spark.sparkContext.parallelize(range(4), 2).sum() == 6


def test_a_zoo_model_is_a_net_definition_with_its_solver(tiny_data):
    model = zoo.load("lenet")
    net = Net(model, seed=1)
    assert net.has_solver and net.layout[0].layer == "conv1"
    assert Net(model.net).has_solver is False  # its NetParameter alone: test-only


@pytest.mark.parametrize("pool", ["Max", "max", "MAX"])
@pytest.mark.parametrize("activation", ["ReLU", "relu", "RELU", "TanH", "tanh"])
def test_dsl_names_in_any_case(pool, activation):
    net = NetParams(
        RDDLayer("data", shape=[8, 1, 28, 28]), RDDLayer("label", shape=[8, 1]),
        ConvLayer("conv1", ["data"], kernel=(5, 5), num_filters=4),
        PoolLayer("pool1", ["conv1"], pool=pool, kernel=(2, 2), stride=(2, 2)),
        ActivationLayer("act", ["pool1"], activation=activation),
        LinearLayer("ip", ["act"], num_outputs=10),
        SoftmaxWithLoss("loss", ["ip", "label"]))
    assert "pool: MAX" in str(net.proto)


def test_dsl_names_it_does_not_know_list_the_right_ones():
    with pytest.raises(NetDefinitionError, match="pool must be Max or Ave"):
        NetParams(RDDLayer("data", shape=[8, 1, 28, 28]),
                  PoolLayer("pool1", ["data"], pool="median"))
    with pytest.raises(NetDefinitionError, match="activation must be ReLU, Sigmoid or TanH"):
        NetParams(RDDLayer("data", shape=[8, 1, 28, 28]),
                  ActivationLayer("act", ["data"], activation="gelu"))


EXECUTORS_WITHOUT_US = """
import time
import numpy as np
from pysparknet import zoo
from pysparknet.data import fashion_mnist
from pysparknet.errors import ClusterError
from pysparknet.spark import SparkNetTrainer, local_spark
x, y = fashion_mnist("test")
spark = local_spark("local-cluster[1,1,1024]")
trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1, tau=5)
tic = time.monotonic()
try:
    trainer.fit((x[:500], y[:500]), rounds=1, progress=False)
    print("no error")
except ClusterError as error:
    print(f"after {time.monotonic() - tic:.1f} s: {error}")
spark.stop()
"""


def test_executors_that_cannot_import_pysparknet_are_a_clear_error(tmp_path):
    """Executors started with another Python (the system's, without pysparknet)."""
    env = {**__import__("os").environ, "PYSPARK_PYTHON": "/usr/bin/python3"}
    out = subprocess.run([sys.executable, "-c", EXECUTORS_WITHOUT_US], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = out.stdout.strip().splitlines()[-1]
    assert "cannot import pysparknet" in line and "/usr/bin/python3" in line, line
    assert "PYSPARK_PYTHON" in line and "spark.archives" in line
    assert float(line.split()[1]) < 30


def test_a_gpu_asked_for_and_not_assigned_warns_or_fails(spark, fmnist_train):
    data = (fmnist_train[0][:200], fmnist_train[1][:200])
    strict = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1, tau=1,
                             device="gpu", on_unassigned_gpu="error")
    with pytest.raises(ClusterError, match="spark.task.resource.gpu.amount is not set"):
        strict.fit(data, rounds=1, progress=False)
    lenient = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1, tau=1,
                              device="gpu")
    with pytest.warns(UserWarning, match="every worker uses gpu:0"):
        # this CPU-only build then refuses gpu:0 itself, clearly
        with pytest.raises(NetArgumentError, match="gpu:0 requested"):
            lenient.fit(data, rounds=1, progress=False)


def test_open_data_guesses_sources_for_python_users(spark, fmnist_lmdb, tmp_path):
    from pysparknet.data import UnknownSourceError, has_test_split, open_data

    images, labels = open_data(spark, "fashion-mnist", "test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert has_test_split("fashion-mnist")
    rdd = open_data(spark, str(fmnist_lmdb[1]), num_partitions=2)
    assert rdd.getNumPartitions() == 2 and rdd.count() == 10000
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(UnknownSourceError, match="notes.txt.*LMDB"):
        open_data(spark, str(tmp_path / "notes.txt"))


def test_arrays_that_do_not_pair_up_are_clear_errors(spark, fmnist_train):
    x, y = fmnist_train[0][:600], fmnist_train[1][:600]
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2, tau=5)
    with pytest.raises(DataError, match="600 images but 599 labels"):
        trainer.fit((x, y[:-1]), rounds=1, progress=False)
    with pytest.raises(DataError, match="one number per image"):
        trainer.fit((x, np.stack([y, y], axis=1)), rounds=1, progress=False)
    with pytest.raises(ValueError, match="on_unassigned_gpu must be 'warn' or 'error'"):
        SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1,
                        on_unassigned_gpu="ignore")
    assert trainer.fit((x, y), rounds=1, progress=False).history[0]["round"] == 1  # lives on


def test_a_local_cluster_session_prints_no_checkpoint_folder_warning(tmp_path):
    """local-cluster's executors share this machine's folders, so Spark's warning that
    the RDD checkpoint folder "must not be on the local filesystem" is not printed;
    Spark's log level is WARN again afterwards (a real warning still shows)."""
    code = ("from pysparknet.spark import local_spark\n"
            "s = local_spark('local-cluster[1,1,1024]')\n"
            "jvm = s.sparkContext._jvm\n"
            "print('LEVEL', jvm.org.apache.logging.log4j.LogManager.getRootLogger().getLevel())\n"
            "s.stop()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert "LEVEL WARN" in done.stdout, done.stderr[-2000:]
    assert "must not be on the local filesystem" not in done.stderr
