"""Spark GPU scheduling: each solver uses the GPU address Spark gave its task.

On this CPU-only build a discovery script reports a fake GPU address; the test
checks that the address reaches the worker's Net (which then refuses it clearly,
as a CPU build must)."""
from __future__ import annotations

import pytest

from pysparknet import NetArgumentError, zoo
from pysparknet.spark import SparkNetTrainer, local_spark
from pysparknet.spark.task_resources import device_for_task


@pytest.fixture(scope="module")
def gpu_spark(tmp_path_factory):
    script = tmp_path_factory.mktemp("gpus") / "discover_gpus.sh"
    script.write_text('#!/bin/sh\necho \'{"name": "gpu", "addresses": ["3"]}\'\n')
    script.chmod(0o755)
    session = local_spark("local-cluster[1,1,1024]", conf={
        "spark.worker.resource.gpu.amount": "1",
        "spark.worker.resource.gpu.discoveryScript": str(script),
        "spark.executor.resource.gpu.amount": "1",
        "spark.task.resource.gpu.amount": "1",
        "spark.task.maxFailures": "1"})
    yield session
    session.stop()


def test_task_gets_the_gpu_spark_assigned(gpu_spark):
    devices = gpu_spark.sparkContext.parallelize([0], 1).map(
        lambda _: device_for_task("gpu")).collect()
    assert devices == ["gpu:3"]


def test_trainer_solver_asks_for_that_gpu(gpu_spark, fmnist_train):
    x, y = fmnist_train[0][:200], fmnist_train[1][:200]
    trainer = SparkNetTrainer(gpu_spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1,
                              tau=1, device="gpu")
    with pytest.raises(NetArgumentError, match="gpu:3 requested, but this pysparknet was "
                                               "built without CUDA"):
        trainer.fit(gpu_spark.sparkContext.parallelize(list(zip(x, y.tolist())), 1),
                    rounds=1, progress=False)
