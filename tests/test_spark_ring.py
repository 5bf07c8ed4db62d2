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
    checkpoints = {} if tmp_path is None else {"checkpoint_dir": tmp_path / exchange,
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


def test_ring_runs_are_bit_identical_across_stages_and_match_the_star(spark, rdd, tmp_path):
    """Checkpoints every 2 rounds: three stages, each starting from the driver's mean,
    which the chunks the workers sent it must have made exactly."""
    first = fit(spark, rdd, "ring", 5, tmp_path / "a")
    again = fit(spark, rdd, "ring", 5, tmp_path / "b")
    star = fit(spark, rdd, "driver", 5)
    assert first.weights == again.weights
    gap = relative_difference(first.weights, star.weights)
    print(f"after 5 rounds: ring vs star relative difference {gap:.2e}")
    assert gap <= 1e-5  # round 1's rounding, carried through four more rounds of SGD
    assert abs(first.history[-1]["loss"] - star.history[-1]["loss"]) <= 1e-3


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
