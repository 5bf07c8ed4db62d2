"""The IDX loader: MNIST-layout folders, plain or gzipped, and bad files."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from pysparknet import DataError
from pysparknet.data import fashion_mnist, idx_dataset, read_idx
from pysparknet.data.mnist import FASHION_MNIST_DIR


def test_plain_idx_folder_reads_like_the_gzipped_one(tmp_path, fmnist_test):
    for kind in ("images-idx3", "labels-idx1"):
        with gzip.open(FASHION_MNIST_DIR / f"t10k-{kind}-ubyte.gz") as f, \
                open(tmp_path / f"t10k-{kind}-ubyte", "wb") as out:
            shutil.copyfileobj(f, out)
    x, y = idx_dataset(tmp_path, "test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, fmnist_test[0])
    np.testing.assert_array_equal(y, fmnist_test[1])
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        idx_dataset(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        fashion_mnist("train", tmp_path)


def test_bad_idx_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"not an idx file at all")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(DataError, match="holds 10 bytes; its header promises 13"):
        read_idx(tmp_path / "short")
