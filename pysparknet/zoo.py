"""Caffe's own example and model-zoo nets, fed from Python.

The prototxts are read from the Caffe source tree the build kept (installed
with the wheel as pysparknet/_caffe/share/{examples,models}); nothing is
copied into this repository. Their data-source layers (Data, ImageData, ...)
become Input layers that Net feeds, keeping each layer's transform_param
(scale, mean_file/mean_value, crop_size, mirror) and its phase.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from . import _native
from .errors import NetArgumentError
from .proto import caffe_pb2
from .prototxt import parse_net, parse_solver

CAFFE_SHARE = _native.CAFFE_DIR / "share"
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData")
_DATA_PARAMS = ("data_param", "image_data_param", "hdf5_data_param", "window_data_param",
                "memory_data_param")
# Per-channel (B, G, R) ImageNet mean that Caffe's own GoogLeNet train_val uses.
IMAGENET_MEAN_BGR = (104.0, 117.0, 123.0)
# Per-channel CIFAR-10 training-set mean, in the channel order convert_cifar_data writes.
CIFAR10_MEAN = (125.3, 123.0, 113.9)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    net: str            # train_val prototxt, relative to the Caffe source tree
    solver: str         # its solver prototxt
    record_shape: tuple  # (C, H, W) of the data top, after any crop
    mean_fallback: Optional[tuple]  # per-channel mean when the net's mean_file is absent
    description: str


ZOO = {e.name: e for e in (
    ZooEntry("lenet", "examples/mnist/lenet_train_test.prototxt",
             "examples/mnist/lenet_solver.prototxt", (1, 28, 28), None,
             "LeNet for MNIST-sized digits (Caffe's examples/mnist)"),
    ZooEntry("cifar10_quick", "examples/cifar10/cifar10_quick_train_test.prototxt",
             "examples/cifar10/cifar10_quick_solver.prototxt", (3, 32, 32), CIFAR10_MEAN,
             "CIFAR-10 quick (Caffe's examples/cifar10)"),
    ZooEntry("cifar10_full", "examples/cifar10/cifar10_full_train_test.prototxt",
             "examples/cifar10/cifar10_full_solver.prototxt", (3, 32, 32), CIFAR10_MEAN,
             "CIFAR-10 full (Caffe's examples/cifar10)"),
    ZooEntry("caffenet", "models/bvlc_reference_caffenet/train_val.prototxt",
             "models/bvlc_reference_caffenet/solver.prototxt", (3, 227, 227),
             IMAGENET_MEAN_BGR, "BVLC reference CaffeNet (ImageNet)"),
    ZooEntry("alexnet", "models/bvlc_alexnet/train_val.prototxt",
             "models/bvlc_alexnet/solver.prototxt", (3, 227, 227), IMAGENET_MEAN_BGR,
             "BVLC AlexNet (ImageNet)"),
    ZooEntry("googlenet", "models/bvlc_googlenet/train_val.prototxt",
             "models/bvlc_googlenet/solver.prototxt", (3, 224, 224), IMAGENET_MEAN_BGR,
             "BVLC GoogLeNet (ImageNet), with its two auxiliary classifiers"),
)}


@dataclass
class ZooModel:
    """A zoo net ready for Net: the fed NetParameter and its SolverParameter."""

    name: str
    net: caffe_pb2.NetParameter
    solver: caffe_pb2.SolverParameter
    record_shape: tuple


def caffe_file(relative: str) -> Path:
    """A prototxt of Caffe's source tree, e.g. 'examples/mnist/lenet_solver.prototxt'."""
    path = CAFFE_SHARE / relative
    if not path.is_file():
        raise FileNotFoundError(f"{relative} is not among the Caffe prototxts of this build "
                                f"({CAFFE_SHARE})")
    return path


def _layer_batch_size(layer: caffe_pb2.LayerParameter) -> int:
    for field in _DATA_PARAMS:
        if layer.HasField(field) and getattr(layer, field).batch_size:
            return getattr(layer, field).batch_size
    raise NetArgumentError(f"data layer {layer.name!r} has no batch_size: give one")


def _data_layers(net: caffe_pb2.NetParameter):
    """(layer, its phase or None) for each data-source layer of `net`."""
    for layer in net.layer:
        if layer.type in DATA_LAYER_TYPES:
            yield layer, (layer.include[0].phase if layer.include
                          and layer.include[0].HasField("phase") else None)


