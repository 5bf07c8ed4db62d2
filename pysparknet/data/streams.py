"""Training data the workers read from its source on every pass.

For partitions larger than memory: instead of an RDD that the trainer caches
as arrays, a `StreamSource` names K partitions that each worker opens itself
(an LMDB key range, a list of image files) and reads afresh on every pass,
decoding a few minibatches ahead on the prefetch thread (data/minibatches.py).
A worker holds a couple of minibatches at a time, whatever the partition size.

The paths must be readable on every executor under the same name: local disk
on one machine, or a shared filesystem (NFS, a mounted bucket). For HDFS and
other Hadoop filesystems, use the RDD sources (spark_sources.py).

Image files are shuffled once (seeded) before they are dealt to partitions:
a folder tree lists files class by class, and a worker that saw a few classes
only would pull the averaged model apart. LMDBs are read in key order, as
Caffe's Data layer reads them (convert_imageset --shuffle shuffles at writing).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import DataError
from .bad_records import BadRecords
from .datum import lmdb_partitions, read_datum_lmdb
from .images import decode_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass
class LmdbPart:
    """One key range of a Caffe LMDB; each iteration re-opens and reads it."""

    path: str
    start: Optional[bytes]
    stop: Optional[bytes]
    count: int
    color: Optional[bool] = None
    bad: BadRecords = field(default_factory=lambda: BadRecords(distinct=True))

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        return read_datum_lmdb(self.path, self.start, self.stop, self.color, self.bad)


@dataclass
class FilesPart:
    """A list of image files and their labels; each iteration reads and decodes them."""

    root: str
    names: list[str]  # relative to root
    labels: np.ndarray
    size: Optional[tuple[int, int]] = (256, 256)
    color: Optional[bool] = True
    bad: BadRecords = field(default_factory=lambda: BadRecords(distinct=True))

    @property
    def count(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        for name, label in zip(self.names, self.labels.tolist()):
            path = os.path.join(self.root, name)
            try:
                with open(path, "rb") as file:
                    data = file.read()
                image = decode_image(data, self.color, self.size)
            except (OSError, DataError) as error:
                self.bad.handle(path, error)
                continue
            yield image, label


@dataclass
class StreamSource:
    """K partitions, each read from its source on every pass by the worker that
    trains on it. Give it to SparkNetTrainer.fit like an RDD."""

    parts: list

    @property
    def num_partitions(self) -> int:
        return len(self.parts)

    @property
    def counts(self) -> list[int]:
        return [part.count for part in self.parts]

    def skipped(self) -> int:
        """Bad records skipped by this process's reads (a worker's, for its parts)."""
        return sum(part.bad.skipped for part in self.parts)


def lmdb_stream(path, num_partitions: int, color: Optional[bool] = None,
                on_bad_record: str = "error") -> StreamSource:
    """A Caffe LMDB of Datums split into `num_partitions` key ranges of equal counts."""
    path = str(Path(path).resolve())
    parts = lmdb_partitions(path, num_partitions)
    if len(parts) < num_partitions:
        raise DataError(f"{path}: {sum(p[2] for p in parts)} records cannot fill "
                        f"{num_partitions} partitions")
    return StreamSource([LmdbPart(path, start, stop, count, color, BadRecords(on_bad_record, distinct=True))
                         for start, stop, count in parts])


def _local_root(root) -> Path:
    text = str(root)
    if "://" in text and not text.startswith("file://"):
        raise DataError(f"{text}: streams read files through the local filesystem (a shared "
                        "mount on a cluster); for other filesystems use image_folder_rdd")
    path = Path(text.removeprefix("file://")).resolve()
    if not path.is_dir():
        raise DataError(f"{path} is not a folder")
    return path


def _dealt(root: Path, names: Sequence[str], labels: Sequence[int], num_partitions: int,
           size, color, seed: Optional[int], on_bad_record: str) -> StreamSource:
    """Shuffle (seeded) and deal the files into partitions of equal counts."""
    if len(names) < num_partitions:
        raise DataError(f"{root}: {len(names)} image files cannot fill {num_partitions} "
                        "partitions")
    order = np.arange(len(names)) if seed is None else \
        np.random.default_rng(seed).permutation(len(names))
    labels = np.asarray(labels, np.int64)
    size = tuple(size) if size is not None else None
    return StreamSource([FilesPart(str(root), [names[i] for i in chunk], labels[chunk], size,
                                   color, BadRecords(on_bad_record, distinct=True))
                         for chunk in np.array_split(order, num_partitions)])


def image_folder_stream(root, num_partitions: int, size: Optional[tuple[int, int]] = (256, 256),
                        color: Optional[bool] = True, seed: Optional[int] = 0,
                        on_bad_record: str = "error") -> tuple[StreamSource, list[str]]:
    """ImageNet's train layout, root/<class>/<image>, streamed; labels are the sorted
    class folders' indices. Returns (source, classes). seed=None keeps listing order."""
    root = _local_root(root)
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise DataError(f"{root} has no class folders (expected root/<class>/<image>)")
    names, labels = [], []
    for label, cls in enumerate(classes):
        for file in sorted(os.listdir(root / cls)):
            if file.lower().endswith(IMAGE_SUFFIXES):
                names.append(f"{cls}/{file}")
                labels.append(label)
    return _dealt(root, names, labels, num_partitions, size, color, seed,
                  on_bad_record), classes


def image_list_stream(root, listfile, num_partitions: int,
                      size: Optional[tuple[int, int]] = (256, 256), color: Optional[bool] = True,
                      seed: Optional[int] = 0, on_bad_record: str = "error") -> StreamSource:
    """convert_imageset's list / ImageNet's val layout ("relative/path label" lines), streamed."""
    from .spark_sources import read_image_list

    root = _local_root(root)
    listed = read_image_list(listfile)
    return _dealt(root, list(listed), list(listed.values()), num_partitions, size, color, seed,
                  on_bad_record)
