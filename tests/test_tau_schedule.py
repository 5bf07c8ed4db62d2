"""tau as a function of the round (post-local SGD): exact, checked, resumable."""
from __future__ import annotations

import numpy as np
import pytest

from pysparknet import Net, zoo
from pysparknet.spark import SparkNetTrainer

SCHEDULE = [3, 5, 12, 4]


def schedule(r):
    return SCHEDULE[r]


def test_one_worker_on_a_schedule_equals_net_train(spark, fmnist_train):
    """K=1: rounds of 3, 5, 12 iterations are exactly Net.train(20), the learning-rate
    schedule's clock included."""
    x, y = fmnist_train[0][:2000], fmnist_train[1][:2000]
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1,
                              tau=schedule, seed=3)
    result = trainer.fit((x, y), rounds=3, progress=False)
    assert [h["iterations"] for h in result.history] == [3, 8, 20]
    assert [h["tau"] for h in result.history] == [3, 5, 12]

    def alone():
        net = Net(zoo.lenet(), zoo.lenet_solver(), seed=3)
        net.set_training_data((x, y))
        net.train(20)
        return net.get_weights().flat
    reference = spark.sparkContext.parallelize([0], 1).map(lambda _: alone()).collect()[0]
    a, b = result.weights.flat, reference
    assert np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)) <= 1e-6


def test_a_schedule_that_gives_no_iterations_is_a_clear_error(spark, fmnist_train):
    data = fmnist_train[0][:500], fmnist_train[1][:500]
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1,
                              tau=lambda r: 5 if r < 2 else 0)
    with pytest.raises(ValueError, match="gave 0 for round 3"):
        trainer.fit(data, rounds=4, progress=False)
    with pytest.raises(ValueError, match="positive number of iterations or a function"):
        SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1, tau=0)


def test_a_scheduled_run_resumes_and_refuses_another_schedule(spark, fmnist_train, tmp_path):
    data = fmnist_train[0][:500], fmnist_train[1][:500]

    def trainer(tau):
        return SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=1, tau=tau)
    ckpt = tmp_path / "ckpt"
    trainer(schedule).fit(data, rounds=2, checkpoint_dir=ckpt, progress=False)
    resumed = trainer(schedule).fit(data, rounds=4, checkpoint_dir=ckpt, resume=True,
                                    progress=False)
    assert [h["iterations"] for h in resumed.history] == [3, 8, 20, 24]
    with pytest.raises(ValueError, match="checkpoint was written with"):
        trainer(lambda r: 5).fit(data, rounds=4, checkpoint_dir=ckpt, resume=True,
                                 progress=False)
