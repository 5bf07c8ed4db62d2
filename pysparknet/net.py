"""Net: SparkNet's JNA Net, in Python, over the native Caffe shim.

    net = Net(net_params, solver_params, device="cpu")
    net.set_training_data((images, labels))   # or an iterable of (ndarray, label)
    net.train(100)                             # solver iterations
    net.test(10)                               # {"accuracy": ..., "loss": ...}
    weights = net.get_weights(); net.set_weights(weights)
"""
from __future__ import annotations

import math
import os
import re
import warnings
import weakref
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from . import _native
from ._handle import NetHandle
from .data.minibatches import Minibatches
from .errors import DataError, FeedError, NetArgumentError
from .feeds import PhaseFeed, phase_feed, with_feed_layers
from .files import atomic_path
from .prototxt import Source, parse_net, parse_solver
from .threads import cpu_threads
from .proto import caffe_pb2
from .weights import (BlobSpec, WeightCollection, caffemodel_shapes, layout_differences,
                      shape_mismatches)

TRAIN, TEST = _native.SN_PHASE_TRAIN, _native.SN_PHASE_TEST
_NEVER = 2**31 - 1  # a test_interval the solver never reaches: Python runs the tests


def parse_device(device: Union[str, int]) -> int:
    """"cpu" -> -1; "gpu", "gpu:N", "cuda:N" or N -> the CUDA device id."""
    if isinstance(device, int) and not isinstance(device, bool):
        return device
    match = re.fullmatch(r"\s*(cpu|gpu|cuda)(?::(\d+))?\s*", str(device).lower())
    if not match or (match.group(1) == "cpu" and match.group(2) not in (None, "0")):
        raise NetArgumentError(f"unknown device {device!r}: use 'cpu', 'gpu' or 'gpu:N'")
    if match.group(1) == "cpu":
        return -1
    return int(match.group(2) or 0)


def _solver_for_python_control(solver: Source,
                               seed: Optional[int]) -> caffe_pb2.SolverParameter:
    """The solver, with one test net, and testing and snapshots left to Python."""
    solver = parse_solver(solver)
    for field in ("net", "net_param", "train_net", "train_net_param", "test_net",
                  "test_net_param", "train_state"):
        solver.ClearField(field)
    del solver.test_iter[:]
    del solver.test_state[:]
    solver.test_iter.append(1)  # a test net for Net.test(); the solver never runs it
    solver.test_interval = _NEVER
    solver.test_initialization = False
    solver.snapshot = 0
    solver.snapshot_after_train = False
    if seed is not None:
        solver.random_seed = seed
    return solver


class _PhaseState:
    """The data stream of one phase and the minibatch its feed layers share."""

    def __init__(self, spec: PhaseFeed):
        self.spec = spec
        self.stream: Optional[Minibatches] = None
        self.current = None
        self.served: set[str] = set()


