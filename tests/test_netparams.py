"""The NetParams DSL: SparkNet's LeNet, written as SparkNet wrote it."""
from __future__ import annotations

import numpy as np
import pytest

from pysparknet import Net, zoo
from pysparknet.netparams import (AccuracyLayer, ActivationLayer, ConcatLayer, ConvLayer,
                                  LinearLayer, Max, NetDefinitionError, NetParams, PoolLayer,
                                  RDDLayer, ReLU, SoftmaxWithLoss)
from pysparknet.prototxt import parse_net


def seed_lenet(batchsize: int, *extra) -> NetParams:
    return NetParams(
        RDDLayer("data", shape=[batchsize, 1, 28, 28]), RDDLayer("label", shape=[batchsize, 1]),
        ConvLayer("conv1", ["data"], kernel=(5,5), num_filters=20),
        PoolLayer("pool1", ["conv1"], pool=Max, kernel=(2,2), stride=(2,2)),
        ConvLayer("conv2", ["pool1"], kernel=(5,5), num_filters=50),
        PoolLayer("pool2", ["conv2"], pool=Max, kernel=(2,2), stride=(2,2)),
        LinearLayer("ip1", ["pool2"], num_outputs=500), ActivationLayer("relu1", ["ip1"], activation=ReLU),
        LinearLayer("ip2", ["relu1"], num_outputs=10), SoftmaxWithLoss("loss", ["ip2", "label"]),
        *extra)


def graph(net) -> list[tuple]:
    """(name, type, bottoms, top) per layer, with in-place tops renamed after their layer,
    as the DSL names every top after its layer."""
    renamed, out = {}, []
    for layer in net.layer:
        bottoms = [renamed.get(b, b) for b in layer.bottom]
        tops = [layer.name if t in layer.bottom else t for t in layer.top]
        for t, new in zip(layer.top, tops):
            renamed[t] = new
        out.append((layer.name, layer.type, bottoms, tops))
    return out


def test_seed_lenet_matches_caffes_lenet():
    dsl = seed_lenet(64)
    caffe_lenet = zoo.lenet(64)
    train_layers = [l for l in caffe_lenet.layer
                    if not (l.include and l.include[0].phase == 1) and l.type != "Accuracy"]
    theirs = graph(type(caffe_lenet)(layer=train_layers))
    ours = graph(dsl.proto)
    # Caffe's LeNet has one Input layer with two tops; the DSL two Input layers.
    assert ours[2:] == theirs[1:]
    assert [t for l in ours[:2] for t in l[3]] == theirs[0][3] == ["data", "label"]
    # Same fillers and learning-rate multipliers as lenet_train_test.prototxt.
    for ours_l, theirs_l in zip(dsl.proto.layer[2:], train_layers[1:]):
        assert list(ours_l.param) == list(theirs_l.param)
        for field in ("convolution_param", "inner_product_param"):
            if ours_l.HasField(field):
                a, b = getattr(ours_l, field), getattr(theirs_l, field)
                assert a.num_output == b.num_output
                assert a.weight_filler.type == b.weight_filler.type == "xavier"
                assert a.bias_filler.type == b.bias_filler.type == "constant"
        if ours_l.HasField("pooling_param"):
            assert ours_l.pooling_param.pool == theirs_l.pooling_param.pool
    # Same learnable shapes, built by Caffe.
    a, b = Net(dsl), Net(caffe_lenet, zoo.lenet_solver())
    assert [s.shape for s in a.layout] == [s.shape for s in b.layout]
    assert dsl.shapes["pool2"] == (64, 50, 4, 4)


def test_prints_as_prototxt_and_round_trips():
    dsl = seed_lenet(64)
    text = str(dsl)
    assert 'type: "Convolution"' in text and "kernel_h: 5" in text
    assert parse_net(text) == dsl.proto


def test_seed_lenet_trains_to_caffe_accuracy(fmnist_train, fmnist_test):
    train_x, train_y = fmnist_train
    test_x, test_y = fmnist_test
    net = Net(seed_lenet(64), zoo.lenet_solver(), seed=1)
    # The DSL has no transform: scale as Caffe's LeNet does (1/256, exact in float32).
    net.set_training_data((train_x.astype(np.float32) / 256, train_y))
    net.train(2000)
    scorer = Net(seed_lenet(100, AccuracyLayer("accuracy", ["ip2", "label"])))
    scorer.set_weights(net.get_weights())
    scorer.set_validation_data((test_x.astype(np.float32) / 256, test_y))
    scores = scorer.test()
    print(f"DSL LeNet, 2000 iterations: {scores}")
    assert scores["accuracy"] >= 0.875


def test_checks_name_the_layer_at_fault():
    with pytest.raises(NetDefinitionError, match="layer 'conv2': unknown bottom 'pool9'"):
        NetParams(RDDLayer("data", shape=[1, 1, 28, 28]),
                  ConvLayer("conv2", ["pool9"], kernel=5, num_filters=2))
    with pytest.raises(NetDefinitionError, match=r"'conv1'.*kernel 5x5 is larger than its "
                                                 r"input 4x4"):
        NetParams(RDDLayer("data", shape=[1, 1, 4, 4]),
                  ConvLayer("conv1", ["data"], kernel=(5, 5), num_filters=2))
    with pytest.raises(NetDefinitionError, match="a top named 'conv1' already exists"):
        NetParams(RDDLayer("data", shape=[1, 1, 8, 8]),
                  ConvLayer("conv1", ["data"], kernel=3, num_filters=2),
                  ConvLayer("conv1", ["conv1"], kernel=3, num_filters=2))
    with pytest.raises(NetDefinitionError, match="'cat'.*does not concatenate"):
        NetParams(RDDLayer("a", shape=[1, 2, 8, 8]), RDDLayer("b", shape=[1, 2, 4, 4]),
                  ConcatLayer("cat", ["a", "b"]))
