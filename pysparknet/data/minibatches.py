"""Labelled records -> fixed-size minibatches, cycling like Caffe's data layers.

A source is either a pair of arrays (images (N, ...), labels (N,)) - the fast
path: batches are contiguous slices, no per-record Python work - or any
iterable of (ndarray, label) records, whose batches a background thread
assembles `prefetch` ahead while Caffe computes (the solver's native work runs
without the GIL), as Caffe's own data layers prefetch. Like Caffe's DB cursor,
a batch that runs past the end wraps around to the first record.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from ..errors import DataError

RecordShape = Sequence[Optional[int]]  # None: any size (e.g. before a crop)
LabelCheck = Callable[[np.ndarray, int], None]


def _fits(shape: Sequence[int], record_shape: RecordShape) -> bool:
    return len(shape) == len(record_shape) and all(
        want is None or want == got for got, want in zip(shape, record_shape))


def fit_record_shape(shape: Sequence[int], record_shape: RecordShape) -> Optional[tuple]:
    """The shape to view a record as, or None when it cannot fit.

    A record may leave out a leading channel axis of 1: (28, 28) for (1, 28, 28).
    """
    shape = tuple(shape)
    if _fits(shape, record_shape):
        return shape
    if len(record_shape) >= 2 and record_shape[0] == 1 and _fits((1,) + shape, record_shape):
        return (1,) + shape
    return None


def _describe(record_shape: RecordShape) -> str:
    return "(" + ", ".join("*" if d is None else str(d) for d in record_shape) + ")"


def _as_feed_dtype(array: np.ndarray) -> np.ndarray:
    # uint8 crosses to the native layer as is (4x fewer bytes); all else as float32.
    if array.dtype in (np.uint8, np.float32):
        return np.ascontiguousarray(array)
    return np.ascontiguousarray(array, dtype=np.float32)


def non_finite_records(images: np.ndarray, labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices of records whose image (or float label) holds NaN or an infinity."""
    finite = np.ones(len(images), bool)
    if np.issubdtype(images.dtype, np.floating):
        finite &= np.isfinite(images.reshape(len(images), -1)).all(axis=1)
    if labels is not None and np.issubdtype(np.asarray(labels).dtype, np.floating):
        finite &= np.isfinite(labels)
    return np.flatnonzero(~finite)


def _check_finite(images: np.ndarray, labels: Optional[np.ndarray], first: int) -> None:
    bad = non_finite_records(images, labels)
    if len(bad):
        raise DataError(f"record {first + bad[0]} holds NaN or infinite values: bad data "
                        "(it would train to a diverged net)")


