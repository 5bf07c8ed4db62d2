"""Caffe's LMDB of Datum records, as convert_imageset and Caffe's Data layer use it."""
from __future__ import annotations

import os
from typing import Iterable, Iterator

import lmdb
import numpy as np

from ..errors import DataError
from ..proto import caffe_pb2


def write_datum_lmdb(path, images: np.ndarray, labels: Iterable[int],
                     map_size: int | None = None) -> int:
    """Write uint8 images (N, C, H, W) and labels as raw Datum records.

    Keys are the zero-padded record index, as Caffe's convert tools write them,
    so LMDB order is record order. Returns the number of records written.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    labels = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
    if len(labels) != len(images):
        raise DataError(f"{len(images)} images but {len(labels)} labels")
    n, c, h, w = images.shape
    env = lmdb.open(os.fspath(path), map_size=map_size or max(1 << 24, 2 * images.nbytes + n * 64),
                    subdir=True, lock=True)
    try:
        with env.begin(write=True) as txn:
            for i in range(n):
                datum = caffe_pb2.Datum(channels=c, height=h, width=w,
                                        data=images[i].tobytes(), label=int(labels[i]))
                txn.put(f"{i:08d}".encode(), datum.SerializeToString())
    finally:
        env.close()
    return n


def read_datum_lmdb(path) -> Iterator[tuple[np.ndarray, int]]:
    """(uint8 array (C, H, W), label) for each raw Datum, in key order."""
    env = lmdb.open(os.fspath(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            for key, value in txn.cursor():
                datum = caffe_pb2.Datum.FromString(value)
                if datum.encoded:
                    raise DataError(f"record {key.decode(errors='replace')} is encoded; "
                                    "decoding images is not supported here yet")
                yield (np.frombuffer(datum.data, np.uint8)
                       .reshape(datum.channels, datum.height, datum.width), datum.label)
    finally:
        env.close()
