"""One name or path -> the training (or test) data it holds, in the form fit takes.

What `sparknet train --data` accepts, for Python users too:

    'fashion-mnist'                  the packaged data set -> (images, labels) arrays
    DIR/ with *idx3-ubyte*           MNIST IDX files -> (images, labels) arrays
    DIR/ with data.mdb               a Caffe Datum LMDB -> an RDD (or a stream)
    X.parquet, DIR/ of *.parquet     image + label columns -> an RDD of records
    DIR/ of class folders            an image folder -> an RDD (or a stream)
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

from .mnist import fashion_mnist, idx_dataset
from .spark_sources import dataframe_records, image_folder_rdd, lmdb_rdd
from .streams import image_folder_stream, lmdb_stream

BUILT_IN = ("fashion-mnist", "fashion_mnist")


class UnknownSourceError(ValueError):
    """A path that holds none of the data sources pysparknet reads."""


def open_data(spark, spec: str, split: str = "train", num_partitions: int = 2,
              stream: bool = False, size: Optional[tuple] = None, image_col: str = "image",
              label_col: str = "label", on_bad_record: str = "error"):
    """The data `spec` names (see the module's table). stream=True reads an LMDB or
    image folder from the source on every pass (StreamSource) instead of caching it."""
    path = Path(spec)
    if spec in BUILT_IN:
        return fashion_mnist(split)
    if (path / "data.mdb").exists():
        return (lmdb_stream(path, num_partitions, on_bad_record=on_bad_record) if stream
                else lmdb_rdd(spark.sparkContext, path, num_partitions,
                              on_bad_record=on_bad_record))
    is_parquet = spec.endswith(".parquet") or (path.is_dir() and any(path.glob("*.parquet")))
    is_idx = path.is_dir() and any(path.glob("*idx3-ubyte*"))  # MNIST's own IDX files
    if stream and (is_parquet or is_idx or not path.is_dir()):
        raise UnknownSourceError(f"streaming reads Caffe LMDBs and image folders; {spec!r} "
                                 "is neither")
    if is_parquet:
        return dataframe_records(spark.read.parquet(str(path)), image_col, label_col,
                                 on_bad_record=on_bad_record)
    if is_idx:
        return idx_dataset(path, split)
    if path.is_dir():
        return _image_folder(spark, path, num_partitions, stream, size, on_bad_record)
    raise UnknownSourceError(f"{spec!r}: not 'fashion-mnist', a folder of MNIST IDX files, a "
                             "Caffe LMDB, a parquet table, or an image folder (one subfolder "
                             "per class)")


def _image_folder(spark, path: Path, num_partitions: int, stream: bool, size, on_bad_record):
    if stream:
        data, classes = image_folder_stream(path, num_partitions, size=size,
                                            on_bad_record=on_bad_record)
    else:
        data, classes = image_folder_rdd(spark.sparkContext, path, size=size,
                                         num_partitions=num_partitions,
                                         on_bad_record=on_bad_record)
    warnings.warn(f"{path}: {len(classes)} classes ({', '.join(classes[:5])}"
                  f"{', ...' if len(classes) > 5 else ''}), labelled in this order",
                  stacklevel=3)
    return data


def has_test_split(spec: str) -> bool:
    """Data sets that carry their own test split (Fashion-MNIST, MNIST IDX folders)."""
    path = Path(spec)
    return spec in BUILT_IN or (path.is_dir() and any(path.glob("t10k-images-idx3-ubyte*")))
