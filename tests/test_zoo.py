"""Caffe's model-zoo nets, read from the Caffe source the build kept."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from pysparknet import Net, NetArgumentError, zoo
from pysparknet.proto import caffe_pb2

# Learnable parameters as Caffe counts them (its Net::params(), shared ones once).
PARAMS = {"lenet": 431_080, "cifar10_quick": 145_578, "cifar10_full": 89_578,
          "caffenet": 60_965_224, "alexnet": 60_965_224, "googlenet": 13_378_280}
RAW_SIZE = {"lenet": 28, "cifar10_quick": 32, "cifar10_full": 32, "caffenet": 256,
            "alexnet": 256, "googlenet": 256}


def load_quietly(name, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ImageNet/CIFAR mean-file fallback
        return zoo.load(name, **kwargs)


@pytest.mark.parametrize("name", list(PARAMS))
def test_zoo_net_builds_trains_and_tests(name, tmp_path):
    model = load_quietly(name, batch_size=2, test_batch_size=2)
    net = Net(model.net, model.solver, seed=0)
    assert sum(b.size for b in net.layout) == PARAMS[name]
    # Caffe's own serialisation of the same net holds the same count.
    net.save(tmp_path / "m.caffemodel")
    saved = caffe_pb2.NetParameter.FromString((tmp_path / "m.caffemodel").read_bytes())
    assert sum(len(b.data) for l in saved.layer for b in l.blobs) == PARAMS[name]

    c = model.record_shape[0]
    size = RAW_SIZE[name]
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(4, c, size, size), dtype=np.uint8)
    labels = rng.integers(0, net.num_classes(), size=4)
    net.set_training_data((images, labels))
    net.set_validation_data((images, labels))
    before = net.get_weights()
    out = net.train(1)
    assert np.isfinite(out["loss"] if "loss" in out else list(out.values())[0])
    assert net.get_weights() != before
    scores = net.test(1)
    accuracies = [k for k in scores if "accuracy" in k or "top" in k]
    assert accuracies and all(0 <= scores[k] <= 1 for k in accuracies)
    if name == "googlenet":
        assert {"loss3/top-1", "loss3/top-5"} <= set(scores)


def test_unknown_zoo_name():
    with pytest.raises(NetArgumentError, match="no zoo net named 'resnet9000'.*alexnet"):
        zoo.load("resnet9000")


def test_fine_tune_copies_matching_layers_and_refuses_misfits(tmp_path):
    base = load_quietly("cifar10_quick", batch_size=2)
    source = Net(base.net, base.solver, seed=1)
    source.save(tmp_path / "base.caffemodel")

    # Fine-tuning: a new last layer under a new name is initialised afresh.
    tuned = caffe_pb2.NetParameter()
    tuned.CopyFrom(base.net)
    ip2 = next(l for l in tuned.layer if l.name == "ip2")
    ip2.name, ip2.inner_product_param.num_output = "ip2_new", 4
    net = Net(tuned, base.solver, seed=2)
    fresh = net.get_weights()
    net.load(tmp_path / "base.caffemodel")
    loaded, original = net.get_weights(), source.get_weights()
    for layer in ("conv1", "conv2", "conv3", "ip1"):
        for a, b in zip(loaded[layer], original[layer]):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(loaded["ip2_new"], fresh["ip2_new"]):
        np.testing.assert_array_equal(a, b)

    # Same name, other shape: every mismatch is listed, nothing is loaded.
    ip2.name = "ip2"
    misfit = Net(tuned, base.solver, seed=2)
    kept = misfit.get_weights()
    with pytest.raises(NetArgumentError, match=r"ip2\[0\]: file \(10, 64\), net \(4, 64\); "
                                               r"ip2\[1\]: file \(10,\), net \(4,\)"):
        misfit.load(tmp_path / "base.caffemodel")
    assert misfit.get_weights() == kept


def test_sparknet_models_lists_every_zoo_net():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "pysparknet.cli", "models"], cwd="/",
                         capture_output=True, text=True, check=True).stdout
    for name, count in PARAMS.items():
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        assert f"{count:,d}" in line
