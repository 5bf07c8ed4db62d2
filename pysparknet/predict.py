"""Batch scoring of a trained net: class probabilities, the predicted class, top-k.

    predictor = Predictor(zoo.lenet(), weights)         # weights: WeightCollection,
    out = predictor.predict(images, top_k=3)            # {layer: arrays} or .caffemodel
    out.predictions, out.probabilities, out.top_k

The net scored is the train_val net's TEST phase cut down to what the class
scores need: its data input alone (the label input, losses and accuracies
gone), the Input layer's transform_param kept (scale, mean, crop), so images go
in as training took them. The scores are the blob its (last) loss or accuracy
reads; their softmax is the probabilities (a net that ends in Softmax already
gives them).

Where many batches of one model are scored in one process (a Spark Python
worker), `cached_predictor(key, build)` builds the Predictor once per key and
keeps the last MAX_CACHED models; `stats()` counts the builds (tests count them).
"""
from __future__ import annotations

import math
import os
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, Optional, Union

import numpy as np

from .errors import NetArgumentError
from .feeds import CLASS_CONSUMERS, INPUT_TYPES, in_phase, phase_feed
from .finetune import match_weights, read_caffemodel
from .net import TEST, Net
from .proto import caffe_pb2
from .prototxt import Source, parse_net
from .weights import WeightCollection


@dataclass
class ScoringNet:
    """The net that scores: its definition, the scores blob, whether they are
    probabilities already, and the data input's shape per record."""

    net: caffe_pb2.NetParameter
    scores: str
    probabilities: bool


def _scores_blob(net: caffe_pb2.NetParameter) -> tuple[str, bool]:
    """(the class scores' blob, whether it is a Softmax's output) of the TEST net."""
    consumers = [layer for layer in net.layer
                 if layer.type in CLASS_CONSUMERS and in_phase(layer, caffe_pb2.TEST)
                 and layer.bottom]
    losses = [layer for layer in consumers if layer.type == "SoftmaxWithLoss"]
    if losses or consumers:
        return (losses or consumers)[-1].bottom[0], False
    last = [layer for layer in net.layer if in_phase(layer, caffe_pb2.TEST)][-1]
    return last.top[0], last.type == "Softmax"


def scoring_net(net_params: Source, batch_size: Optional[int] = None) -> ScoringNet:
    """The TEST net cut down to its data input and the class scores (see above);
    batch_size: its minibatch (default: the TEST input's)."""
    full = parse_net(net_params)
    feed = phase_feed(full, caffe_pb2.TEST)
    if feed.data_top is None:
        raise NetArgumentError("the net has no Input layer in its TEST phase to score from")
    scores, is_probability = _scores_blob(full)
    layers = [layer for layer in full.layer if in_phase(layer, caffe_pb2.TEST)]
    needed, kept = {scores}, []
    for layer in reversed(layers):  # the scores' ancestors only
        if any(top in needed for top in layer.top):
            kept.append(layer)
            needed |= set(layer.bottom)
    out = caffe_pb2.NetParameter(name=full.name)
    for layer in reversed(kept):
        copy = out.layer.add()
        copy.CopyFrom(layer)
        copy.ClearField("include")
        copy.ClearField("exclude")
        if layer.type in INPUT_TYPES:
            _keep_data_top(copy, feed.data_top, batch_size)
    return ScoringNet(out, scores, is_probability)


def _keep_data_top(layer: caffe_pb2.LayerParameter, data_top: str,
                   batch_size: Optional[int]) -> None:
    tops = list(layer.top)
    shapes = list(layer.input_param.shape)
    if data_top not in tops:
        return
    shape = shapes[tops.index(data_top)] if len(shapes) > 1 else shapes[0]
    dims = list(shape.dim)
    if batch_size is not None:
        dims[0] = int(batch_size)
    del layer.top[:]
    layer.top.append(data_top)
    del layer.input_param.shape[:]
    layer.input_param.shape.add().dim.extend(dims)


