"""The NetParams DSL: SparkNet's Scala layer DSL, in Python, compiled to caffe_pb2.

    net = NetParams(
        RDDLayer("data", shape=[64, 1, 28, 28]), RDDLayer("label", shape=[64, 1]),
        ConvLayer("conv1", ["data"], kernel=(5, 5), num_filters=20),
        PoolLayer("pool1", ["conv1"], pool=Max, kernel=(2, 2), stride=(2, 2)),
        ...
        SoftmaxWithLoss("loss", ["ip2", "label"]))

Every layer's top is its name. NetParams checks the net as it compiles it -
unknown bottoms, duplicate tops, kernels larger than their input, mismatched
concat inputs - naming the layer at fault, and infers every blob's shape.
Learnable layers get LeNet's (and SparkNet's) defaults unless told otherwise:
xavier weights, constant-zero biases, bias learning rate x2.
"""
from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import Sequence

from .errors import SparkNetError
from .proto import caffe_pb2
from .prototxt import to_text

Max, Ave = "MAX", "AVE"
ReLU, Sigmoid, TanH = "ReLU", "Sigmoid", "TanH"
# Names as users write them (the constants' names, Caffe's enum names, any case).
_POOLS = ({"max": Max, "ave": Ave, "average": Ave}, "Max or Ave")
_ACTIVATIONS = ({"relu": ReLU, "sigmoid": Sigmoid, "tanh": TanH}, "ReLU, Sigmoid or TanH")


def _named(value, names: tuple, what: str, layer: "Layer") -> str:
    table, constants = names
    found = table.get(value.lower()) if isinstance(value, str) else None
    if found is None:
        raise layer._fail(f"{what} must be {constants} (the constants in "
                          f"pysparknet.netparams, or their names in any case), got {value!r}")
    return found

Shape = tuple[int, ...]


class NetDefinitionError(SparkNetError, ValueError):
    """A NetParams net that Caffe would refuse, caught before Caffe sees it."""


