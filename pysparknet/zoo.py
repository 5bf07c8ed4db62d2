"""Caffe's own example and model-zoo nets, read from the Caffe source the build kept.

The prototxts are installed with the wheel from the same Caffe source tree the
library was built from (pysparknet/_caffe/share/{examples,models}).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from . import _native
from .proto import caffe_pb2
from .prototxt import parse_net, parse_solver

CAFFE_SHARE = _native.CAFFE_DIR / "share"
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData", "MemoryData")


def caffe_file(relative: str) -> Path:
    """A prototxt of Caffe's source tree, e.g. 'examples/mnist/lenet_solver.prototxt'."""
    path = CAFFE_SHARE / relative
    if not path.is_file():
        raise FileNotFoundError(f"{relative} is not among the Caffe prototxts of this build "
                                f"({CAFFE_SHARE})")
    return path


def data_layers_to_inputs(net: caffe_pb2.NetParameter, record_shape: Sequence[int],
                          batch_sizes: Optional[dict] = None) -> caffe_pb2.NetParameter:
    """Replace data-source layers by Input layers of the same tops and transform_param.

    Each becomes Input with shapes (batch, *record_shape) and (batch,) for the
    label, batch from the layer's own batch_size unless batch_sizes maps its
    phase (caffe_pb2.TRAIN / TEST) to another.
    """
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    for layer in out.layer:
        if layer.type not in DATA_LAYER_TYPES:
            continue
        phase = layer.include[0].phase if layer.include and layer.include[0].HasField(
            "phase") else None
        batch = (batch_sizes or {}).get(phase) or _layer_batch_size(layer)
        for field in ("data_param", "image_data_param", "hdf5_data_param",
                      "window_data_param", "memory_data_param"):
            layer.ClearField(field)
        layer.type = "Input"
        del layer.input_param.shape[:]
        for i, _ in enumerate(layer.top):
            dims = [batch, *record_shape] if i == 0 else [batch]
            layer.input_param.shape.add().dim.extend(dims)
    return out


def _layer_batch_size(layer: caffe_pb2.LayerParameter) -> int:
    for field in ("data_param", "image_data_param", "hdf5_data_param",
                  "window_data_param", "memory_data_param"):
        if layer.HasField(field) and getattr(layer, field).batch_size:
            return getattr(layer, field).batch_size
    raise ValueError(f"layer {layer.name!r} has no batch_size")


def lenet(batch_size: int = 64, test_batch_size: int = 100) -> caffe_pb2.NetParameter:
    """Caffe's examples/mnist/lenet_train_test.prototxt, fed from Python (scale 1/256)."""
    net = parse_net(caffe_file("examples/mnist/lenet_train_test.prototxt"))
    return data_layers_to_inputs(net, (1, 28, 28),
                                 {caffe_pb2.TRAIN: batch_size, caffe_pb2.TEST: test_batch_size})


def lenet_solver() -> caffe_pb2.SolverParameter:
    """Caffe's examples/mnist/lenet_solver.prototxt (lr 0.01, momentum 0.9, inv policy)."""
    solver = parse_solver(caffe_file("examples/mnist/lenet_solver.prototxt"))
    solver.ClearField("net")
    solver.solver_mode = caffe_pb2.SolverParameter.CPU
    return solver