@dataclass
class Prediction:
    """One scored batch: class probabilities (N, classes), the argmax class (N,),
    and the top-k classes, best first (N, k), when asked for."""

    probabilities: np.ndarray
    predictions: np.ndarray
    top_k: Optional[np.ndarray] = None


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


WeightsSource = Union[WeightCollection, Mapping, str, os.PathLike]


class Predictor:
    """A trained net that scores arrays of images in batches (see the module's doc).

    weights: the trained net's WeightCollection, {layer: arrays}, or a
    .caffemodel path; matched to the scoring net's layers by name. threads: as Net's."""

    def __init__(self, net_params: Source, weights: WeightsSource,
                 batch_size: Optional[int] = None, device: str = "cpu",
                 threads: Optional[int] = None):
        self.definition = scoring_net(net_params, batch_size)
        self.net = Net(self.definition.net, device=device, threads=threads)
        if not isinstance(weights, Mapping):
            weights = read_caffemodel(weights)
        mine, report = match_weights(self.net.get_weights(), weights,
                                     origin="the trained weights")
        if report.new:
            raise NetArgumentError(f"the trained weights have no layer(s) {report.new} "
                                   "that the scoring net needs")
        self.net.set_weights(mine)
        self.batch_size = self.net.batch_size(TEST)
        self.forward_passes = 0

    @property
    def record_shape(self) -> tuple:
        """(C, H, W) a record must have (None where a crop takes any size)."""
        shape = self.net.input_shape(TEST)[1:]
        transform = phase_feed(self.definition.net, caffe_pb2.TEST).transform
        if transform is not None and transform.crop_size and len(shape) == 3:
            return (shape[0], None, None)
        return shape

    def scores(self, images: np.ndarray) -> np.ndarray:
        """The class scores (N, classes) of images (N, C, H, W) (or (N, H, W) for C=1)."""
        images = np.asarray(images)
        n = len(images)
        if n == 0:
            return np.zeros((0, 0), np.float32)
        self.net.set_validation_data(images)  # a last short batch wraps around
        out = []
        for _ in range(math.ceil(n / self.batch_size)):
            self.net.test(1)
            self.forward_passes += 1
            batch = self.net.blob(self.definition.scores, TEST)
            out.append(batch.reshape(len(batch), -1))
        return np.concatenate(out)[:n]

    def predict(self, images: np.ndarray, top_k: int = 0) -> Prediction:
        scores = self.scores(images)
        probabilities = scores if self.definition.probabilities else softmax(scores)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :top_k] if top_k else None
        return Prediction(probabilities, scores.argmax(axis=1), top)

    def close(self) -> None:
        self.net.close()


# --- one Predictor per model per process ---------------------------------------------
MAX_CACHED = 2  # models kept per process; the least recently used is closed
_CACHE: "OrderedDict[Hashable, Predictor]" = OrderedDict()
_LOCK = threading.Lock()
BUILDS: Counter = Counter()   # key -> Predictors built in this process
LOOKUPS: Counter = Counter()  # key -> times cached_predictor was asked for it


def cached_predictor(key: Hashable, build: Callable[[], Predictor]) -> Predictor:
    """This process's Predictor for `key`, built by `build()` the first time."""
    with _LOCK:
        LOOKUPS[key] += 1
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
        predictor = build()
        BUILDS[key] += 1
        _CACHE[key] = predictor
        while len(_CACHE) > MAX_CACHED:
            _, old = _CACHE.popitem(last=False)
            old.close()
        return predictor


def release(key: Optional[Hashable] = None) -> int:
    """Close and forget the cached Predictor of `key` (all of them when None)."""
    with _LOCK:
        keys = list(_CACHE) if key is None else [k for k in _CACHE if k == key]
        for k in keys:
            _CACHE.pop(k).close()
        return len(keys)


def stats(key: Hashable) -> dict:
    """This process's counts for `key`: builds, lookups, forward passes."""
    with _LOCK:
        found = _CACHE.get(key)
        return {"builds": BUILDS[key], "lookups": LOOKUPS[key],
                "forward_passes": found.forward_passes if found is not None else 0}