class Net:
    """A Caffe net with its solver (or a test-only net), fed from Python.

    net_params: a NetParameter, prototxt text or path, a NetParams, or a
    zoo.ZooModel, which brings its solver when solver_params is not given.
    threads: CPU threads for its passes (BLAS and OpenMP); None: OMP_NUM_THREADS or
    OPENBLAS_NUM_THREADS where set, else every core this process may use."""

    def __init__(self, net_params: Source, solver_params: Optional[Source] = None,
                 device: Union[str, int] = "cpu", seed: Optional[int] = None,
                 threads: Optional[int] = None):
        try:
            self.threads = cpu_threads(threads)
        except ValueError as error:
            raise NetArgumentError(str(error)) from None
        if solver_params is None:  # a zoo model brings its own solver
            solver_params = getattr(net_params, "solver", None)
        net_param = with_feed_layers(parse_net(net_params))
        self._phases = {TRAIN: _PhaseState(phase_feed(net_param, caffe_pb2.TRAIN)),
                        TEST: _PhaseState(phase_feed(net_param, caffe_pb2.TEST))}
        self.device = parse_device(device)
        solver_bytes, self._iter_size = b"", 1
        if solver_params is not None:
            solver = _solver_for_python_control(solver_params, seed)
            solver_bytes = solver.SerializeToString()
            self._iter_size = max(solver.iter_size, 1)  # minibatches per iteration
        self._handle = NetHandle(solver_bytes, net_param.SerializeToString(), self.device,
                                 -1 if seed is None else seed)
        self._handle.set_threads(self.threads)
        self.net_param = net_param
        self.has_solver = self._handle.has_solver()
        self._outputs = {phase: self._handle.output_names(phase)
                         for phase in (TRAIN, TEST) if phase == TEST or self.has_solver}
        self.layout = tuple(BlobSpec(*p) for p in self._handle.params())
        self._feed_error: Optional[BaseException] = None
        # The native side holds the callback; a weak reference keeps it from
        # keeping this Net (and its native memory) alive.
        net_ref = weakref.ref(self)

        def feed(user, phase, layer, batch):
            net = net_ref()
            return net._feed(user, phase, layer, batch) if net is not None else 1
        self._handle.set_feed(feed)

    # --- data ---------------------------------------------------------------
    def _phase_net(self, phase: int) -> int:
        # A test-only net answers for both phases.
        return phase if self.has_solver else TEST

    def input_shape(self, phase: int = TRAIN) -> tuple[int, ...]:
        """The shape of the data top, (N, C, H, W) or (N, D), in the given phase."""
        spec = self._phases[phase].spec
        if spec.data_top is None:
            raise NetArgumentError("this net has no Input layer to feed")
        return self._handle.blob_shape(self._phase_net(phase), spec.data_top)

    def blob(self, name: str, phase: int = TRAIN) -> np.ndarray:
        """A copy of blob `name` as the last pass of that phase's net left it."""
        return self._handle.blob_data(self._phase_net(phase), name)

    def batch_size(self, phase: int = TRAIN) -> int:
        return self.input_shape(phase)[0]

    def num_classes(self, phase: int = TRAIN) -> Optional[int]:
        """Classes the labels index into, read from the loss/accuracy layers."""
        found = []
        for bottom, axis, _ in self._phases[phase].spec.label_consumers:
            try:
                shape = self._handle.blob_shape(self._phase_net(phase), bottom)
            except NetArgumentError:
                continue  # that layer is not part of this phase's net
            found.append(shape[axis if axis >= 0 else len(shape) + axis])
        return min(found) if found else None

    def _record_shape(self, phase: int) -> tuple:
        shape = self.input_shape(phase)[1:]
        transform = self._phases[phase].spec.transform
        if transform is not None and transform.crop_size and len(shape) == 3:
            return (shape[0], None, None)  # records are cropped to size by Caffe
        return shape

    def _label_check(self, phase: int):
        num_classes = self.num_classes(phase)
        consumers = self._phases[phase].spec.label_consumers
        ignored = {c[2] for c in consumers if c[2] is not None}
        if num_classes is None:
            return None

        def check(labels: np.ndarray, first: int) -> None:
            usable = ~np.isin(labels, list(ignored)) if ignored else np.ones(len(labels), bool)
            bad = usable & ((labels < 0) | (labels >= num_classes) | (labels != np.floor(labels)))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(f"record {first + i} has label {labels[i]:g}; the net "
                                f"classifies into {num_classes} classes (0..{num_classes - 1})")
        return check

    def _set_data(self, phase: int, data) -> None:
        state = self._phases[phase]
        if state.spec.data_top is None:
            raise NetArgumentError(f"the {'TRAIN' if phase == TRAIN else 'TEST'} net has no "
                                   "Input layer to feed")
        if state.stream is not None:
            state.stream.close()
        state.stream = Minibatches(data, self.batch_size(phase), self._record_shape(phase),
                                   labeled=state.spec.label_top is not None,
                                   label_check=self._label_check(phase))
        state.current, state.served = None, set()

    def set_training_data(self, data: Union[tuple, Iterable]) -> None:
        """(images, labels) arrays, or an iterable of (ndarray, label) records."""
        if not self.has_solver:
            raise NetArgumentError("a test-only net (no solver_params) takes no training data")
        self._set_data(TRAIN, data)

    def skip_training_batches(self, iterations: int) -> None:
        """Move the training data on by what `iterations` solver iterations read
        (iter_size minibatches each), before training starts: a solver rebuilt
        mid-run reads on where its predecessor would have."""
        state = self._phases[TRAIN]
        if state.stream is None:
            raise DataError("no training data: call Net.set_training_data() first")
        state.stream.skip(int(iterations) * self._iter_size * self.batch_size(TRAIN))

    def set_validation_data(self, data: Union[tuple, Iterable]) -> None:
        self._set_data(TEST, data)

    def _feed(self, _user, phase: int, layer: bytes, batch) -> int:
        """Called by the native feed layer, once per forward pass of each feed layer."""
        try:
            state = self._phases[phase]
            name = layer.decode()
            if state.stream is None:
                what = "set_training_data" if phase == TRAIN else "set_validation_data"
                raise DataError(f"no {'training' if phase == TRAIN else 'validation'} data: "
                                f"call Net.{what}() first")
            if state.current is None or name in state.served:
                state.current, state.served = state.stream.next(), set()
            state.served.add(name)
            images, labels = state.current
            out = batch.contents
            for i, top in enumerate(state.spec.layer_tops[name]):
                array = images if top == state.spec.data_top else labels
                out.data[i] = array.ctypes.data
                out.dtype[i] = _native.SN_UINT8 if array.dtype == np.uint8 else _native.SN_FLOAT32
                out.ndim[i] = array.ndim
                for d, size in enumerate(array.shape):
                    out.shape[i][d] = size
            return 0
        except BaseException as error:  # noqa: BLE001 - re-raised by _run
            self._feed_error = error
            return 1

    def _run(self, call):
        """Run a native call that may feed; re-raise the feed's own exception."""
        self._feed_error = None
        try:
            return call()
        except FeedError:
            error, self._feed_error = self._feed_error, None
            if error is not None:
                raise error
            raise

    # --- train / test -------------------------------------------------------
    def train(self, num_steps: int) -> dict[str, float]:
        """Run `num_steps` solver iterations; the train outputs' means over them."""
        if not self.has_solver:
            raise NetArgumentError("this is a test-only net: give solver_params to train")
        if not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
            raise ValueError(f"num_steps must be an integer >= 0, got {num_steps!r}")
        outputs = self._outputs[TRAIN]
        means = self._run(lambda: self._handle.train(int(num_steps), len(outputs)))
        return dict(zip(outputs, means))

    def forward_backward(self, num_steps: int) -> None:
        """Forward and backward passes of the train net without a solver update:
        what `caffe time` measures. Gradients accumulate; weights do not change."""
        if not self.has_solver:
            raise NetArgumentError("this is a test-only net: give solver_params")
        if not isinstance(num_steps, (int, np.integer)) or num_steps < 0:
            raise ValueError(f"num_steps must be an integer >= 0, got {num_steps!r}")
        self._run(lambda: self._handle.forward_backward(int(num_steps)))

    def test(self, num_steps: Optional[int] = None) -> dict[str, float]:
        """Forward `num_steps` validation batches; each output's mean over them.

        With no num_steps, one pass over the validation data (its size must be known).
        """
        if num_steps is None:
            stream = self._phases[TEST].stream
            if stream is None or stream.num_records is None:
                raise ValueError("give num_steps, or validation data of known size")
            num_steps = max(1, stream.num_records // stream.batch_size)
        if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
            raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
        outputs = self._outputs[TEST]
        means = self._run(lambda: self._handle.test(int(num_steps), len(outputs)))
        scores = dict(zip(outputs, means))
        bad = [name for name, value in scores.items() if not math.isfinite(value)]
        if bad:
            # NaN scores also fool Caffe's Accuracy layer into reporting 1.0.
            warnings.warn(f"test outputs {bad} are not finite: the weights have diverged, "
                          f"and the other outputs ({scores}) mean nothing", RuntimeWarning,
                          stacklevel=2)
        return scores

    @property
    def iteration(self) -> int:
        """Solver iterations done so far (the learning-rate schedule follows it)."""
        return self._handle.iteration()

    @iteration.setter
    def iteration(self, value: int) -> None:
        if not self.has_solver:
            raise NetArgumentError("this is a test-only net: it has no iterations")
        self._handle.set_iteration(int(value))

    # --- weights ------------------------------------------------------------
    def get_weights(self, out: Optional[WeightCollection] = None) -> WeightCollection:
        """A copy of all learnable weights (into `out`'s buffer when given)."""
        if out is None:
            out = WeightCollection(self.layout,
                                   np.empty(sum(b.size for b in self.layout), np.float32))
        elif out.layout != self.layout:
            raise NetArgumentError("out does not fit this net: "
                                   + "; ".join(layout_differences(self.layout, out.layout)))
        self._handle.get_weights(out.flat)
        return out

    def set_weights(self, weights: Union[WeightCollection, dict]) -> None:
        if not isinstance(weights, WeightCollection):
            weights = WeightCollection.from_arrays(weights)
        problems = layout_differences(self.layout, weights.layout)
        if problems:
            raise NetArgumentError("the weights do not fit this net: " + "; ".join(problems))
        self._handle.set_weights(weights.flat)

    def share_weights(self, flat: np.ndarray) -> None:
        """The weights live in `flat` (float32, one per weight, in layout order) from
        now on, without a copy: Caffe's blobs point into it until the next call or
        close(), and the net keeps it alive. After writing new weights into it, call
        share_weights(flat) again (a GPU net then uploads them before its next step);
        after training, sync_shared_weights() before reading it (a GPU net copies them
        down; on the CPU they are there already). The executors' round buffers are
        shared this way: weights arrive in them and leave from them, never copied."""
        if not (isinstance(flat, np.ndarray) and flat.dtype == np.float32 and flat.ndim == 1
                and flat.flags.c_contiguous and flat.flags.writeable):
            raise NetArgumentError("share_weights takes a writeable, contiguous 1-d float32 "
                                   f"array, not {type(flat).__name__} "
                                   f"{getattr(flat, 'dtype', '')}")
        self._handle.share_weights(flat)

    def sync_shared_weights(self) -> None:
        """The newest weights into the buffer given to share_weights."""
        self._handle.sync_shared_weights()

    # --- the solver's history (momentum) -------------------------------------
    def history_size(self) -> int:
        """Floats in the solver's history: one per weight for SGD's momentum, more
        for solvers that keep several moments."""
        return self._handle.history_size()

    def get_history(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        """A copy of the solver's history as one flat float32 array (into `out`)."""
        if out is None:
            out = np.empty(self.history_size(), np.float32)
        self._handle.get_history(out)
        return out

    def set_history(self, flat: np.ndarray) -> None:
        """Replace the solver's history (e.g. zeros: forget the momentum)."""
        self._handle.set_history(np.ascontiguousarray(flat, dtype=np.float32))

    # --- files --------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the weights as a Caffe .caffemodel, atomically."""
        with atomic_path(path) as tmp:
            self._handle.save_caffemodel(tmp)

    def load(self, path: Union[str, os.PathLike]) -> None:
        """Copy weights from a .caffemodel (or .h5) by layer name, as `caffe train
        -weights` does: layers the file lacks keep their initialisation (fine-tuning);
        layers in both must have the same blob shapes, else every mismatch is listed."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no caffemodel at {path}")
        if path.suffix != ".h5":
            problems = shape_mismatches(self.layout, caffemodel_shapes(path))
            if problems:
                raise NetArgumentError(f"{path} does not fit this net: " + "; ".join(problems))
        self._handle.load_caffemodel(str(path))

    def save_state(self, model_path: Union[str, os.PathLike],
                   state_path: Union[str, os.PathLike]) -> None:
        """Write .caffemodel + .solverstate (Caffe's formats), each atomically."""
        self.save(model_path)
        with atomic_path(state_path) as tmp:
            self._handle.save_state(tmp, str(Path(model_path).resolve()))

    def restore_state(self, state_path: Union[str, os.PathLike],
                      model_path: Union[str, os.PathLike, None] = None) -> None:
        """Resume from a .solverstate (weights from model_path, else its learned_net)."""
        if not Path(state_path).is_file():
            raise FileNotFoundError(f"no solverstate at {state_path}")
        self._handle.restore_state(str(state_path), str(model_path) if model_path else None)

    def close(self) -> None:
        """Free the native solver and nets now rather than at garbage collection."""
        for state in self._phases.values():
            if state.stream is not None:
                state.stream.close()
        self._handle.close()

    def __enter__(self) -> "Net":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
