"""What Spark reads -> RDDs of (ndarray (C, H, W), label) records for the trainer.

Each function returns a plain RDD; records that cannot be used follow
`on_bad_record` ("error": fail naming the record; "skip": drop image and label
together and count them). A skipping RDD carries `.bad_records`, whose
`report()` warns with the count once an action has read the data (the
trainer calls it after caching its input).
"""
from __future__ import annotations

import posixpath
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import DataError
from .bad_records import BadRecords
from .datum import lmdb_key_ranges, read_datum_lmdb
from .images import decode_image


def _bad_records(sc, policy: str) -> BadRecords:
    return BadRecords(policy, sc.accumulator(0) if policy == "skip" else None)


def _tagged(rdd, bad: BadRecords):
    rdd.bad_records = bad
    return rdd


# --- LMDB ----------------------------------------------------------------------
def lmdb_rdd(sc, path, num_partitions: Optional[int] = None, color: Optional[bool] = None,
             on_bad_record: str = "error"):
    """A Caffe LMDB of Datums (raw or encoded), read in parallel by key ranges.

    Every executor opens the LMDB itself, so `path` must be readable on each of
    them (local disk on one machine, or a shared filesystem).
    """
    path = str(Path(path).resolve())
    ranges = lmdb_key_ranges(path, num_partitions or sc.defaultParallelism)
    bad = _bad_records(sc, on_bad_record)
    return _tagged(sc.parallelize(ranges, len(ranges)).flatMap(
        lambda bounds: read_datum_lmdb(path, bounds[0], bounds[1], color, bad)), bad)


# --- DataFrames ----------------------------------------------------------------
_SPARK_IMAGE_FIELDS = {"data", "height", "width", "nChannels"}


def image_kind(data_type) -> str:
    """'binary', 'array' or 'spark-image' for an image column's Spark type (else DataError)."""
    from pyspark.sql import types as T

    if isinstance(data_type, T.BinaryType):
        return "binary"
    if isinstance(data_type, T.ArrayType) and isinstance(data_type.elementType, T.NumericType):
        return "array"
    if isinstance(data_type, T.StructType) and _SPARK_IMAGE_FIELDS <= set(data_type.names):
        return "spark-image"
    raise DataError(f"image column of type {data_type.simpleString()}: expected binary (raw "
                    "or encoded image bytes), an array of numbers, or Spark's image struct")


def row_to_image(kind: str, value, shape, color) -> np.ndarray:
    """One image column value (of image_kind `kind`) as a (C, H, W) array; `shape`
    reshapes raw bytes and arrays, `color` picks the channels of encoded images."""
    if value is None:
        raise DataError("the image is null")
    if kind == "binary":
        if shape is None:  # encoded JPEG/PNG/...
            return decode_image(bytes(value), color)
        pixels = np.frombuffer(value, np.uint8)
    elif kind == "array":
        pixels = np.asarray(value, np.float32)
    else:  # Spark's image data source: HWC, BGR as OpenCV stores it
        h, w, c = value["height"], value["width"], value["nChannels"]
        hwc = np.frombuffer(value["data"], np.uint8).reshape(h, w, c)
        return np.ascontiguousarray(hwc[:, :, :3].transpose(2, 0, 1))
    if shape is None:
        return pixels
    if pixels.size != int(np.prod(shape)):
        raise DataError(f"{pixels.size} values cannot be shaped {tuple(shape)}")
    return pixels.reshape(shape)


def dataframe_records(df, image_col: Optional[str] = None, label_col: Optional[str] = None,
                      shape: Optional[Sequence[int]] = None, color: Optional[bool] = None,
                      on_bad_record: str = "error"):
    """(ndarray, label) records from a DataFrame, e.g. the output of spark.sql(...).

    image_col (default "image", else the first column) holds encoded image bytes
    (JPEG, PNG, ...), raw uint8 bytes with `shape` given, an array of numbers
    (reshaped to `shape` when given), or Spark's `image` struct. label_col
    (default "label", else the second column) holds integer class indices.
    """
    columns = df.columns
    image_col = image_col or ("image" if "image" in columns else columns[0])
    label_col = label_col or ("label" if "label" in columns else columns[1])
    for name in (image_col, label_col):
        if name not in columns:
            raise DataError(f"the DataFrame has no column {name!r} (it has {columns})")
    kind = image_kind(df.schema[image_col].dataType)
    shape = tuple(shape) if shape is not None else None
    bad = _bad_records(df.sparkSession.sparkContext, on_bad_record)

    def convert(index, rows):
        for i, row in enumerate(rows):
            try:
                label = row[1]
                if label is None:
                    raise DataError("the label is null")
                yield row_to_image(kind, row[0], shape, color), int(label)
            except DataError as error:
                bad.handle(f"partition {index}, row {i}", error)

    return _tagged(df.select(image_col, label_col).rdd.mapPartitionsWithIndex(convert), bad)


