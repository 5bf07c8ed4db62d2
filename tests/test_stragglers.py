"""Straggler-tolerant rounds on a real local-cluster whose partition-1 worker is made
3x slower (PYSPARKNET_STRAGGLER, local_steps.py). What they cost in round time and
buy in accuracy: bench/bench_stragglers.py and BENCHMARKS.md."""
from __future__ import annotations

import numpy as np
import pytest

from pysparknet import zoo
from pysparknet.spark import SparkNetTrainer, Stragglers, local_spark


@pytest.fixture(scope="module")
def spark():
    session = local_spark("local-cluster[2,1,1024]", conf={
        "spark.task.maxFailures": "1", "spark.executorEnv.PYSPARKNET_STRAGGLER": "1:3"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data(fmnist_train):
    return fmnist_train[0][:4000], fmnist_train[1][:4000]


@pytest.mark.parametrize("schedule", ["segments", "jobs"])
def test_min_workers_closes_rounds_without_the_straggler(spark, data, schedule):
    """M=1 of K=2: every round goes on the fast worker's result; the slow one is
    stopped mid-round, dropped, and starts each next round from the new weights.
    The same with one job a round: the round runs over the same links."""
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2,
                              tau=40, seed=2, min_workers=1, schedule=schedule)
    history = trainer.fit(data, rounds=4, progress=False).history
    assert [h["dropped"] for h in history] == [[1]] * 4
    assert all(h["worker_iterations"][0] == 40 for h in history)
    assert all(1 <= h["worker_iterations"][1] < 40 for h in history)
    assert all(np.isfinite(h["loss"]) for h in history)
    assert history[-1]["loss"] < history[0]["loss"]


@pytest.mark.parametrize("schedule", ["segments", "jobs"])
def test_round_seconds_weighs_the_workers_by_what_they_did(spark, data, schedule):
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2,
                              tau=1000, seed=2, stragglers=Stragglers(round_seconds=0.5),
                              schedule=schedule)
    history = trainer.fit(data, rounds=3, progress=False).history
    for record in history:
        fast, slow = record["worker_iterations"]
        assert 1 <= slow < fast < 1000  # both stopped by the clock, the slow one sooner
        assert record["dropped"] == []
    assert all(np.isfinite(h["loss"]) for h in history)


def test_straggler_options_refuse_bad_values(spark):
    def make(**options):
        return SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=2,
                               **options)
    for bad in (0, -1.0, "1", True):
        with pytest.raises(ValueError, match="round_seconds must be a number of seconds"):
            make(round_seconds=bad)
    for bad in (0, 3, 1.5, True):
        with pytest.raises(ValueError, match=r"min_workers must be a whole number from 1 "
                                             r"to num_workers \(2\)"):
            make(min_workers=bad)
