"""The feed layer: Input layers fed from Python, with Caffe's transform_param."""
from __future__ import annotations

import numpy as np
import pytest

from pysparknet import DataError, Net

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
