"""get/set weights, WeightCollection arithmetic, and .caffemodel files."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import TINY_NET, TINY_SOLVER
from pysparknet import Net, WeightCollection, zoo
from pysparknet.proto import caffe_pb2


def test_get_set_round_trip_is_bit_exact(tiny_data):
    net = Net(zoo.lenet(), zoo.lenet_solver(), seed=7)
    weights = net.get_weights()
    assert weights.num_params == 431080
    assert list(weights) == ["conv1", "conv2", "ip1", "ip2"]
    assert [w.shape for w in weights["conv2"]] == [(50, 20, 5, 5), (50,)]
    # Values that are not round numbers, including the extremes of float32.
    rng = np.random.default_rng(1)
    new = WeightCollection(weights.layout, rng.normal(size=weights.num_params).astype(np.float32))
    new.flat[:3] = [np.finfo(np.float32).max, np.finfo(np.float32).tiny, -0.0]
    net.set_weights(new)
    back = net.get_weights()
    assert back.flat.tobytes() == new.flat.tobytes()
    # Into a caller-owned buffer, no allocation.
    out = WeightCollection.zeros(weights.layout)
    assert net.get_weights(out=out) is out and out == new


def test_shared_weights_train_as_copied_ones_do(tiny_data):
    """share_weights: the net's weights live in the caller's buffer (no copy), train
    there bit for bit as set_weights' copy does, take new weights written into it,
    and test with them (the test net shares the train net's blobs)."""
    shared, copied = (Net(TINY_NET, TINY_SOLVER, seed=3) for _ in range(2))
    for net in (shared, copied):
        net.set_training_data(tiny_data)
        net.set_validation_data(tiny_data)
    flat = copied.get_weights().flat.copy()
    shared.share_weights(flat)
    shared.train(7)
    copied.train(7)
    shared.sync_shared_weights()
    assert flat.tobytes() == copied.get_weights().flat.tobytes()
    flat *= np.float32(0.5)  # new weights written into the buffer, then shared again
    shared.share_weights(flat)
    copied.set_weights(WeightCollection(copied.layout, flat.copy()))
    assert shared.test(1) == copied.test(1)
    shared.train(3)
    copied.train(3)
    shared.sync_shared_weights()
    assert flat.tobytes() == copied.get_weights().flat.tobytes()
    assert shared.get_weights().flat.tobytes() == flat.tobytes()
    with pytest.raises(Exception, match="contiguous 1-d float32"):
        shared.share_weights(flat[::2])
    with pytest.raises(Exception, match=f"holds 10 floats; the net has {flat.size}"):
        shared.share_weights(np.zeros(10, np.float32))
    shared.close()  # the net lets go of the buffer only after it is gone


def test_weight_collection_views_and_arithmetic():
    a = WeightCollection.from_arrays({"l1": [np.ones((2, 3)), np.arange(3)], "l2": [np.full(4, 2.0)]})
    b = a * 3
    assert a["l1"][0].base is a.flat or np.shares_memory(a["l1"][0], a.flat)
    assert (b - a) == a * 2
    assert (a + a) / 2 == a
    assert -a == a * -1
    mean = WeightCollection.mean([a, b, a * 5])
    np.testing.assert_allclose(mean.flat, a.flat * 3)
    view = WeightCollection.from_flat(a.layout, a.flat)
    view.flat[0] = 42
    assert a["l1"][0][0, 0] == 42  # zero-copy
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(ValueError, match="different nets"):
        a + WeightCollection.from_arrays({"l1": [np.ones((2, 3))]})
    with pytest.raises(TypeError, match="float32"):
        WeightCollection(a.layout, a.flat.astype(np.float64))


def test_caffemodel_round_trip(tmp_path, tiny_data):
    net = Net(TINY_NET, TINY_SOLVER, seed=11)
    net.set_training_data(tiny_data)
    net.train(5)
    path = tmp_path / "sub" / "tiny.caffemodel"
    net.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["tiny.caffemodel"]  # no temp left
    # It is Caffe's NetParameter with the blobs, readable by protobuf itself.
    proto = caffe_pb2.NetParameter.FromString(path.read_bytes())
    ip = next(l for l in proto.layer if l.name == "ip")
    np.testing.assert_array_equal(np.array(ip.blobs[0].data, np.float32),
                                  net.get_weights()["ip"][0].ravel())
    other = Net(TINY_NET, TINY_SOLVER, seed=12)
    assert other.get_weights() != net.get_weights()
    other.load(path)
    assert other.get_weights() == net.get_weights()


def test_solverstate_resumes_exactly(tmp_path, tiny_data):
    """Train 10 = train 5, save, restore into a fresh solver, train 5."""
    straight = Net(TINY_NET, TINY_SOLVER, seed=5)
    straight.set_training_data(tiny_data)
    straight.train(10)

    first = Net(TINY_NET, TINY_SOLVER, seed=5)
    first.set_training_data(tiny_data)
    first.train(5)
    first.save_state(tmp_path / "m.caffemodel", tmp_path / "s.solverstate")
    state = caffe_pb2.SolverState.FromString((tmp_path / "s.solverstate").read_bytes())
    assert state.iter == 5 and len(state.history) == 2

    resumed = Net(TINY_NET, TINY_SOLVER, seed=99)
    resumed.restore_state(tmp_path / "s.solverstate")
    assert resumed.iteration == 5
    images, labels = tiny_data
    resumed.set_training_data((np.roll(images, -40, 0), np.roll(labels, -40)))  # batch 8 x 5
    resumed.train(5)
    assert resumed.get_weights() == straight.get_weights()
