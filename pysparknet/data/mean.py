"""The per-pixel image mean over a data set, and Caffe's binaryproto mean files.

Sums are exact integers (uint8 pixels, int64 accumulators) and the division is
done in float32, the arithmetic of Caffe's compute_image_mean (float sums stay
exact below 2^24), so the two tools write the same mean file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import DataError
from ..files import write_atomically
from ..proto import caffe_pb2


def _partial_sum(records: Iterable):
    total, count = None, 0
    for image, _ in records:
        image = np.asarray(image)
        if total is None:
            total = np.zeros(image.shape, np.int64 if image.dtype == np.uint8 else np.float64)
        elif image.shape != total.shape:
            raise DataError(f"record {count}: shape {image.shape} differs from {total.shape}; "
                            "a mean needs one image size")
        total += image
        count += 1
    return total, count


def _combine(a, b):
    if a[0] is None:
        return b
    if b[0] is None:
        return a
    if a[0].shape != b[0].shape:
        raise DataError(f"images of shapes {a[0].shape} and {b[0].shape}: a mean needs one size")
    return a[0] + b[0], a[1] + b[1]


def image_mean(records) -> np.ndarray:
    """float32 (C, H, W) mean of (image, label) records: an RDD (summed on the
    executors) or any iterable."""
    if hasattr(records, "mapPartitions"):
        total, count = records.mapPartitions(lambda part: [_partial_sum(part)]).treeReduce(
            _combine)
    else:
        total, count = _partial_sum(records)
    if not count:
        raise DataError("no records to average")
    return total.astype(np.float32) / np.float32(count)


def save_binaryproto(mean: np.ndarray, path) -> None:
    """Write a (C, H, W) mean as Caffe's BlobProto (what mean_file reads), atomically."""
    mean = np.asarray(mean, np.float32)
    if mean.ndim != 3:
        raise DataError(f"a mean is (C, H, W), got shape {mean.shape}")
    blob = caffe_pb2.BlobProto(num=1, channels=mean.shape[0], height=mean.shape[1],
                               width=mean.shape[2], data=mean.ravel())
    write_atomically(path, blob.SerializeToString())


def load_binaryproto(path) -> np.ndarray:
    """A Caffe mean file -> float32 (C, H, W)."""
    blob = caffe_pb2.BlobProto.FromString(Path(path).read_bytes())
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    data = np.asarray(blob.data, np.float32)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: {data.size} values for shape {shape}")
    return data.reshape(shape[-3:]) if len(shape) >= 3 else data.reshape(shape)
