"""Fine-tuning: start from pretrained weights, give a net a new classifier, freeze layers.

    model = zoo.load("caffenet")
    model = replace_classifier(model, num_classes=10)      # fc8 -> fc8_ft, 10 outputs
    model = freeze(model, ["conv1", "conv2", "conv3"])     # lr_mult 0
    net = Net(model)
    report = copy_weights(net, "bvlc_reference_caffenet.caffemodel")
    print(report)   # copied: conv1..fc7; new: fc8_ft; mismatched: none

copy_weights matches layers by name as `caffe train --weights` does: a layer the
file lacks keeps its initialisation (it is "new"); a layer in both must have the
same blob shapes, else (unless skip_mismatched) an error names the layer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
from google.protobuf.message import DecodeError

from .errors import CaffeError, NetArgumentError
from .feeds import CLASS_CONSUMERS, in_phase
from .proto import caffe_pb2
from .prototxt import Source, parse_net
from .weights import WeightCollection

# Blobs a layer of each type learns, when its prototxt gives no `param` entries.
_LEARNABLE = {"Convolution": 2, "Deconvolution": 2, "InnerProduct": 2, "Embed": 2,
              "Scale": 1, "Bias": 1, "PReLU": 1, "BatchNorm": 3}
_BIAS_PARAMS = {"Convolution": "convolution_param", "Deconvolution": "convolution_param",
                "InnerProduct": "inner_product_param", "Embed": "embed_param",
                "Scale": "scale_param"}


@dataclass
class CopyReport:
    """What copy_weights did, by layer name (the net's learnable layers only)."""

    copied: list[str] = field(default_factory=list)      # taken from the file
    new: list[str] = field(default_factory=list)         # not in the file: initialised
    mismatched: list[str] = field(default_factory=list)  # in both, other shapes: kept
    details: dict[str, str] = field(default_factory=dict)  # mismatched layer -> shapes

    def __str__(self) -> str:
        def names(layers):
            return ", ".join(layers) or "none"
        return (f"copied: {names(self.copied)}; new: {names(self.new)}; mismatched: "
                + (", ".join(f"{n} ({self.details[n]})" for n in self.mismatched) or "none"))


# --- weights ---------------------------------------------------------------------
def _squeezed(*dims: int) -> tuple[int, ...]:
    """A shape without leading axes of 1 (V1 blobs pad to 4 axes with them)."""
    dims = list(dims)
    while len(dims) > 1 and dims[0] == 1:
        dims.pop(0)
    return tuple(dims)


def _blob_array(blob: caffe_pb2.BlobProto) -> tuple[tuple[int, ...], np.ndarray]:
    shape = tuple(blob.shape.dim) if blob.HasField("shape") else \
        _squeezed(blob.num, blob.channels, blob.height, blob.width)
    values = blob.data if len(blob.data) else blob.double_data
    return shape, np.asarray(values, dtype=np.float32)


def read_caffemodel(path: Union[str, os.PathLike]) -> dict[str, list[np.ndarray]]:
    """A .caffemodel's blobs: layer name -> arrays (shapes as the file gives them)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no caffemodel at {path}")
    try:
        proto = caffe_pb2.NetParameter.FromString(path.read_bytes())
    except DecodeError as e:
        raise CaffeError(f"{path} is not a valid .caffemodel (NetParameter): {e}") from None
    layers = {}
    for layer in list(proto.layer) + list(proto.layers):  # V1 files use `layers`
        if len(layer.blobs):
            arrays = []
            for blob in layer.blobs:
                shape, values = _blob_array(blob)
                arrays.append(values.reshape(shape) if values.size == int(np.prod(shape))
                              else values)
            layers[layer.name] = arrays
    return layers


def _same_shape(want: tuple, got: tuple) -> bool:
    return want == got or _squeezed(*want) == _squeezed(*got)


def match_weights(target: WeightCollection, source: Mapping[str, Sequence[np.ndarray]],
                  skip_mismatched: bool = False, origin: str = "the weights"
                  ) -> tuple[WeightCollection, CopyReport]:
    """`target` with the layers of `source` copied in by name (a new collection), and
    the report; NetArgumentError naming every mismatched layer unless skip_mismatched."""
    out, report = target.copy(), CopyReport()
    for name, arrays in out.items():
        theirs = source.get(name)
        if theirs is None or len(theirs) == 0:
            report.new.append(name)
            continue
        shapes = [tuple(np.shape(a)) for a in theirs]
        ours = [a.shape for a in arrays]
        if len(shapes) != len(ours) or not all(map(_same_shape, ours, shapes)):
            report.mismatched.append(name)
            report.details[name] = f"{origin} {shapes}, the net {ours}"
            continue
        for mine, their in zip(arrays, theirs):
            mine[...] = np.asarray(their, np.float32).reshape(mine.shape)
        report.copied.append(name)
    if report.mismatched and not skip_mismatched:
        raise NetArgumentError(
            f"{origin} do not fit this net: " + "; ".join(
                f"layer {name!r}: {report.details[name]}" for name in report.mismatched)
            + " (rename the layer to train it from scratch, e.g. replace_classifier(), or "
            "pass skip_mismatched=True)")
    return out, report


def copy_weights(net, caffemodel, skip_mismatched: bool = False) -> CopyReport:
    """Copy a .caffemodel's weights (or a WeightCollection's, or {layer: arrays}) into
    `net` (a pysparknet Net) by layer name, as Caffe's --weights does; the report.

    A layer in both with other blob shapes is an error naming it, unless
    skip_mismatched (it then keeps its initialisation and is reported mismatched)."""
    if isinstance(caffemodel, Mapping):
        source, origin = caffemodel, "the given weights"
    else:
        source, origin = read_caffemodel(caffemodel), str(caffemodel)
    weights, report = match_weights(net.get_weights(), source, skip_mismatched, origin)
    net.set_weights(weights)
    return report


# --- the net's definition -----------------------------------------------------------
def _with_net(net_params, net: caffe_pb2.NetParameter):
    """What the caller gave, with its net replaced: a zoo model stays a zoo model."""
    if hasattr(net_params, "net") and hasattr(net_params, "solver") and \
            isinstance(net_params.net, caffe_pb2.NetParameter):
        import dataclasses
        return dataclasses.replace(net_params, net=net)
    return net


def classifier_layers(net: caffe_pb2.NetParameter) -> list[str]:
    """The layers whose top the net's losses and accuracies read as class scores
    (GoogLeNet: its three classifiers), in the net's order."""
    producers = {top: layer.name for layer in net.layer for top in layer.top}
    found = []
    for layer in net.layer:
        if layer.type in CLASS_CONSUMERS and layer.bottom:
            name = producers.get(layer.bottom[0])
            if name is not None and name not in found:
                found.append(name)
    order = [layer.name for layer in net.layer]
    return sorted(found, key=order.index)