def _pair(value, what: str, layer: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise NetDefinitionError(f"layer {layer!r}: {what} must be an int or (h, w)")
    return int(value[0]), int(value[1])


def _filler(spec) -> caffe_pb2.FillerParameter:
    if isinstance(spec, caffe_pb2.FillerParameter):
        return spec
    if isinstance(spec, str):
        return caffe_pb2.FillerParameter(type=spec)
    return caffe_pb2.FillerParameter(**spec)


@dataclass
class Layer:
    name: str
    bottoms: Sequence[str] = ()
    _: KW_ONLY

    def compile(self, shapes: list[Shape]) -> tuple[caffe_pb2.LayerParameter, Shape]:
        raise NotImplementedError

    def _proto(self, type_: str) -> caffe_pb2.LayerParameter:
        return caffe_pb2.LayerParameter(name=self.name, type=type_, bottom=list(self.bottoms),
                                        top=[self.name])

    def _fail(self, message: str) -> NetDefinitionError:
        return NetDefinitionError(f"layer {self.name!r} ({type(self).__name__}): {message}")

    def _window(self, shapes: list[Shape]):
        """A windowed layer's (N, C, H, W) input and its kernel, stride and pad, checked."""
        shape = self._one_bottom(shapes)
        if len(shape) != 4:
            raise self._fail(f"needs a 4-d (N, C, H, W) bottom, got {shape}")
        kernel = _pair(self.kernel, "kernel", self.name)
        stride = _pair(self.stride, "stride", self.name)
        pad = _pair(self.pad, "pad", self.name)
        h, w = shape[2:]
        if kernel[0] > h + 2 * pad[0] or kernel[1] > w + 2 * pad[1]:
            raise self._fail(f"kernel {kernel[0]}x{kernel[1]} is larger than its input "
                             f"{h}x{w} (pad {pad[0]}x{pad[1]}) from {self.bottoms[0]!r}")
        return shape, kernel, stride, pad

    def _one_bottom(self, shapes: list[Shape]) -> Shape:
        if len(shapes) != 1:
            raise self._fail(f"takes one bottom, got {len(shapes)}")
        return shapes[0]


@dataclass
class _Learnable(Layer):
    weight_filler: object = "xavier"
    bias_filler: object = "constant"
    bias_term: bool = True

    def _learnable(self, proto, param_field) -> None:
        proto.param.add(lr_mult=1)
        if self.bias_term:
            proto.param.add(lr_mult=2)
        param = getattr(proto, param_field)
        param.weight_filler.CopyFrom(_filler(self.weight_filler))
        if self.bias_term:
            param.bias_filler.CopyFrom(_filler(self.bias_filler))
        else:
            param.bias_term = False


@dataclass
class RDDLayer(Layer):
    """The input fed from a Spark partition (a Caffe Input layer)."""

    shape: Sequence[int] = ()

    def compile(self, shapes):
        if shapes:
            raise self._fail("an input layer takes no bottoms")
        if not self.shape or any(int(d) < 1 for d in self.shape):
            raise self._fail(f"shape must be positive sizes, got {list(self.shape)}")
        proto = self._proto("Input")
        proto.input_param.shape.add().dim.extend(int(d) for d in self.shape)
        return proto, tuple(int(d) for d in self.shape)


@dataclass
class ConvLayer(_Learnable):
    kernel: object = (1, 1)
    num_filters: int = 1
    stride: object = (1, 1)
    pad: object = (0, 0)
    group: int = 1

    def compile(self, shapes):
        (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = self._window(shapes)
        if c % self.group or self.num_filters % self.group:
            raise self._fail(f"group {self.group} must divide channels {c} and "
                             f"num_filters {self.num_filters}")
        proto = self._proto("Convolution")
        conv = proto.convolution_param
        conv.num_output = self.num_filters
        conv.kernel_h, conv.kernel_w = kh, kw
        if (sh, sw) != (1, 1):
            conv.stride_h, conv.stride_w = sh, sw
        if (ph, pw) != (0, 0):
            conv.pad_h, conv.pad_w = ph, pw
        if self.group != 1:
            conv.group = self.group
        self._learnable(proto, "convolution_param")
        return proto, (n, self.num_filters, (h + 2 * ph - kh) // sh + 1,
                       (w + 2 * pw - kw) // sw + 1)


@dataclass
class PoolLayer(Layer):
    pool: str = Max
    kernel: object = (2, 2)
    stride: object = (1, 1)
    pad: object = (0, 0)

    def compile(self, shapes):
        (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = self._window(shapes)
        pool = _named(self.pool, _POOLS, "pool", self)
        proto = self._proto("Pooling")
        param = proto.pooling_param
        param.pool = getattr(caffe_pb2.PoolingParameter, pool)
        param.kernel_h, param.kernel_w = kh, kw
        param.stride_h, param.stride_w = sh, sw
        if (ph, pw) != (0, 0):
            param.pad_h, param.pad_w = ph, pw
        return proto, (n, c, _pooled(h, kh, sh, ph), _pooled(w, kw, sw, pw))


def _pooled(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's pooled size: ceil, then clip so the last window starts inside the input."""
    out = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@dataclass
class LinearLayer(_Learnable):
    """InnerProduct: a fully connected layer over all but the first axis."""

    num_outputs: int = 1

    def compile(self, shapes):
        shape = self._one_bottom(shapes)
        proto = self._proto("InnerProduct")
        proto.inner_product_param.num_output = self.num_outputs
        self._learnable(proto, "inner_product_param")
        return proto, (shape[0], self.num_outputs)


@dataclass
class ActivationLayer(Layer):
    activation: str = ReLU

    def compile(self, shapes):
        shape = self._one_bottom(shapes)
        return self._proto(_named(self.activation, _ACTIVATIONS, "activation", self)), shape


@dataclass
class DropoutLayer(Layer):
    ratio: float = 0.5

    def compile(self, shapes):
        proto = self._proto("Dropout")
        proto.dropout_param.dropout_ratio = self.ratio
        return proto, self._one_bottom(shapes)


@dataclass
class LRNLayer(Layer):
    local_size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75

    def compile(self, shapes):
        proto = self._proto("LRN")
        proto.lrn_param.local_size = self.local_size
        proto.lrn_param.alpha = self.alpha
        proto.lrn_param.beta = self.beta
        return proto, self._one_bottom(shapes)


@dataclass
class ConcatLayer(Layer):
    axis: int = 1

    def compile(self, shapes):
        if len(shapes) < 2:
            raise self._fail("concatenates two or more bottoms")
        first = shapes[0]
        for bottom, shape in zip(self.bottoms[1:], shapes[1:]):
            if len(shape) != len(first) or any(a != b for i, (a, b) in
                                               enumerate(zip(first, shape)) if i != self.axis):
                raise self._fail(f"bottom {bottom!r} has shape {shape}, which does not "
                                 f"concatenate with {first} along axis {self.axis}")
        proto = self._proto("Concat")
        if self.axis != 1:
            proto.concat_param.axis = self.axis
        out = list(first)
        out[self.axis] = sum(s[self.axis] for s in shapes)
        return proto, tuple(out)


@dataclass
class SoftmaxWithLoss(Layer):
    def compile(self, shapes):
        if len(shapes) != 2:
            raise self._fail("takes (scores, label) bottoms")
        scores, label = shapes
        if math.prod(label) != scores[0]:
            raise self._fail(f"label {self.bottoms[1]!r} of shape {label} does not hold one "
                             f"label per item of {self.bottoms[0]!r} {scores}")
        return self._proto("SoftmaxWithLoss"), ()


@dataclass
class AccuracyLayer(Layer):
    top_k: int = 1

    def compile(self, shapes):
        if len(shapes) != 2:
            raise self._fail("takes (scores, label) bottoms")
        proto = self._proto("Accuracy")
        if self.top_k != 1:
            proto.accuracy_param.top_k = self.top_k
        return proto, ()


class NetParams:
    """A net written as DSL layers, compiled and checked into a caffe_pb2.NetParameter."""

    def __init__(self, *layers: Layer, name: str = "sparknet"):
        self.layers = list(layers)
        self.proto = caffe_pb2.NetParameter(name=name)
        self.shapes: dict[str, Shape] = {}
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise NetDefinitionError(f"{layer!r} is not a NetParams layer")
            missing = [b for b in layer.bottoms if b not in self.shapes]
            if missing:
                raise NetDefinitionError(
                    f"layer {layer.name!r}: unknown bottom {missing[0]!r}; the layers before "
                    f"it make {sorted(self.shapes) or 'nothing'}")
            if layer.name in self.shapes:
                raise NetDefinitionError(f"layer {layer.name!r}: a top named {layer.name!r} "
                                         "already exists (layer names are top names)")
            proto, shape = layer.compile([self.shapes[b] for b in layer.bottoms])
            self.proto.layer.add().CopyFrom(proto)
            self.shapes[layer.name] = shape

    def to_prototxt(self) -> str:
        return to_text(self.proto)

    __str__ = to_prototxt

    def __repr__(self) -> str:
        return f"NetParams({', '.join(l.name for l in self.layers)})"
