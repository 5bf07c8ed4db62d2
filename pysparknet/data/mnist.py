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


def idx_dataset(directory, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of an MNIST-layout folder: {train,t10k}-{images-idx3,labels-idx1}-ubyte,
    each plain (as MNIST's own files) or gzipped (as Debian's Fashion-MNIST)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    directory = Path(directory)
    found = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte"
        path = next((directory / n for n in (name, name + ".gz") if (directory / n).exists()),
                    None)
        if path is None:
            raise FileNotFoundError(f"{directory / name}[.gz] is missing")
        found.append(path)
    x, y = read_idx(found[0]), read_idx(found[1])
    if len(x) != len(y):
        raise DataError(f"{len(x)} images but {len(y)} labels in {directory}")
    return x, y


def fashion_mnist(split: str = "train", directory=None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) from Debian's dataset-fashion-mnist."""
    directory = Path(directory) if directory else FASHION_MNIST_DIR
    try:
        return idx_dataset(directory, split)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}: install Debian's dataset-fashion-mnist "
                                "(apt-get install dataset-fashion-mnist)") from None
