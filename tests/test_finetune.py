"""Fine-tuning: weights copied by layer name from a .caffemodel (as Caffe's --weights),
a new classifier, frozen layers, and a report of what was copied."""
from __future__ import annotations

import time

import numpy as np
import pytest

from pysparknet import Net, NetArgumentError, zoo
from pysparknet.finetune import (classifier_layers, copy_weights, freeze, learnable_layers,
                                 read_caffemodel, replace_classifier)
from pysparknet.proto import caffe_pb2


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, fmnist_train):
    """A LeNet trained a little on Fashion-MNIST, saved by Caffe as a .caffemodel."""
    net = Net(zoo.lenet(), zoo.lenet_solver(), seed=5)
    net.set_training_data((fmnist_train[0][:2000], fmnist_train[1][:2000]))
    net.train(30)
    path = tmp_path_factory.mktemp("pretrained") / "lenet.caffemodel"
    net.save(path)
    return path, net.get_weights()


def test_new_classifier_frozen_layers_and_the_report(pretrained, fmnist_train):
    path, trained = pretrained
    model = freeze(replace_classifier(zoo.load("lenet"), num_classes=5), ["conv1", "conv2"])
    assert isinstance(model, zoo.ZooModel)  # a zoo model stays one
    net = Net(model, seed=6)
    report = copy_weights(net, path)
    print(report)
    assert report.copied == ["conv1", "conv2", "ip1"]
    assert report.new == ["ip2_ft"] and report.mismatched == []
    assert str(report).startswith("copied: conv1, conv2, ip1; new: ip2_ft")
    start = net.get_weights().copy()
    for layer in report.copied:
        for ours, theirs in zip(start[layer], trained[layer]):
            assert np.array_equal(ours, theirs)
    assert start["ip2_ft"][0].shape == (5, 500)

    x, y = fmnist_train
    five = y < 5
    net.set_training_data((x[five][:1000], y[five][:1000]))
    net.train(20)
    after = net.get_weights()
    for layer in ("conv1", "conv2"):  # frozen: exactly as copied
        assert all(np.array_equal(a, b) for a, b in zip(after[layer], start[layer]))
    for layer in ("ip1", "ip2_ft"):
        assert not np.array_equal(after[layer][0], start[layer][0])


def test_a_mismatched_shape_names_the_layer(pretrained):
    path, _ = pretrained
    five = replace_classifier(zoo.lenet(), num_classes=5, suffix="")  # still named ip2
    net = Net(five, zoo.lenet_solver())
    before = net.get_weights().copy()
    with pytest.raises(NetArgumentError, match=r"layer 'ip2': .*\(10, 500\).*\(5, 500\)"):
        copy_weights(net, path)
    assert net.get_weights() == before  # nothing copied on failure
    report = copy_weights(net, path, skip_mismatched=True)
    assert report.mismatched == ["ip2"] and report.copied == ["conv1", "conv2", "ip1"]
    assert "ip2 (" in str(report)


def test_weights_from_a_collection_and_unknown_layers(pretrained):
    _, trained = pretrained
    net = Net(zoo.lenet())
    assert copy_weights(net, trained).copied == ["conv1", "conv2", "ip1", "ip2"]
    assert net.get_weights() == trained
    with pytest.raises(NetArgumentError, match=r"no layer\(s\) \['conv9'\]"):
        freeze(zoo.lenet(), ["conv9"])
    with pytest.raises(NetArgumentError, match="learns nothing"):
        freeze(zoo.lenet(), ["pool1"])


def test_zoo_classifiers():
    """CaffeNet's classifier is fc8; GoogLeNet has three, all replaced and renamed."""
    caffenet = zoo.load("caffenet")
    assert classifier_layers(caffenet.net) == ["fc8"]
    tuned = freeze(replace_classifier(caffenet, 10),
                   [n for n in learnable_layers(caffenet) if n.startswith("conv")])
    layers = {layer.name: layer for layer in tuned.net.layer}
    assert layers["fc8_ft"].inner_product_param.num_output == 10
    assert list(layers["fc8_ft"].top) == ["fc8_ft"]
    assert all("fc8_ft" in layer.bottom for layer in tuned.net.layer
               if layer.type in ("SoftmaxWithLoss", "Accuracy"))
    assert [p.lr_mult for p in layers["conv3"].param] == [0, 0]
    assert [p.lr_mult for p in layers["fc6"].param] == [1, 2]
    googlenet = replace_classifier(zoo.load("googlenet").net, 10)
    assert classifier_layers(googlenet) == ["loss1/classifier_ft", "loss2/classifier_ft",
                                            "loss3/classifier_ft"]


def test_caffenet_from_a_saved_caffemodel(tmp_path):
    """The real CaffeNet (61M weights): a saved .caffemodel into a 10-class CaffeNet with
    conv1..conv5 frozen; fc8 is new, everything else copied."""
    start = time.perf_counter()
    source = Net(zoo.load("caffenet", batch_size=1, test_batch_size=1).net, seed=1)
    source.save(tmp_path / "caffenet.caffemodel")
    fc7 = source.get_weights()["fc7"][0][:4, :4].copy()
    source.close()
    tuned = replace_classifier(zoo.load("caffenet", batch_size=1, test_batch_size=1), 10)
    tuned = freeze(tuned, ["conv1", "conv2", "conv3", "conv4", "conv5"])
    net = Net(tuned.net, seed=2)  # test-only: the weights are what matters here
    report = copy_weights(net, tmp_path / "caffenet.caffemodel")
    print(f"{report} in {time.perf_counter() - start:.1f} s")
    assert report.copied == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    assert report.new == ["fc8_ft"] and not report.mismatched
    assert np.array_equal(net.get_weights()["fc7"][0][:4, :4], fc7)
    assert read_caffemodel(tmp_path / "caffenet.caffemodel")["fc8"][0].shape == (1000, 4096)
    assert caffe_pb2.TEST == 1
