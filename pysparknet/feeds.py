"""Which tops of a net are fed from Python, and what their labels may be.

Caffe's standard `Input` layers become the shim's `SparkNetFeed` layers (same
input_param shapes, and their transform_param is honoured), so a plain Caffe
prototxt trains from Python data without naming any pysparknet layer type.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .errors import NetArgumentError
from .proto import caffe_pb2

FEED_TYPE = "SparkNetFeed"
INPUT_TYPES = ("Input", FEED_TYPE)
PHASES = {caffe_pb2.TRAIN: "TRAIN", caffe_pb2.TEST: "TEST"}
# Layers that read their second bottom as a class index, and where the class axis is.
CLASS_CONSUMERS = {
    "SoftmaxWithLoss": lambda l: (l.softmax_param.axis, l.loss_param),
    "Accuracy": lambda l: (l.accuracy_param.axis, l.accuracy_param),
    "MultinomialLogisticLoss": lambda l: (1, None),
    "InfogainLoss": lambda l: (l.infogain_loss_param.axis, None),
    "HingeLoss": lambda l: (1, None),
}


def with_feed_layers(net: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """A copy of `net` whose Input layers are SparkNetFeed layers."""
    fed = caffe_pb2.NetParameter()
    fed.CopyFrom(net)
    for layer in fed.layer:
        if layer.type == "Input":
            layer.type = FEED_TYPE
    return fed


def in_phase(layer: caffe_pb2.LayerParameter, phase: int) -> bool:
    """Caffe's include/exclude rules, by phase (levels and stages are not used here)."""
    if any(rule.HasField("phase") and rule.phase == phase for rule in layer.exclude):
        return False
    if layer.include:
        return any(not rule.HasField("phase") or rule.phase == phase for rule in layer.include)
    return True


@dataclass
class PhaseFeed:
    """The fed tops of one phase: a data top and optionally a label top."""

    phase: int
    layer_tops: dict[str, list[str]] = field(default_factory=dict)
    data_top: Optional[str] = None
    label_top: Optional[str] = None
    # (class-axis bottom blob, axis, ignore_label or None) for each label consumer
    label_consumers: list[tuple[str, int, Optional[int]]] = field(default_factory=list)
    transform: Optional[caffe_pb2.TransformationParameter] = None


def phase_feed(net: caffe_pb2.NetParameter, phase: int) -> PhaseFeed:
    feed = PhaseFeed(phase)
    tops, transforms = [], {}
    for layer in net.layer:
        if layer.type in INPUT_TYPES and in_phase(layer, phase):
            feed.layer_tops[layer.name] = list(layer.top)
            tops += list(layer.top)
            if layer.HasField("transform_param") and layer.top:
                transforms[layer.top[0]] = layer.transform_param  # top 0 is transformed
    if len(tops) > 2:
        raise NetArgumentError(
            f"the {PHASES[phase]} net has {len(tops)} input tops {tops}; pysparknet feeds "
            "one data top and one label top")
    if tops:
        labelled = [t for t in tops if t == "label"]
        feed.label_top = labelled[0] if labelled else (tops[1] if len(tops) == 2 else None)
        feed.data_top = next(t for t in tops if t != feed.label_top)
        feed.transform = transforms.get(feed.data_top)
    if feed.label_top:
        for layer in net.layer:
            if layer.type in CLASS_CONSUMERS and in_phase(layer, phase) \
                    and len(layer.bottom) >= 2 and layer.bottom[1] == feed.label_top:
                axis, param = CLASS_CONSUMERS[layer.type](layer)
                ignore = param.ignore_label if param is not None and \
                    param.HasField("ignore_label") else None
                feed.label_consumers.append((layer.bottom[0], axis, ignore))
    return feed