class Minibatches:
    """Endless minibatches of (images, labels) from arrays or records."""

    def __init__(self, source: Union[tuple, Iterable], batch_size: int,
                 record_shape: RecordShape, labeled: bool = True,
                 label_check: Optional[LabelCheck] = None, prefetch: int = 2):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.record_shape = tuple(record_shape)
        self.labeled = labeled
        self._label_check = label_check
        self._arrays = None
        self._records: Optional[Iterator] = None
        self._prefetch = prefetch
        self._ready: Optional[queue.Queue] = None  # assembled batches (or the error)
        self._stop = threading.Event()
        if isinstance(source, tuple) and len(source) == 2 and all(
                isinstance(a, np.ndarray) for a in source):
            self._arrays = self._prepare_arrays(*source)
            self._cursor = 0
        elif isinstance(source, np.ndarray) and not labeled:
            self._arrays = self._prepare_arrays(source, None)
            self._cursor = 0
        elif isinstance(source, Iterable):
            self._source = source
            self._one_shot = iter(source) is source
            self._records = self._cycle()
        else:
            raise TypeError("data must be (images, labels) arrays or an iterable of "
                            f"(ndarray, label) records, not {type(source).__name__}")

    @property
    def num_records(self) -> Optional[int]:
        """Records in one pass, when known (arrays and sized iterables)."""
        if self._arrays is not None:
            return len(self._arrays[0])
        return len(self._source) if hasattr(self._source, "__len__") else None

    # --- arrays: checked once, then sliced ---------------------------------
    def _prepare_arrays(self, images: np.ndarray, labels: Optional[np.ndarray]):
        if len(images) == 0:
            raise DataError("the data holds no records")
        shape = fit_record_shape(images.shape[1:], self.record_shape)
        if shape is None:
            raise DataError(f"records have shape {images.shape[1:]}; the net's input "
                            f"takes {_describe(self.record_shape)}")
        images = _as_feed_dtype(images.reshape((len(images),) + shape))
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (len(images),):
                raise DataError(f"{len(images)} images but labels of shape {labels.shape}: "
                                "give one label per image")
            labels = np.ascontiguousarray(labels, dtype=np.float32)
        _check_finite(images, labels, 0)
        if labels is not None and self._label_check:
            self._label_check(labels, 0)
        return images, labels

    def _next_from_arrays(self):
        images, labels = self._arrays
        n, start, stop = len(images), self._cursor, self._cursor + self.batch_size
        if stop <= n:
            picked = slice(start, stop)
            batch = images[picked], (labels[picked] if labels is not None else None)
        else:  # wrap around, as Caffe's DB cursor does mid-batch
            index = np.arange(start, stop) % n
            batch = images[index], (labels[index] if labels is not None else None)
        self._cursor = stop % n
        return batch

    # --- iterables: checked per batch --------------------------------------
    def _cycle(self) -> Iterator:
        while True:
            count = 0
            for count, record in enumerate(self._source, start=1):
                yield count - 1, record
            if count == 0:
                raise DataError("the data holds no records")
            if self._one_shot:
                raise DataError(f"the data ran out after {count} records; pass a list, "
                                "a re-iterable collection or (images, labels) arrays to "
                                "cycle over it")

    def _next_from_records(self):
        images, labels, first = [], [], None
        for _ in range(self.batch_size):
            index, record = next(self._records)
            first = index if first is None else first
            if self.labeled:
                if not (isinstance(record, (tuple, list)) and len(record) == 2):
                    raise DataError(f"record {index} is not an (ndarray, label) pair")
                image, label = record
                labels.append(label)
            else:
                image = record[0] if isinstance(record, (tuple, list)) else record
            image = np.asarray(image)
            shape = fit_record_shape(image.shape, self.record_shape)
            if shape is None:
                raise DataError(f"record {index} has shape {image.shape}; the net's input "
                                f"takes {_describe(self.record_shape)}")
            images.append(image.reshape(shape))
        try:
            batch = _as_feed_dtype(np.stack(images))
        except ValueError:
            shapes = sorted({im.shape for im in images})
            raise DataError(f"records {first}..{first + len(images) - 1} mix shapes "
                            f"{shapes}; one minibatch needs one shape") from None
        if not self.labeled:
            _check_finite(batch, None, first)
            return batch, None
        try:
            label_array = np.asarray(labels, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"records {first}..{first + len(labels) - 1} have labels that "
                            "are not numbers") from None
        if label_array.shape != (len(labels),):
            raise DataError(f"records {first}..{first + len(labels) - 1}: each label must "
                            "be one number")
        _check_finite(batch, label_array, first)
        if self._label_check:
            self._label_check(label_array, first)
        return batch, label_array

    # --- prefetch: records -> batches on a background thread ---------------
    def _assemble(self) -> None:
        """Fill the queue in order; an error is queued in place of its batch."""
        while not self._stop.is_set():
            try:
                item = self._next_from_records()
            except BaseException as error:  # noqa: BLE001 - re-raised by next()
                item = error
            while not self._stop.is_set():
                try:
                    self._ready.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return

    def _next_prefetched(self):
        if self._ready is None:
            self._ready = queue.Queue(maxsize=self._prefetch)
            threading.Thread(target=self._assemble, name="minibatch-prefetch",
                             daemon=True).start()
        item = self._ready.get()
        if isinstance(item, BaseException):
            self._ready.put(item)  # every later call fails the same way
            raise item
        return item

    def skip(self, records: int) -> None:
        """Start `records` records on (modulo one pass, when its length is known), as
        if they had been served: before the first batch only."""
        if self._ready is not None:
            raise RuntimeError("skip() comes before the first minibatch")
        if self._arrays is not None:
            self._cursor = (self._cursor + records) % len(self._arrays[0])
            return
        passes = self.num_records
        for _ in range(records % passes if passes else records):
            next(self._records)

    def close(self) -> None:
        """Stop the prefetch thread (it holds the source)."""
        self._stop.set()

    def next(self) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """The next (images, labels) minibatch, both C-contiguous."""
        if self._arrays is not None:
            return self._next_from_arrays()
        if self._prefetch > 0:
            return self._next_prefetched()
        return self._next_from_records()
