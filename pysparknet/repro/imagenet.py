"""SparkNet's ImageNet runs: Caffe's AlexNet and GoogLeNet, K workers, tau steps a round.

The paper's settings by default (tau=50; each worker the train_val prototxt's
own minibatch, as SparkNet's ImageNet apps use it: 256 for AlexNet, 32 for
GoogLeNet; Caffe's solver per net), every one a flag. Data: an ImageNet train
folder (train/<wnid>/*.JPEG) or Caffe LMDB, and a val folder (the same class
folders) or LMDB. Validation reports top-1 and top-5 accuracy of the net's
final classifier (AlexNet's train_val has top-1 only: a top-5 Accuracy layer
is added) against wall-clock time and iterations, to a metrics file and PNG.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from ..proto import caffe_pb2

TOP5_LAYER = "accuracy_top5"


@dataclass
class Scores:
    """The names of the final classifier's top-1 and top-5 test outputs."""
    top1: str
    top5: str


def with_top5(net: caffe_pb2.NetParameter) -> tuple[caffe_pb2.NetParameter, Scores]:
    """The net with a TEST-phase top-5 Accuracy beside its last top-1 one, if it has none."""
    accuracy = [layer for layer in net.layer if layer.type == "Accuracy"]
    top1 = [layer for layer in accuracy if layer.accuracy_param.top_k <= 1]
    top5 = [layer for layer in accuracy if layer.accuracy_param.top_k == 5]
    if not top1:
        raise ValueError(f"net {net.name!r} has no top-1 Accuracy layer to report")
    if top5:
        return net, Scores(top1[-1].top[0], top5[-1].top[0])
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    layer = out.layer.add()
    layer.CopyFrom(top1[-1])
    layer.name, layer.top[:] = TOP5_LAYER, [TOP5_LAYER]
    layer.accuracy_param.top_k = 5
    return out, Scores(top1[-1].top[0], TOP5_LAYER)


def _class_folders(path: Path) -> Optional[list[str]]:
    if not path.is_dir() or (path / "data.mdb").exists():
        return None  # an LMDB (or a remote path): labels are the records' own
    return sorted(entry.name for entry in os.scandir(path) if entry.is_dir())


def check_same_classes(train: Path, val: Path) -> None:
    """Folder labels are indices of the sorted class folders: both sets need the same."""
    train_classes, val_classes = _class_folders(train), _class_folders(val)
    if train_classes is None or val_classes is None or train_classes == val_classes:
        return
    only_train = sorted(set(train_classes) - set(val_classes))[:5]
    only_val = sorted(set(val_classes) - set(train_classes))[:5]
    raise DataError(f"{train} and {val} must hold the same class folders (labels are their "
                    f"sorted indices): only in train {only_train}, only in val {only_val}")


def validation_arrays(spark, path: Path, limit: int, size) -> tuple:
    """Up to `limit` val records (seeded order), on the driver as (images, labels)."""
    from ..data import open_data

    rdd = open_data(spark, str(path), "test", num_partitions=2, size=size)
    records = rdd.take(limit)
    if not records:
        raise DataError(f"{path} holds no images")
    return np.stack([r[0] for r in records]), np.asarray([r[1] for r in records], np.int64)
