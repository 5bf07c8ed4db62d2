"""Bad input raises a Python exception naming the cause; the process lives on.

Every test here runs in the pytest process itself: a Caffe CHECK that aborted
would take the whole session down. Each ends by building and training a good
net in the same process.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import TINY_NET, TINY_SOLVER
from pysparknet import (CaffeError, DataError, Net, NetArgumentError, PrototxtError,
                        WeightCollection)


def still_works(tiny_data):
    net = Net(TINY_NET, TINY_SOLVER, seed=3)
    net.set_training_data(tiny_data)
    before = net.get_weights()
    assert np.isfinite(net.train(2)["loss"])
    assert not np.array_equal(before.flat, net.get_weights().flat)


def test_malformed_prototxt(tiny_data):
    with pytest.raises(PrototxtError, match=r"1:\d+"):
        Net('layer { name: "data" type: "Input" top: "data"', TINY_SOLVER)
    still_works(tiny_data)


def test_unknown_layer_type(tiny_data):
    with pytest.raises(CaffeError, match="Unknown layer type: Convolutionz"):
        Net(TINY_NET.replace('type: "InnerProduct"', 'type: "Convolutionz"'), TINY_SOLVER)
    still_works(tiny_data)


def test_missing_bottom_blob(tiny_data):
    with pytest.raises(CaffeError, match="Unknown bottom blob 'dta'"):
        Net(TINY_NET.replace('bottom: "data"', 'bottom: "dta"'), TINY_SOLVER)
    still_works(tiny_data)


def test_input_of_the_wrong_shape(tiny_data):
    images, labels = tiny_data
    net = Net(TINY_NET, TINY_SOLVER)
    with pytest.raises(DataError, match=r"records have shape \(1, 5, 5\).*\(1, 4, 4\)"):
        net.set_training_data((np.zeros((64, 1, 5, 5), np.float32), labels))
    # Records one by one: the bad one is named.
    records = [(im, lab) for im, lab in zip(images, labels)]
    records[5] = (np.zeros((3, 4, 4), np.float32), 1)
    net.set_training_data(records)
    with pytest.raises(DataError, match=r"record 5 has shape \(3, 4, 4\)"):
        net.train(1)
    still_works(tiny_data)


def test_label_outside_the_classes(tiny_data):
    images, labels = tiny_data
    labels = labels.copy()
    labels[17] = 3  # the net has 3 classes: 0, 1, 2
    net = Net(TINY_NET, TINY_SOLVER)
    with pytest.raises(DataError, match=r"record 17 has label 3; .* 3 classes"):
        net.set_training_data((images, labels))
    records = [(im, lab) for im, lab in zip(images, labels)]
    net.set_training_data(records)
    net.train(2)  # records 0..15 are fine
    with pytest.raises(DataError, match="record 17 has label 3"):
        net.train(1)
    with pytest.raises(DataError, match="record 0 has label -1"):
        net.set_training_data((images, np.full(64, -1)))
    still_works(tiny_data)


def test_truncated_caffemodel(tmp_path, tiny_data):
    net = Net(TINY_NET, TINY_SOLVER)
    good = tmp_path / "good.caffemodel"
    net.save(good)
    bad = tmp_path / "truncated.caffemodel"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CaffeError, match="truncated.caffemodel"):
        net.load(bad)
    with pytest.raises(FileNotFoundError):
        net.load(tmp_path / "absent.caffemodel")
    still_works(tiny_data)


def test_caffemodel_of_another_net(tmp_path, tiny_data):
    other = Net(TINY_NET.replace("num_output: 3", "num_output: 5"), None)
    path = tmp_path / "other.caffemodel"
    other.save(path)
    net = Net(TINY_NET, TINY_SOLVER)
    with pytest.raises(NetArgumentError, match=r"ip\[0\]: file \(5, 16\), net \(3, 16\); "
                                                r"ip\[1\]: file \(5,\), net \(3,\)"):
        net.load(path)
    still_works(tiny_data)


def test_weights_of_the_wrong_shapes(tiny_data):
    net = Net(TINY_NET, TINY_SOLVER)
    weights = net.get_weights()
    wrong = WeightCollection.from_arrays({"ip": [np.zeros((3, 17)), np.zeros(3)]})
    with pytest.raises(NetArgumentError, match=r"ip\[0\] has shape \(3, 17\), expected \(3, 16\)"):
        net.set_weights(wrong)
    with pytest.raises(NetArgumentError, match="missing ip"):
        net.set_weights({"other": [np.zeros(3)]})
    assert net.get_weights() == weights  # nothing was half-written
    still_works(tiny_data)


def test_device_that_does_not_exist(tiny_data):
    with pytest.raises(NetArgumentError, match="gpu:7"):
        Net(TINY_NET, TINY_SOLVER, device="gpu:7")
    with pytest.raises(NetArgumentError, match="unknown device"):
        Net(TINY_NET, TINY_SOLVER, device="tpu")
    still_works(tiny_data)


def test_no_data_and_one_shot_data(tiny_data):
    images, labels = tiny_data
    net = Net(TINY_NET, TINY_SOLVER)
    with pytest.raises(DataError, match="no training data"):
        net.train(1)
    net.set_training_data(iter([(im, lab) for im, lab in zip(images[:12], labels[:12])]))
    net.train(1)
    with pytest.raises(DataError, match="ran out after 12 records"):
        net.train(1)
    with pytest.raises(NetArgumentError, match="test-only"):
        Net(TINY_NET).train(1)
    still_works(tiny_data)


def test_non_finite_input_is_bad_data_naming_the_record(tiny_data):
    images, labels = tiny_data
    images = images.copy()
    images[13, 0, 2, 1] = np.nan
    net = Net(TINY_NET, TINY_SOLVER)
    with pytest.raises(DataError, match="record 13 holds NaN or infinite values"):
        net.set_training_data((images, labels))
    images[13, 0, 2, 1], images[42, 0, 0, 0] = 0.0, -np.inf
    net.set_training_data([(im, lab) for im, lab in zip(images, labels)])  # records
    with pytest.raises(DataError, match="record 42 holds NaN or infinite values"):
        net.train(8)
    still_works(tiny_data)


def test_shape_mismatch_inside_caffe(tiny_data):
    """A CHECK in a layer's Reshape (Eltwise of blobs of different shapes)."""
    bad = TINY_NET + """
    layer { name: "ip2" type: "InnerProduct" bottom: "data" top: "ip2"
            inner_product_param { num_output: 4 } }
    layer { name: "sum" type: "Eltwise" bottom: "ip" bottom: "ip2" top: "sum" }
    """
    with pytest.raises(CaffeError, match=r"eltwise_layer.cpp.*Check failed"):
        Net(bad, TINY_SOLVER)
    still_works(tiny_data)


def test_a_diverged_net_is_freed_cleanly(fmnist_train):
    """NaN through max pooling once wrote before a Caffe buffer (patch 0004)."""
    from pysparknet import zoo
    solver = zoo.lenet_solver()
    solver.base_lr, solver.lr_policy = 0.3, "fixed"
    for _ in range(2):
        net = Net(zoo.lenet(), solver, seed=1)
        net.set_training_data((fmnist_train[0][:500], fmnist_train[1][:500]))
        assert np.isnan(net.train(20)["loss"])
        net.set_validation_data((fmnist_train[0][:100], fmnist_train[1][:100]))
        with pytest.warns(RuntimeWarning, match="not finite: the weights have diverged"):
            net.test(1)  # Caffe's Accuracy says 1.0 on NaN scores: the warning says why
        net.close()
    still_works_lenet = Net(zoo.lenet(), zoo.lenet_solver(), seed=1)
    still_works_lenet.set_training_data(fmnist_train)
    assert np.isfinite(still_works_lenet.train(5)["loss"])
