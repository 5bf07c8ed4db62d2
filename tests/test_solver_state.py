"""What the workers' solvers keep between rounds: their history kept (SparkNet),
reset, or averaged like the weights - exact against hand-driven Nets."""
from __future__ import annotations

import numpy as np
import pytest

from pysparknet import Net, zoo
from pysparknet.spark import SparkNetTrainer


def _trainer(spark, solver_state, num_workers=1, seed=3):
    return SparkNetTrainer(spark, zoo.lenet(), zoo.lenet_solver(), num_workers=num_workers,
                           tau=5, seed=seed, solver_state=solver_state)


def test_reset_forgets_the_momentum_at_each_round(spark, fmnist_train):
    x, y = fmnist_train[0][:1000], fmnist_train[1][:1000]
    result = _trainer(spark, "reset").fit((x, y), rounds=2, progress=False)

    def by_hand():
        net = Net(zoo.lenet(), zoo.lenet_solver(), seed=3)
        net.set_training_data((x, y))
        net.train(5)
        net.set_history(np.zeros(net.history_size(), np.float32))
        net.train(5)
        return net.get_weights().flat
    reference = spark.sparkContext.parallelize([0], 1).map(lambda _: by_hand()).collect()[0]
    a = result.weights.flat
    assert np.max(np.abs(a - reference) / np.maximum(np.abs(reference), 1e-12)) <= 1e-6
    kept = _trainer(spark, "local").fit((x, y), rounds=2, progress=False).weights.flat
    assert not np.array_equal(a, kept)  # the momentum mattered


def test_one_worker_averaging_its_history_is_the_local_solver_exactly(spark, fmnist_train):
    data = fmnist_train[0][:1000], fmnist_train[1][:1000]
    local = _trainer(spark, "local").fit(data, rounds=3, progress=False).weights.flat
    average = _trainer(spark, "average").fit(data, rounds=3, progress=False).weights.flat
    assert average.tobytes() == local.tobytes()


def test_averaged_history_resumes_exactly(spark, fmnist_train, tmp_path):
    """Resumed workers rebuild their solvers; with the history averaged, the driver
    holds it (in its .solverstate) and hands it back. Partitions of exactly one
    round's batches (320 = 5 x 64) put rebuilt solvers at the kept ones' place in
    their data, so the resumed run must equal the uninterrupted one."""
    data = fmnist_train[0][:640], fmnist_train[1][:640]
    whole = _trainer(spark, "average", 2, 6).fit(data, rounds=4, progress=False)
    ckpt = tmp_path / "ckpt"
    _trainer(spark, "average", 2, 6).fit(data, rounds=2, checkpoint_dir=ckpt, progress=False)
    resumed = _trainer(spark, "average", 2, 6).fit(data, rounds=4, checkpoint_dir=ckpt,
                                                   resume=True, progress=False)
    assert resumed.weights.flat.tobytes() == whole.weights.flat.tobytes()
    with pytest.raises(ValueError, match="solver_state='average'"):
        _trainer(spark, "local", 2, 6).fit(data, rounds=5, checkpoint_dir=ckpt, resume=True,
                                           progress=False)


def test_an_unknown_solver_state_is_refused(spark):
    with pytest.raises(ValueError, match=r"solver_state must be one of \('local', 'reset', "
                                         r"'average'\)"):
        _trainer(spark, "shared")