# --- image files ---------------------------------------------------------------
def _spark_path(root) -> str:
    """A local folder as an absolute path; anything else (hdfs://, s3a://) as given."""
    return str(Path(root).resolve()) if Path(root).is_dir() else str(root)


def _decode_files(pairs, label_of, size, color, bad):
    for uri, data in pairs:
        try:
            label = label_of(uri)
            if label is None:
                raise DataError("no label for this file")
            yield decode_image(data, color, size), label
        except DataError as error:
            bad.handle(uri, error)


def _shuffle_key(uri: str, seed: int) -> int:
    return zlib.crc32(f"{seed}:{uri}".encode())


def _shuffled(files, num_partitions: int, seed: Optional[int]):
    """Files in a seeded random order across and within partitions (a folder tree
    lists them class by class: a worker would see a few classes only)."""
    if seed is None:
        return files
    return files.sortBy(lambda pair: _shuffle_key(pair[0], seed), numPartitions=num_partitions)


def _subfolders(sc, root: str) -> list[str]:
    """Sorted names of root's folders, through Hadoop's FileSystem (any scheme Spark reads)."""
    jvm = sc._jvm
    path = jvm.org.apache.hadoop.fs.Path(root)
    fs = path.getFileSystem(sc._jsc.hadoopConfiguration())
    if not fs.exists(path):
        raise DataError(f"{root} does not exist")
    return sorted(status.getPath().getName() for status in fs.listStatus(path)
                  if status.isDirectory())


def image_folder_rdd(sc, root, size: Optional[tuple[int, int]] = (256, 256),
                     color: Optional[bool] = True, num_partitions: Optional[int] = None,
                     seed: Optional[int] = 0, on_bad_record: str = "error"):
    """ImageNet's train layout: root/<class>/<image>. Labels are the sorted class
    folders' indices; returns (rdd, classes). `root` is any path Spark reads
    (local on every executor, HDFS, ...); size=(H, W) resizes, None keeps each size.
    The files are shuffled (seeded; seed=None keeps listing order, class by class)."""
    root = _spark_path(root)
    classes = _subfolders(sc, root)
    if not classes:
        raise DataError(f"{root} has no class folders (expected root/<class>/<image>)")
    index = {name: i for i, name in enumerate(classes)}
    bad = _bad_records(sc, on_bad_record)
    parts = num_partitions or sc.defaultParallelism
    files = _shuffled(sc.binaryFiles(f"{root}/*/*", parts), parts, seed)

    def label_of(uri):
        return index.get(posixpath.basename(posixpath.dirname(uri)))

    rdd = files.mapPartitions(lambda pairs: _decode_files(pairs, label_of, size, color, bad))
    return _tagged(rdd, bad), classes


def read_image_list(listfile) -> dict[str, int]:
    """convert_imageset's list file: "relative/path label" lines -> {path: label}, in order."""
    labels = {}
    for number, line in enumerate(Path(listfile).read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, _, label = line.rpartition(" ")
        try:
            labels[name.strip()] = int(label)
        except ValueError:
            raise DataError(f"{listfile}:{number}: expected 'path label', got {line!r}") from None
    if not labels:
        raise DataError(f"{listfile} lists no images")
    return labels


def image_list_rdd(sc, root, listfile, size: Optional[tuple[int, int]] = (256, 256),
                   color: Optional[bool] = True, num_partitions: Optional[int] = None,
                   on_bad_record: str = "error"):
    """ImageNet's val layout / convert_imageset's list: `listfile` lines are
    "relative/path label"; images under root. A file the list does not name is a
    bad record (missing label)."""
    labels = read_image_list(listfile)
    root_path = _spark_path(root)
    bad = _bad_records(sc, on_bad_record)
    # The folders the list names, as one comma-separated set of globs.
    folders = sorted({posixpath.dirname(name) for name in labels})
    pattern = ",".join(posixpath.join(root_path, folder, "*") for folder in folders)
    files = sc.binaryFiles(pattern, num_partitions or sc.defaultParallelism)

    def label_of(uri):
        relative = uri.split(root_path, 1)[-1].lstrip("/")
        return labels.get(relative, labels.get(posixpath.basename(uri)))

    rdd = files.mapPartitions(lambda pairs: _decode_files(pairs, label_of, size, color, bad))
    return _tagged(rdd, bad)
