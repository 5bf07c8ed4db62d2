"""The CPU convolution on threads: chunks of images in one GEMM (patch 0013), each
thread its own images (patch 0014, the default on two or more threads), and a
Net's threads.

Caffe's own convolution tests (scripts/caffe_tests.sh) check the layer's
gradients; these check that the batched path trains as upstream's per-image
path does (SPARKNET_CONV_BATCH_MB=0), in chunks that do not divide the batch,
with groups, padding, strides, dilation and 1x1 kernels, and on any thread count."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from pysparknet import Net, zoo
from pysparknet.errors import CaffeError, NetArgumentError
from pysparknet.threads import cpu_threads

# Every convolution shape the batched path handles differently from a plain
# one: groups, padding, stride, dilation, a 1x1 kernel, a conv without bias.
ODD_CONVS = """
name: "odd_convs"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 6 dim: 4 dim: 13 dim: 11 } shape { dim: 6 } } }
layer { name: "grouped" type: "Convolution" bottom: "data" top: "grouped"
        convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 2
          stride_h: 2 stride_w: 1 dilation: 2 group: 2 weight_filler { type: "xavier" }
          bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "grouped" top: "grouped" }
layer { name: "pool" type: "Pooling" bottom: "grouped" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 } }
layer { name: "pointwise" type: "Convolution" bottom: "pool" top: "pointwise"
        convolution_param { num_output: 5 kernel_size: 1 bias_term: false
          weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "score" type: "InnerProduct" bottom: "pointwise" top: "score"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
"""
SOLVER = 'base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" type: "SGD"'


def _setting(monkeypatch, name: str, value: Optional[str]) -> None:
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)


def _odd_weights(monkeypatch, batch_mb: Optional[str], threads: int, steps: int = 4,
                 split: Optional[str] = "gemm") -> np.ndarray:
    """Weights after `steps` steps with SPARKNET_CONV_BATCH_MB=batch_mb and
    SPARKNET_CONV_SPLIT=split (None: unset)."""
    _setting(monkeypatch, "SPARKNET_CONV_BATCH_MB", batch_mb)
    _setting(monkeypatch, "SPARKNET_CONV_SPLIT", split)
    rng = np.random.default_rng(3)
    images = rng.standard_normal((30, 4, 13, 11)).astype(np.float32)
    labels = rng.integers(0, 3, 30).astype(np.float32)
    net = Net(ODD_CONVS, SOLVER, seed=5, threads=threads)
    try:
        net.set_training_data((images, labels))
        net.train(steps)
        return net.get_weights().flat.copy()
    finally:
        net.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_convolution_trains_as_per_image_does(monkeypatch, threads):
    """All 6 images in one chunk (the default cap) against upstream's per-image
    path (a cap of 0); 4 SGD steps with momentum, so any wrong gradient shows."""
    upstream = _odd_weights(monkeypatch, "0", threads)
    batched = _odd_weights(monkeypatch, "64", threads)
    scale = np.abs(upstream).max()
    assert np.abs(batched - upstream).max() <= 1e-5 * scale
    assert not np.array_equal(upstream, _odd_weights(monkeypatch, "0", threads, steps=1))


def test_images_split_across_threads_train_as_per_image_does(monkeypatch):
    """Each thread its own images (patch 0014) against upstream's per-image path on
    the same two threads; the same bits again on a second run."""
    upstream = _odd_weights(monkeypatch, "0", 2)
    split = _odd_weights(monkeypatch, None, 2, split="images")
    assert np.abs(split - upstream).max() <= 1e-5 * np.abs(upstream).max()
    assert np.array_equal(split, _odd_weights(monkeypatch, "0", 2, split="images"))


def test_the_default_path_follows_the_threads(monkeypatch):
    """Unset, one thread runs upstream's per-image path and two threads split the
    images between them: bit for bit the explicit settings."""
    one_thread = _odd_weights(monkeypatch, None, 1, split=None)
    assert np.array_equal(one_thread, _odd_weights(monkeypatch, "0", 1))
    two_threads = _odd_weights(monkeypatch, None, 2, split=None)
    assert np.array_equal(two_threads, _odd_weights(monkeypatch, None, 2, split="images"))
    assert not np.array_equal(two_threads, _odd_weights(monkeypatch, "16", 2))


def test_lenet_chunks_that_do_not_divide_the_batch(monkeypatch, fmnist_train):
    """LeNet's conv2 needs ~128 KB of scratch an image: 1 MB holds 7 of a batch of 64
    (9 chunks, the last of one image)."""
    images, labels = fmnist_train[0][:640], fmnist_train[1][:640]
    weights = {}
    for batch_mb in ("0", "1", "64"):
        monkeypatch.setenv("SPARKNET_CONV_BATCH_MB", batch_mb)
        net = Net(zoo.lenet(batch_size=64), zoo.lenet_solver(), seed=4, threads=1)
        net.set_training_data((images, labels))
        net.train(5)
        weights[batch_mb] = net.get_weights().flat.copy()
        net.close()
    scale = np.abs(weights["0"]).max()
    for batch_mb in ("1", "64"):
        assert np.abs(weights[batch_mb] - weights["0"]).max() <= 1e-5 * scale, batch_mb


def test_two_threads_train_as_one_does(fmnist_train):
    images, labels = fmnist_train[0][:640], fmnist_train[1][:640]
    weights = []
    for threads in (1, 2):
        net = Net(zoo.lenet(batch_size=64), zoo.lenet_solver(), seed=4, threads=threads)
        assert net.threads == threads
        net.set_training_data((images, labels))
        net.train(5)
        weights.append(net.get_weights().flat.copy())
        net.close()
    assert np.abs(weights[1] - weights[0]).max() <= 1e-5 * np.abs(weights[0]).max()


@pytest.mark.parametrize("name, value, threads, message", [
    ("SPARKNET_CONV_SPLIT", "rows", 2, 'SPARKNET_CONV_SPLIT must be "images" or "gemm", '
                                       'not "rows"'),
    ("SPARKNET_CONV_BATCH_MB", "lots", 1, 'SPARKNET_CONV_BATCH_MB must be a whole number '
                                          'of megabytes, not "lots"')])
def test_a_bad_convolution_setting_is_named(monkeypatch, name, value, threads, message):
    monkeypatch.setenv(name, value)
    net = Net(ODD_CONVS, SOLVER, seed=5, threads=threads)
    try:
        net.set_training_data((np.zeros((6, 4, 13, 11), np.float32), np.zeros(6, np.float32)))
        with pytest.raises(CaffeError, match=message):
            net.train(1)
    finally:
        net.close()


@pytest.mark.parametrize("threads", [0, -2, 1.5, True, "2"])
def test_bad_thread_counts_are_refused_by_name(threads):
    with pytest.raises(NetArgumentError, match="threads must be a whole number >= 1"):
        Net(ODD_CONVS, SOLVER, threads=threads)


def test_threads_default_to_the_settings_then_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    import os
    assert cpu_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2,1")
    assert cpu_threads() == 2
    assert cpu_threads(5) == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS='many' is not a thread count"):
        cpu_threads()


BLAS_DIR = "/usr/lib/{}/openblas-{{}}".format(__import__("sysconfig").get_config_var("MULTIARCH"))


@pytest.mark.parametrize("blas, preset, expected", [
    ("pthread", None, "PASSIVE"),   # two pools on the cores: OpenMP's idle threads sleep
    ("openmp", None, None),         # one pool: OpenMP's default (spinning a while) stays
    ("pthread", "ACTIVE", "ACTIVE"),  # the user's choice stays
])
def test_openmp_waits_passively_beside_a_pthreads_openblas(blas, preset, expected):
    import os
    import subprocess
    import sys
    if not os.path.isdir(BLAS_DIR.format(blas)):
        pytest.skip(f"no {BLAS_DIR.format(blas)} (Debian's libopenblas0-{blas})")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["LD_LIBRARY_PATH"] = BLAS_DIR.format(blas)
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = "import os, pysparknet; print(os.environ.get('OMP_WAIT_POLICY'))"
    done = subprocess.run([sys.executable, "-P", "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.strip() == str(expected)
