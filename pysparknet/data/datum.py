"""Caffe's Datum records and LMDBs of them, as convert_imageset and Caffe's Data layer use.

Readers take a key range, so an RDD can read one LMDB in parallel
(data/spark_sources.py); writers stream records into a temporary LMDB that is
renamed into place at the end, so a failed write never leaves a half database
under the final name.
"""
from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import lmdb
import numpy as np

from ..errors import DataError
from ..proto import caffe_pb2
from .bad_records import BadRecords
from .images import decode_image, encode_image

Record = tuple[Union[np.ndarray, bytes], int]


def datum_to_array(datum: caffe_pb2.Datum, color: Optional[bool] = None) -> np.ndarray:
    """A Datum's image as (C, H, W): uint8 for raw or encoded data, float32 for float_data."""
    if datum.encoded:
        return decode_image(datum.data, color)
    shape = (datum.channels, datum.height, datum.width)
    if datum.data:
        pixels = np.frombuffer(datum.data, np.uint8)
    elif len(datum.float_data):
        pixels = np.asarray(datum.float_data, np.float32)
    else:
        raise DataError("Datum holds neither data nor float_data")
    if pixels.size != int(np.prod(shape)):
        raise DataError(f"Datum of shape {shape} holds {pixels.size} values")
    return pixels.reshape(shape)


def array_to_datum(image: Union[np.ndarray, bytes], label: int,
                   encode: Optional[str] = None) -> caffe_pb2.Datum:
    """(image, label) -> Datum. bytes are stored as an encoded image (convert_imageset
    --encoded); a uint8 array raw, or encoded to `encode` ("png", "jpeg"); floats as float_data."""
    if label is None:
        raise DataError("the record has no label")
    if isinstance(image, (bytes, bytearray)):
        return caffe_pb2.Datum(data=bytes(image), encoded=True, label=int(label))
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise DataError(f"image of shape {image.shape}: expected (C, H, W)")
    if encode:
        return caffe_pb2.Datum(data=encode_image(image, encode.upper()), encoded=True,
                               label=int(label))
    c, h, w = image.shape
    if image.dtype == np.uint8:
        return caffe_pb2.Datum(channels=c, height=h, width=w, data=image.tobytes(),
                               label=int(label))
    return caffe_pb2.Datum(channels=c, height=h, width=w, label=int(label),
                           float_data=image.astype(np.float32).ravel())


# LMDB allows one environment per database and process: readers of the same
# LMDB in one process (a streamed partition's prefetch thread and another key
# range, say) share it; the last one out closes it.
_ENVS: dict[str, list] = {}  # resolved path -> [environment, readers]
_ENVS_LOCK = threading.Lock()


@contextmanager
def _opened(path) -> Iterator[lmdb.Environment]:
    path = os.path.realpath(path)
    with _ENVS_LOCK:
        entry = _ENVS.get(path)
        if entry is None:
            if not os.path.exists(os.path.join(path, "data.mdb")):
                raise DataError(f"{path} is not an LMDB (no data.mdb)")
            try:
                env = lmdb.open(path, readonly=True, lock=False, readahead=False)
            except lmdb.Error as error:
                raise DataError(f"{path}: cannot open the LMDB: {error}") from error
            entry = _ENVS[path] = [env, 0]
        entry[1] += 1
    try:
        yield entry[0]
    finally:
        with _ENVS_LOCK:
            entry[1] -= 1
            if entry[1] == 0:
                del _ENVS[path]
                entry[0].close()


def lmdb_partitions(path, parts: int) -> list[tuple[Optional[bytes], Optional[bytes], int]]:
    """Split an LMDB's keys into `parts` contiguous [start, stop) ranges of equal
    counts (fewer when it has fewer records): (start, stop, count) each."""
    with _opened(path) as env:
        entries = env.stat()["entries"]
        cuts = sorted({round(i * entries / parts) for i in range(1, parts)} - {0, entries})
        starts: list[Optional[bytes]] = [None]
        with env.begin() as txn:
            wanted = iter(cuts)
            cut = next(wanted, None)
            for i, key in enumerate(txn.cursor().iternext(keys=True, values=False)):
                if i == cut:
                    starts.append(bytes(key))
                    cut = next(wanted, None)
    counts = [b - a for a, b in zip([0] + cuts, cuts + [entries])]
    return list(zip(starts, starts[1:] + [None], counts))


def lmdb_key_ranges(path, parts: int) -> list[tuple[Optional[bytes], Optional[bytes]]]:
    """Split an LMDB's keys into `parts` contiguous [start, stop) ranges of equal counts."""
    return [(start, stop) for start, stop, _ in lmdb_partitions(path, parts)]


def read_datum_lmdb(path, start: Optional[bytes] = None, stop: Optional[bytes] = None,
                    color: Optional[bool] = None,
                    bad: Optional[BadRecords] = None) -> Iterator[tuple[np.ndarray, int]]:
    """(image (C, H, W), label) for each Datum with start <= key < stop, in key order."""
    bad = bad or BadRecords()
    with _opened(path) as env, env.begin() as txn:
        cursor = txn.cursor()
        found = cursor.set_range(start) if start is not None else cursor.first()
        while found:
            key = bytes(cursor.key())
            if stop is not None and key >= stop:
                break
            try:
                datum = caffe_pb2.Datum.FromString(cursor.value())
                record = datum_to_array(datum, color), datum.label
            except Exception as error:  # noqa: BLE001 - not a Datum, undecodable, ...
                bad.handle(f"{path} key {key.decode(errors='replace')!r}", error)
            else:
                yield record
            found = cursor.next()


def write_datum_lmdb(path, records: Iterable[Record], encode: Optional[str] = None,
                     bad: Optional[BadRecords] = None, commit_every: int = 1000) -> int:
    """Write (image, label) records as Datums with keys 00000000, 00000001, ... (record
    order, as Caffe's convert tools number them). Returns how many were written."""
    bad = bad or BadRecords()
    final = Path(path)
    if final.exists():
        raise FileExistsError(f"{final} exists; not overwriting an LMDB")
    temporary = final.with_name(f".{final.name}.writing-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    env = lmdb.open(os.fspath(temporary), map_size=1 << 26, subdir=True)
    written, pending = 0, []
    try:
        for i, (image, label) in enumerate(records):
            try:
                pending.append((f"{written:08d}".encode(),
                                array_to_datum(image, label, encode).SerializeToString()))
            except (DataError, ValueError, TypeError) as error:
                bad.handle(f"record {i}", error)
                continue
            written += 1
            if len(pending) >= commit_every:
                _put_all(env, pending)
                pending = []
        _put_all(env, pending)
    except BaseException:
        env.close()
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    env.close()
    temporary.rename(final)
    return written


def _put_all(env: lmdb.Environment, items: list[tuple[bytes, bytes]]) -> None:
    """One transaction; the map grows (doubling, as Caffe's own LMDB writer) when full."""
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in items:
                    txn.put(key, value)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)
