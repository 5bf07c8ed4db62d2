"""WeightCollection: a net's learnable weights, by layer, over one flat buffer.

Every array is a view into a single contiguous float32 vector (`flat`), in
Caffe's params() order. That vector is what crosses the native boundary in one
copy and what Spark ships between driver and executors.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from google.protobuf.message import DecodeError

from .errors import CaffeError
from .proto import caffe_pb2


@dataclass(frozen=True)
class BlobSpec:
    """Where one learnable blob sits: its layer, index within the layer, shape."""

    layer: str
    index: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


Layout = tuple[BlobSpec, ...]


def layout_differences(expected: Layout, got: Layout) -> list[str]:
    """Human-readable differences between two layouts (empty when they match)."""
    want = {(b.layer, b.index): b.shape for b in expected}
    have = {(b.layer, b.index): b.shape for b in got}
    problems = []
    for key, shape in want.items():
        if key not in have:
            problems.append(f"missing {key[0]}[{key[1]}] of shape {shape}")
        elif have[key] != shape:
            problems.append(f"{key[0]}[{key[1]}] has shape {have[key]}, expected {shape}")
    problems += [f"unexpected {k[0]}[{k[1]}] of shape {s}" for k, s in have.items()
                 if k not in want]
    if not problems and [(b.layer, b.index) for b in expected] != \
            [(b.layer, b.index) for b in got]:
        problems.append("same blobs in a different order")
    return problems


class WeightCollection(Mapping):
    """Ordered mapping layer name -> list of float32 arrays (views of `flat`)."""

    __slots__ = ("_layout", "_flat", "_layers")

    def __init__(self, layout: Sequence[BlobSpec], flat: np.ndarray):
        layout = tuple(layout)
        total = sum(b.size for b in layout)
        if not isinstance(flat, np.ndarray) or flat.dtype != np.float32 or flat.ndim != 1 \
                or not flat.flags.c_contiguous:
            raise TypeError("flat must be a 1-d C-contiguous float32 numpy array")
        if flat.size != total:
            raise ValueError(f"flat holds {flat.size} floats; the layout needs {total}")
        self._layout = layout
        self._flat = flat
        self._layers: dict[str, list[np.ndarray]] = {}
        offset = 0
        for blob in layout:
            view = flat[offset: offset + blob.size].reshape(blob.shape)
            self._layers.setdefault(blob.layer, []).append(view)
            offset += blob.size

    # --- construction -------------------------------------------------------
    @classmethod
    def from_flat(cls, layout: Sequence[BlobSpec], flat: np.ndarray) -> "WeightCollection":
        """Wrap `flat` without copying it."""
        return cls(layout, flat)

    @classmethod
    def zeros(cls, layout: Sequence[BlobSpec]) -> "WeightCollection":
        return cls(layout, np.zeros(sum(b.size for b in layout), dtype=np.float32))

    @classmethod
    def from_arrays(cls, layers: Mapping[str, Sequence[np.ndarray]]) -> "WeightCollection":
        """Copy a {layer: [arrays]} mapping into one flat buffer, in its order."""
        layout = tuple(BlobSpec(name, i, tuple(np.shape(a)))
                       for name, arrays in layers.items() for i, a in enumerate(arrays))
        flat = np.concatenate([np.asarray(a, dtype=np.float32).ravel()
                               for arrays in layers.values() for a in arrays]) \
            if layout else np.zeros(0, np.float32)
        return cls(layout, flat)

    @staticmethod
    def mean(collections: Sequence["WeightCollection"]) -> "WeightCollection":
        """The element-wise mean: what the driver does after each round."""
        collections = list(collections)
        if not collections:
            raise ValueError("mean of no WeightCollections")
        first = collections[0]
        total = first._flat.copy()
        for other in collections[1:]:
            first._check_compatible(other)
            total += other._flat
        total /= np.float32(len(collections))
        return WeightCollection(first._layout, total)

    # --- access -------------------------------------------------------------
    @property
    def flat(self) -> np.ndarray:
        """The one float32 buffer all arrays view (no copy)."""
        return self._flat

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def num_params(self) -> int:
        return int(self._flat.size)

    def __getitem__(self, layer: str) -> list[np.ndarray]:
        return self._layers[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def copy(self) -> "WeightCollection":
        return WeightCollection(self._layout, self._flat.copy())

    def __repr__(self) -> str:
        layers = ", ".join(f"{name}: {[tuple(a.shape) for a in arrays]}"
                           for name, arrays in self._layers.items())
        return f"WeightCollection({self.num_params} params; {layers})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, WeightCollection):
            return NotImplemented
        return self._layout == other._layout and np.array_equal(self._flat, other._flat)

    __hash__ = None

    def __reduce__(self):
        return (WeightCollection.from_flat, (self._layout, self._flat))

    # --- arithmetic ---------------------------------------------------------
    def _check_compatible(self, other: "WeightCollection") -> None:
        if not isinstance(other, WeightCollection):
            raise TypeError(f"expected a WeightCollection, got {type(other).__name__}")
        if other._layout != self._layout:
            raise ValueError("WeightCollections of different nets: "
                             + "; ".join(layout_differences(self._layout, other._layout)))

    def __add__(self, other: "WeightCollection") -> "WeightCollection":
        self._check_compatible(other)
        return WeightCollection(self._layout, self._flat + other._flat)

    def __sub__(self, other: "WeightCollection") -> "WeightCollection":
        self._check_compatible(other)
        return WeightCollection(self._layout, self._flat - other._flat)

    def __mul__(self, scalar: float) -> "WeightCollection":
        if not np.isscalar(scalar):
            return NotImplemented
        return WeightCollection(self._layout, self._flat * np.float32(scalar))

    __rmul__ = __mul__

    def __truediv__(self, scalar: float) -> "WeightCollection":
        if not np.isscalar(scalar):
            return NotImplemented
        return WeightCollection(self._layout, self._flat / np.float32(scalar))

    def __neg__(self) -> "WeightCollection":
        return WeightCollection(self._layout, -self._flat)


def caffemodel_shapes(path) -> dict[str, list[tuple[int, ...]]]:
    """Layer name -> shapes of its blobs, read from a .caffemodel with protobuf."""
    try:
        proto = caffe_pb2.NetParameter.FromString(Path(path).read_bytes())
    except DecodeError as e:
        raise CaffeError(f"{path} is not a valid .caffemodel (NetParameter): {e}") from None
    shapes = {}
    for layer in list(proto.layer) + list(proto.layers):  # V1 files use `layers`
        shapes[layer.name] = [
            tuple(b.shape.dim) if b.HasField("shape") else
            _legacy_shape(b.num, b.channels, b.height, b.width) for b in layer.blobs]
    return shapes


def _legacy_shape(*dims: int) -> tuple[int, ...]:
    dims = list(dims)
    while len(dims) > 1 and dims[0] == 1:  # V1 blobs pad to 4 axes with leading 1s
        dims.pop(0)
    return tuple(dims)


def shape_mismatches(layout: Layout, file_shapes: dict) -> list[str]:
    """Layers in both the net and the file whose blobs differ (what Caffe refuses)."""
    ours: dict[str, list[tuple[int, ...]]] = {}
    for blob in layout:
        ours.setdefault(blob.layer, []).append(blob.shape)
    problems = []
    for name, shapes in ours.items():
        theirs = file_shapes.get(name)
        if theirs is None or not theirs:
            continue
        if len(theirs) != len(shapes):
            problems.append(f"{name}: {len(theirs)} blobs in the file, {len(shapes)} in the net")
            continue
        for i, (want, got) in enumerate(zip(shapes, theirs)):
            if want != got and _legacy_shape(*want) != _legacy_shape(*got):
                problems.append(f"{name}[{i}]: file {got}, net {want}")
    return problems
