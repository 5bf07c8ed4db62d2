"""exchange='ring' on a real local-cluster of three executors: the workers' ring
gives the star's mean to float32 rounding, the same bits run after run, in both
schedules and with timed rounds; what it cannot do is refused by name."""
from __future__ import annotations

import numpy as np
import pytest

from pysparknet import zoo
from pysparknet.spark import Exchange, SparkNetTrainer, Stragglers, local_spark


@pytest.fixture(scope="module")
def spark():
    session = local_spark("local-cluster[3,1,1024]", conf={"spark.task.maxFailures": "1"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def rdd(spark, fmnist_train):
    x, y = fmnist_train[0][:1800], fmnist_train[1][:1800]
    return spark.sparkContext.parallelize(list(zip(x, y.tolist())), 3)


def fit(spark, rdd, exchange, rounds, tmp_path=None, **options):
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=3, tau=5,
                              seed=11, exchange=exchange, **options)
    checkpoints = {} if tmp_path is None else {"checkpoint_dir": tmp_path / "checkpoints",
                                               "checkpoint_every": 2}
    return trainer.fit(rdd, rounds=rounds, progress=False, **checkpoints)


def relative_difference(a, b) -> float:
    return float(np.linalg.norm(a.flat - b.flat) / np.linalg.norm(b.flat))


def test_the_rings_mean_is_the_stars_to_float32_rounding(spark, rdd):
    star, ring = fit(spark, rdd, "driver", 1), fit(spark, rdd, "ring", 1)
    gap = relative_difference(ring.weights, star.weights)
    print(f"after round 1: ring vs star relative difference {gap:.2e}")
    assert 0 <= gap <= 1e-6
    assert ring.history[0]["loss"] == star.history[0]["loss"]  # the same training


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_drivers_mean_is_the_workers_to_the_bit(spark, rdd, tmp_path, dtype):
    """Checkpoints every 2 rounds make three stages, each starting from the mean the
    driver assembled from the workers' chunks; one stage has the workers go on from
    their own. The same bits either way: the driver's mean is the workers'."""
    exchange = Exchange(kind="ring", dtype=dtype)
    staged = fit(spark, rdd, exchange, 5, tmp_path)
    one_stage = fit(spark, rdd, exchange, 5)
    star = fit(spark, rdd, "driver", 5)
    assert staged.weights == one_stage.weights
    gap = relative_difference(staged.weights, star.weights)
    loss_gap = abs(staged.history[-1]["loss"] - star.history[-1]["loss"])
    print(f"{dtype} ring vs star after 5 rounds: weights {gap:.2e} apart, loss {loss_gap:.2e}")
    if dtype == "float32":
        assert gap <= 1e-5  # round 1's rounding, carried through four more rounds of SGD
        assert loss_gap <= 1e-3
    else:  # each round's update rounded to 8 bits of mantissa
        assert gap <= 2e-3
        assert loss_gap <= 5e-3


def test_a_fit_that_stops_mid_stage_drops_the_round_sent_ahead(spark, rdd):
    """The driver starts the stage's next round as soon as a round's stats are in;
    when `until` then ends the fit, that round is let finish and dropped: the fit
    returns round 3's mean, the same bits as a fit of 3 rounds, validated every round."""
    trainer = SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=3, tau=5,
                              seed=11, exchange="ring")
    stopped = trainer.fit(rdd, rounds=6, progress=False, until=lambda r: r["round"] == 3,
                          validation_data=rdd, validate_every=1)
    three = fit(spark, rdd, "ring", 3)
    assert [h["round"] for h in stopped.history] == [1, 2, 3]
    assert all("val_accuracy" in h for h in stopped.history)
    assert stopped.weights == three.weights
    trainer.driver_net.set_weights(stopped.weights)
    assert trainer.driver_net.test()["accuracy"] == stopped.history[-1]["val_accuracy"]


def test_ring_in_jobs_with_timed_rounds(spark, rdd):
    result = fit(spark, rdd, "ring", 2, schedule="jobs",
                 stragglers=Stragglers(round_seconds=60.0))
    assert [h["worker_iterations"] for h in result.history] == [[5, 5, 5], [5, 5, 5]]
    assert np.isfinite(result.weights.flat).all()


def test_what_the_ring_cannot_do_is_refused(spark):
    with pytest.raises(ValueError, match="drop min_workers"):
        SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=3,
                        exchange="ring", min_workers=2)
    with pytest.raises(ValueError, match="outer='plain' with the ring"):
        SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=3,
                        exchange=Exchange(kind="ring"), outer="bmuf")
    with pytest.raises(ValueError, match="exchange must be one of"):
        SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=3,
                        exchange="mesh")
