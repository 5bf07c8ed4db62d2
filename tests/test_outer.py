"""Outer optimizers: hand-computed steps, the plain invariant bit for bit on a real
fit, momentum resumed from a checkpoint exactly, bad settings refused."""
from __future__ import annotations

import numpy as np
import pytest

from pysparknet import zoo
from pysparknet.outer import OuterOptimizer
from pysparknet.spark import SparkNetTrainer


def f32(*values):
    return np.array(values, np.float32)


def test_block_momentum_by_hand():
    outer = OuterOptimizer("bmuf", momentum=0.5, lr=1.0)
    w = f32(1, 2)
    # round 1: workers start from w and average to (2, 1): delta = (+1, -1)
    w = outer.step(w, w.copy(), f32(2, 1))
    np.testing.assert_array_equal(outer.velocity, f32(1, -1))
    np.testing.assert_array_equal(w, f32(2, 1))
    # round 2: from (2, 1) to (3, 3): delta (1, 2); v = 0.5 (1, -1) + (1, 2) = (1.5, 1.5)
    w = outer.step(w, w.copy(), f32(3, 3))
    np.testing.assert_array_equal(outer.velocity, f32(1.5, 1.5))
    np.testing.assert_array_equal(w, f32(3.5, 2.5))  # moved past the mean, with momentum


def test_block_momentum_nesterov_starts_the_workers_ahead():
    outer = OuterOptimizer("bmuf", momentum=0.5, lr=1.0, nesterov=True)
    w = f32(0, 0)
    np.testing.assert_array_equal(outer.to_workers(w), w)  # no momentum yet
    sent = outer.to_workers(w)
    w = outer.step(w, sent, f32(2, -2))  # v = (2, -2), w = (2, -2)
    np.testing.assert_array_equal(outer.to_workers(w), f32(3, -3))  # w + mu v
    # the next delta counts from where the workers started, not from w
    sent = outer.to_workers(w)
    w = outer.step(w, sent, f32(3, -3))  # delta 0: v = (1, -1), w = (3, -3)
    np.testing.assert_array_equal(w, f32(3, -3))


def test_outer_nesterov_by_hand():
    outer = OuterOptimizer("nesterov", momentum=0.9, lr=0.5)
    w = f32(1, 1)
    # mean (3, 0): delta (2, -1), outer gradient g = (-2, 1), v = g,
    # w = w - 0.5 (g + 0.9 v) = (1, 1) - 0.5 (-3.8, 1.9) = (2.9, 0.05)
    w = outer.step(w, w.copy(), f32(3, 0))
    np.testing.assert_allclose(w, f32(2.9, 0.05), rtol=1e-6)
    assert w[0] > 1 and w[1] < 1  # towards the mean: the sign of delta is right


@pytest.mark.parametrize("kind", ["bmuf", "nesterov"])
def test_no_momentum_and_unit_rate_is_plain_averaging_exactly(kind):
    outer = OuterOptimizer(kind, momentum=0.0, lr=1.0)
    rng = np.random.default_rng(0)
    w, mean = rng.normal(size=1000).astype(np.float32), rng.normal(size=1000).astype(np.float32)
    assert outer.step(w, w.copy(), mean.copy()).tobytes() == mean.tobytes()


@pytest.mark.parametrize("settings, message", [
    ({"kind": "adam"}, "must be one of"),
    ({"kind": "bmuf", "momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ({"kind": "bmuf", "momentum": -0.1}, r"momentum must be in \[0, 1\)"),
    ({"kind": "nesterov", "lr": 0.0}, "learning rate must be > 0"),
    ({"kind": "plain", "momentum": 0.9}, "plain outer step takes no momentum"),
    ({"kind": "nesterov", "nesterov": True}, "bmuf's Nesterov variant"),
])
def test_bad_settings_are_refused_clearly(settings, message):
    with pytest.raises(ValueError, match=message):
        OuterOptimizer(**settings)


def _fit(spark, data, outer, rounds, solver=None, **options):
    trainer = SparkNetTrainer(spark, zoo.lenet(), solver or zoo.lenet_solver(), num_workers=2,
                              tau=5, seed=6, outer=outer)
    return trainer.fit(data, rounds=rounds, progress=False, **options)


@pytest.fixture(scope="module")
def data(fmnist_train):
    return fmnist_train[0][:1000], fmnist_train[1][:1000]


def test_bmuf_without_momentum_trains_exactly_as_plain(spark, data):
    plain = _fit(spark, data, "plain", 3).weights.flat
    bmuf = _fit(spark, data, OuterOptimizer("bmuf", momentum=0.0, lr=1.0), 3).weights.flat
    assert bmuf.tobytes() == plain.tobytes()
    moved = _fit(spark, data, "bmuf", 3).weights.flat  # fairseq's defaults: different
    assert not np.array_equal(moved, plain)


def test_outer_momentum_resumes_from_the_checkpoint_exactly(spark, fmnist_train, tmp_path):
    """A resumed fit rebuilds the workers' solvers. With no momentum in the workers'
    solver and partitions of exactly one round's batches (320 = 5 x 64), a rebuilt
    solver is where the kept one was: so the only state that could be lost is the
    driver's outer momentum, and the resumed run must equal the uninterrupted one."""
    data = fmnist_train[0][:640], fmnist_train[1][:640]
    solver = zoo.lenet_solver()
    solver.momentum = 0.0
    whole = _fit(spark, data, "nesterov", 4, solver).weights.flat
    ckpt = tmp_path / "ckpt"
    _fit(spark, data, "nesterov", 2, solver, checkpoint_dir=ckpt)
    assert (ckpt / "round_000002.outer.npy").exists()
    resumed = _fit(spark, data, "nesterov", 4, solver, checkpoint_dir=ckpt, resume=True)
    assert [h["round"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.weights.flat.tobytes() == whole.tobytes()
    with pytest.raises(ValueError, match="outer optimizer"):
        _fit(spark, data, "bmuf", 5, solver, checkpoint_dir=ckpt, resume=True)