def data_layers_to_inputs(net: caffe_pb2.NetParameter, record_shape: Sequence[int],
                          batch_sizes: Optional[dict] = None) -> caffe_pb2.NetParameter:
    """Replace data-source layers by Input layers of the same tops and transform_param.

    Each becomes Input with shapes (batch, *record_shape) for its first top and
    (batch,) for the label; batch is the layer's own batch_size unless
    batch_sizes maps its phase (caffe_pb2.TRAIN / TEST) to another.
    """
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    for layer, phase in list(_data_layers(out)):
        batch = (batch_sizes or {}).get(phase) or _layer_batch_size(layer)
        for field in _DATA_PARAMS:
            layer.ClearField(field)
        layer.type = "Input"
        del layer.input_param.shape[:]
        for i, _ in enumerate(layer.top):
            layer.input_param.shape.add().dim.extend([batch, *record_shape] if i == 0
                                                     else [batch])
    return out


def _resolve_means(net: caffe_pb2.NetParameter, mean_file: Optional[str],
                   fallback: Optional[tuple], name: str) -> None:
    """Point mean_file at a real file, or fall back to a per-channel mean."""
    for layer in net.layer:
        transform = layer.transform_param
        if not layer.HasField("transform_param") or not transform.mean_file:
            continue
        if mean_file is not None:
            transform.mean_file = str(mean_file)
        elif not Path(transform.mean_file).is_file():
            if fallback is None:
                raise NetArgumentError(f"{name}: layer {layer.name!r} needs its mean file "
                                       f"{transform.mean_file!r}: pass mean_file=")
            warnings.warn(f"{name}: mean file {transform.mean_file!r} is not here; using the "
                          f"per-channel mean {fallback} instead (pass mean_file= for yours)",
                          stacklevel=3)
            transform.ClearField("mean_file")
            transform.mean_value.extend(fallback)


def load(name_or_path: Union[str, Path], batch_size: Optional[int] = None,
         test_batch_size: Optional[int] = None, mean_file: Optional[str] = None,
         record_shape: Optional[Sequence[int]] = None,
         solver: Union[str, Path, caffe_pb2.SolverParameter, None] = None,
         feed: bool = True, sources: Optional[dict] = None) -> ZooModel:
    """A zoo net by name (see ZOO), or any train_val prototxt path with record_shape.

    feed=False keeps the data layers (for Caffe's own tools), means resolved;
    `sources` then maps a phase (caffe_pb2.TRAIN / TEST) to the DB its Data
    layer reads.
    """
    entry = ZOO.get(str(name_or_path))
    if entry is not None:
        net = parse_net(caffe_file(entry.net))
        solver_param = parse_solver(solver if solver is not None else caffe_file(entry.solver))
        record_shape = tuple(record_shape or entry.record_shape)
        fallback, name = entry.mean_fallback, entry.name
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise NetArgumentError(f"no zoo net named {str(name_or_path)!r} and no such file; "
                                   f"zoo nets: {', '.join(ZOO)}")
        if record_shape is None:
            raise NetArgumentError(f"{path}: give record_shape=(C, H, W) of its data top")
        net, name, fallback = parse_net(path), path.stem, None
        solver_param = parse_solver(solver) if solver is not None else \
            caffe_pb2.SolverParameter(base_lr=0.01, lr_policy="fixed", momentum=0.9)
    solver_param.ClearField("net")
    solver_param.solver_mode = caffe_pb2.SolverParameter.CPU  # Net's device decides
    _resolve_means(net, mean_file, fallback, name)
    batch_sizes = {caffe_pb2.TRAIN: batch_size, caffe_pb2.TEST: test_batch_size}
    if not feed:
        for layer, phase in _data_layers(net):
            if batch_sizes.get(phase):
                for field in _DATA_PARAMS:
                    if layer.HasField(field):
                        getattr(layer, field).batch_size = batch_sizes[phase]
            if sources and phase in sources:
                layer.data_param.source = str(sources[phase])
        return ZooModel(name, net, solver_param, record_shape)
    return ZooModel(name, data_layers_to_inputs(net, record_shape, batch_sizes), solver_param,
                    record_shape)


def lenet(batch_size: int = 64, test_batch_size: int = 100) -> caffe_pb2.NetParameter:
    """Caffe's examples/mnist/lenet_train_test.prototxt, fed from Python (scale 1/256)."""
    return load("lenet", batch_size, test_batch_size).net


def lenet_solver() -> caffe_pb2.SolverParameter:
    """Caffe's examples/mnist/lenet_solver.prototxt (lr 0.01, momentum 0.9, inv policy)."""
    return load("lenet").solver
