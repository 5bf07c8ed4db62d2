"""The feed layer: Input layers fed from Python, with Caffe's transform_param."""
from __future__ import annotations

import numpy as np
import pytest

from pysparknet import DataError, Net, NetArgumentError

# A test-only net whose outputs are the fed blobs themselves.
PASS_THROUGH = """
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 1 dim: 2 dim: 2 } shape { dim: 2 } }
        transform_param { crop_size: 2 scale: 0.5 mean_value: 1 } }
"""


def test_transform_crops_subtracts_mean_and_scales_as_caffe():
    images = np.arange(2 * 16, dtype=np.uint8).reshape(2, 1, 4, 4)
    labels = np.array([3.0, 5.0])
    net = Net(PASS_THROUGH)  # TEST phase: Caffe takes the center crop
    assert net._record_shape(1) == (1, None, None)
    net.set_validation_data((images, labels))
    out = net.test(1)
    center = images[:, :, 1:3, 1:3].astype(np.float32)
    assert out["data"] == pytest.approx(float(((center - 1) * 0.5).mean()), abs=1e-6)
    assert out["label"] == 4.0
    # float32 records give the same result as uint8 ones.
    net.set_validation_data([(im.astype(np.float32), lab) for im, lab in zip(images, labels)])
    assert net.test(1) == out


def test_blob_reads_the_transformed_batch_exactly():
    """Net.blob: each value of the fed top, the center crop's (x - mean) * scale."""
    images = np.arange(2 * 16, dtype=np.uint8).reshape(2, 1, 4, 4)
    net = Net(PASS_THROUGH)
    net.set_validation_data((images, np.array([3.0, 5.0])))
    net.test(1)
    expected = (images[:, :, 1:3, 1:3].astype(np.float32) - 1) * np.float32(0.5)
    np.testing.assert_array_equal(net.blob("data", phase=1), expected)
    np.testing.assert_array_equal(net.blob("label", phase=1), [3.0, 5.0])
    with pytest.raises(NetArgumentError, match="no blob named 'nope'"):
        net.blob("nope", phase=1)


def test_random_crops_and_mirrors_follow_the_seed():
    """TRAIN-phase crops and flips come from the net's seed: the same seed, the
    same draws (what lets a GPU feed be checked bit for bit against the CPU's)."""
    net_text = """
      layer { name: "data" type: "Input" top: "data" top: "label"
              input_param { shape { dim: 4 dim: 1 dim: 3 dim: 3 } shape { dim: 4 } }
              transform_param { crop_size: 3 mirror: true } }
      layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
              inner_product_param { num_output: 2 } }
      layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
    """
    solver = 'base_lr: 0.0 lr_policy: "fixed" display: 0'
    images = np.random.default_rng(0).integers(0, 256, (8, 1, 6, 5), np.uint8)
    seen = []
    for seed in (7, 7, 8):
        net = Net(net_text, solver, seed=seed)
        net.set_training_data((images, np.zeros(8)))
        batches = []
        for _ in range(2):
            net.train(1)
            batches.append(net.blob("data"))
        seen.append(np.stack(batches))
        net.close()
    np.testing.assert_array_equal(seen[0], seen[1])
    assert not np.array_equal(seen[0], seen[2])
    # every item is a 3x3 window of its image, flipped or not
    windows = {images[0, 0, h:h + 3, w:w + 3].tobytes() for h in range(4) for w in range(3)}
    windows |= {images[0, 0, h:h + 3, w:w + 3][:, ::-1].tobytes()
                for h in range(4) for w in range(3)}
    assert seen[0][0, 0, 0].astype(np.uint8).tobytes() in windows


def test_separate_data_and_label_input_layers_share_one_batch():
    """SparkNet's DSL feeds 'data' and 'label' from two layers: one record feeds both."""
    net = Net("""
      layer { name: "data" type: "Input" top: "data"
              input_param { shape { dim: 3 dim: 2 } } }
      layer { name: "label" type: "Input" top: "label"
              input_param { shape { dim: 3 } } }
    """)
    records = [(np.full(2, i, np.float32), 10 * i) for i in range(6)]
    net.set_validation_data(records)
    assert net.test(1) == {"data": 1.0, "label": 10.0}   # records 0, 1, 2
    assert net.test(1) == {"data": 4.0, "label": 40.0}   # records 3, 4, 5


def test_records_must_match_the_input_channels():
    net = Net(PASS_THROUGH)
    with pytest.raises(DataError, match=r"\(1, \*, \*\)"):
        net.set_validation_data((np.zeros((4, 3, 4, 4), np.uint8), np.zeros(4)))