def replace_classifier(net_params, num_classes: int, suffix: str = "_ft",
                       layers: Sequence[str] = ()):
    """The net with its classifier(s) for `num_classes` classes, renamed (name +
    suffix, their top too) so that copy_weights leaves them new, as Caffe's own
    fine-tuning examples do (fc8 -> fc8_flickr). layers: which ones (default: every
    layer whose output a loss or accuracy reads). A zoo model comes back a zoo model."""
    if int(num_classes) < 1:
        raise NetArgumentError(f"num_classes must be >= 1, got {num_classes}")
    net = parse_net(net_params)
    targets = list(layers) or classifier_layers(net)
    if not targets:
        raise NetArgumentError("the net has no classifier that a loss or accuracy layer "
                               "reads: name the layers to replace")
    by_name = {layer.name: layer for layer in net.layer}
    renamed = {}
    for name in targets:
        layer = by_name.get(name)
        if layer is None:
            raise NetArgumentError(f"no layer {name!r} in the net (it has "
                                   f"{[l.name for l in net.layer]})")
        if layer.type not in ("InnerProduct", "Convolution"):
            raise NetArgumentError(f"layer {name!r} is a {layer.type}, not an InnerProduct "
                                   "or Convolution classifier")
        param = layer.inner_product_param if layer.type == "InnerProduct" \
            else layer.convolution_param
        param.num_output = int(num_classes)
        layer.name = name + suffix
        for i, top in enumerate(layer.top):
            if top == name:
                layer.top[i] = renamed[top] = top + suffix
    for layer in net.layer:
        for i, bottom in enumerate(layer.bottom):
            if bottom in renamed:
                layer.bottom[i] = renamed[bottom]
    return _with_net(net_params, net)


def _blob_count(layer: caffe_pb2.LayerParameter) -> int:
    if layer.type not in _LEARNABLE:
        raise NetArgumentError(f"layer {layer.name!r} ({layer.type}) learns nothing that "
                               "freeze() knows of: give it `param` entries yourself")
    count = _LEARNABLE[layer.type]
    if layer.type in _BIAS_PARAMS:
        param = getattr(layer, _BIAS_PARAMS[layer.type])
        has_bias = param.bias_term if (param.HasField("bias_term")
                                       or layer.type != "Scale") else False
        count = 1 + int(has_bias)
    return count


def freeze(net_params, layer_names: Sequence[str]):
    """The net with the named layers frozen (lr_mult 0 and decay_mult 0 for every blob
    they learn): training leaves their weights as they are. Unknown names are an
    error listing the net's layers. A zoo model comes back a zoo model."""
    net = parse_net(net_params)
    if isinstance(layer_names, str):
        layer_names = [layer_names]
    by_name = {layer.name: layer for layer in net.layer}
    unknown = [name for name in layer_names if name not in by_name]
    if unknown:
        raise NetArgumentError(f"no layer(s) {unknown} in the net (it has "
                               f"{[layer.name for layer in net.layer]})")
    for name in layer_names:
        layer = by_name[name]
        if not layer.param:
            for _ in range(_blob_count(layer)):
                layer.param.add()
        for spec in layer.param:
            spec.lr_mult = 0
            spec.decay_mult = 0
    return _with_net(net_params, net)


def learnable_layers(net_params, phase: int = caffe_pb2.TRAIN) -> list[str]:
    """Names of the layers that learn something in `phase`, in the net's order (to
    pick layers to freeze, e.g. all but the last few)."""
    net = parse_net(net_params)
    return [layer.name for layer in net.layer
            if in_phase(layer, phase) and layer.type in _LEARNABLE]
