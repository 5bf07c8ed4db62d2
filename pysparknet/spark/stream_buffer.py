"""A streamed fit's data on the workers: each micro-batch's share, and the bounded
buffer of recent records each worker trains on.

Every micro-batch is split into K shares, one per worker. A worker adds its share
to its buffer (keyed by batch id, so a share that arrives twice - a rerun
segment, a round's job carrying it again - is added once) and its solver trains
on the buffer, newest records first: each batch is read before older ones are
read again. The buffer keeps the most recent `limit` records; a rebuilt worker
(executor lost) starts again from the share its task carries.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
from ..data.bad_records import BadRecords
from ..data.partitions import partition_arrays


@dataclass
class BatchShare:
    """One worker's records of one micro-batch (possibly none)."""

    batch_id: int
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def share_partition(index: int, records: Iterable, batch_id: int,
                    bad: Optional[BadRecords] = None, sizes=None):
    """A micro-batch's partition of (ndarray, label) records -> its one BatchShare
    (its size added to the `sizes` accumulator)."""
    records = list(records)
    if records:
        images, labels = partition_arrays(index, records, bad)
        share = BatchShare(batch_id, images, labels)
    else:
        share = BatchShare(batch_id, np.empty((0,), np.float32), np.empty((0,), np.int64))
    if sizes is not None:
        sizes.add({index: len(share)})
    yield share


class RecentRecords:
    """The most recent `limit` records of the batches a worker was given."""

    def __init__(self, limit: int):
        self.limit = limit
        self._batches: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(labels) for _, labels in self._batches.values())

    def add(self, share: BatchShare) -> bool:
        """Add a batch's share; False when it changed nothing (empty, or held already)."""
        if not len(share) or share.batch_id in self._batches:
            return False
        self._batches[share.batch_id] = (share.images[-self.limit:], share.labels[-self.limit:])
        excess = len(self) - self.limit
        while excess > 0:  # the oldest records go first
            oldest_id, (images, labels) = next(iter(self._batches.items()))
            if len(labels) <= excess:
                del self._batches[oldest_id]
                excess -= len(labels)
            else:
                self._batches[oldest_id] = (images[excess:], labels[excess:])
                excess = 0
        return True

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels), the newest batch first."""
        newest_first = list(reversed(self._batches.values()))
        return (np.concatenate([images for images, _ in newest_first]),
                np.concatenate([labels for _, labels in newest_first]))


_BUFFERS: dict[tuple[str, int], RecentRecords] = {}


def buffered(key: tuple[str, int], share: Optional[BatchShare],
             limit: int) -> tuple[Optional[tuple], bool]:
    """(the buffer's arrays, or None when it is empty; whether this share changed it)."""
    buffer = _BUFFERS.setdefault(key, RecentRecords(limit))
    changed = share is not None and buffer.add(share)
    return (buffer.arrays() if len(buffer) else None), changed


def release_buffers(run_id: str) -> None:
    for key in [k for k in _BUFFERS if k[0] == run_id]:
        del _BUFFERS[key]
