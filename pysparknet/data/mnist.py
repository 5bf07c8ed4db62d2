"""IDX files (MNIST, Fashion-MNIST), plain or gzipped, and the packaged Fashion-MNIST."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

FASHION_MNIST_DIR = Path(os.environ.get("PYSPARKNET_FASHION_MNIST",
                                        "/usr/share/datasets/fashion-mnist"))
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
              0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """An IDX file (as MNIST ships it) as a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(np.int64)
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path} holds {len(raw)} bytes; its header promises {expected}")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(split: str = "train", directory=None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) from Debian's dataset-fashion-mnist."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    directory = Path(directory) if directory else FASHION_MNIST_DIR
    images = directory / f"{prefix}-images-idx3-ubyte.gz"
    labels = directory / f"{prefix}-labels-idx1-ubyte.gz"
    for path in (images, labels):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: install Debian's "
                                    "dataset-fashion-mnist (apt-get install "
                                    "dataset-fashion-mnist)")
    x, y = read_idx(images), read_idx(labels)
    if len(x) != len(y):
        raise DataError(f"{len(x)} images but {len(y)} labels in {directory}")
    return x, y
