"""Caffe's Datum records and LMDBs of them, as convert_imageset and Caffe's Data layer use.

Readers take a key range, so an RDD can read one LMDB in parallel
(data/spark_sources.py); writers stream records into a temporary LMDB that is
renamed into place at the end, so a failed write never leaves a half database
under the final name.
"""
from __future__ import annotations

import os
import shutil
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


def _open(path) -> lmdb.Environment:
    path = Path(path)
    if not (path / "data.mdb").exists():
        raise DataError(f"{path} is not an LMDB (no data.mdb)")
    return lmdb.open(os.fspath(path), readonly=True, lock=False, readahead=False)


def lmdb_key_ranges(path, parts: int) -> list[tuple[Optional[bytes], Optional[bytes]]]:
    """Split an LMDB's keys into `parts` contiguous [start, stop) ranges of equal counts."""
    env = _open(path)
    try:
        entries = env.stat()["entries"]
        cuts = {round(i * entries / parts) for i in range(1, parts)}
        starts: list[Optional[bytes]] = [None]
        with env.begin() as txn:
            for i, key in enumerate(txn.cursor().iternext(keys=True, values=False)):
                if i in cuts:
                    starts.append(bytes(key))
    finally:
        env.close()
    return list(zip(starts, starts[1:] + [None]))


def read_datum_lmdb(path, start: Optional[bytes] = None, stop: Optional[bytes] = None,
                    color: Optional[bool] = None,
                    bad: Optional[BadRecords] = None) -> Iterator[tuple[np.ndarray, int]]:
    """(image (C, H, W), label) for each Datum with start <= key < stop, in key order."""
    bad = bad or BadRecords()
    env = _open(path)
    try:
        with env.begin() as txn:
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
    finally:
        env.close()


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
