"""NetHandle: the one Python object that owns a native sn_net and frees it."""
from __future__ import annotations

from ctypes import POINTER, byref, c_char_p, c_double, c_float, c_int, c_int64

import numpy as np

from . import _native as N


class NetHandle:
    """Owns an sn_net (a solver with its nets, or a test-only net)."""

    def __init__(self, solver_bytes: bytes, net_bytes: bytes, device: int, seed: int):
        ptr = N.sn_net_p()
        N.check(N.sn_net_create(solver_bytes or None, len(solver_bytes), net_bytes,
                                len(net_bytes), device, seed, byref(ptr)))
        self._ptr = ptr
        self._feed_fn = None  # keeps the ctypes callback alive while installed
        self._shared = None  # the buffer the weights live in (share_weights), kept alive

    @property
    def ptr(self):
        if self._ptr is None:
            raise ValueError("this net has been closed")
        return self._ptr

    def close(self) -> None:
        if getattr(self, "_ptr", None) is not None:
            N.sn_net_destroy(self._ptr)
            self._ptr = None
        self._shared = None  # only after the net that pointed into it is gone

    def __del__(self):
        self.close()

    def has_solver(self) -> bool:
        flag = c_int()
        N.check(N.sn_net_has_solver(self.ptr, byref(flag)))
        return bool(flag.value)

    def iteration(self) -> int:
        it = c_int()
        N.check(N.sn_net_iter(self.ptr, byref(it)))
        return it.value

    def set_iteration(self, iteration: int) -> None:
        N.check(N.sn_net_set_iter(self.ptr, iteration))

    def set_threads(self, threads: int) -> None:
        N.check(N.sn_net_set_threads(self.ptr, threads))

    def output_names(self, phase: int) -> list[str]:
        count = c_int()
        N.check(N.sn_net_num_outputs(self.ptr, phase, byref(count)))
        names = []
        for i in range(count.value):
            name = c_char_p()
            N.check(N.sn_net_output_name(self.ptr, phase, i, byref(name)))
            names.append(name.value.decode())
        return names

    def blob_shape(self, phase: int, name: str) -> tuple[int, ...]:
        ndim = c_int()
        shape = (c_int64 * N.SN_MAX_DIMS)()
        N.check(N.sn_net_blob_shape(self.ptr, phase, name.encode(), byref(ndim), shape))
        return tuple(shape[: ndim.value])

    def blob_data(self, phase: int, name: str) -> np.ndarray:
        values = np.empty(self.blob_shape(phase, name), np.float32)
        N.check(N.sn_net_blob_data(self.ptr, phase, name.encode(),
                                   values.ctypes.data_as(POINTER(c_float)), values.size))
        return values

    def set_feed(self, callback) -> None:
        self._feed_fn = N.sn_feed_fn(callback)
        N.check(N.sn_net_set_feed(self.ptr, self._feed_fn, None))

    def train(self, iters: int, num_outputs: int) -> list[float]:
        means = (c_double * max(num_outputs, 1))()
        N.check(N.sn_net_train(self.ptr, iters, means, num_outputs))
        return list(means[:num_outputs])

    def forward_backward(self, iters: int) -> None:
        N.check(N.sn_net_forward_backward(self.ptr, iters))

    def test(self, iters: int, num_outputs: int) -> list[float]:
        means = (c_double * max(num_outputs, 1))()
        N.check(N.sn_net_test(self.ptr, iters, means, num_outputs))
        return list(means[:num_outputs])

    def params(self) -> list[tuple[str, int, tuple[int, ...]]]:
        """(layer name, blob index, shape) of every owned learnable blob."""
        count, total = c_int(), c_int64()
        N.check(N.sn_net_num_params(self.ptr, byref(count), byref(total)))
        out = []
        for i in range(count.value):
            layer, index, ndim = c_char_p(), c_int(), c_int()
            shape = (c_int64 * N.SN_MAX_DIMS)()
            N.check(N.sn_net_param_info(self.ptr, i, byref(layer), byref(index),
                                        byref(ndim), shape))
            out.append((layer.value.decode(), index.value, tuple(shape[: ndim.value])))
        return out

    def _floats(self, function, array: np.ndarray) -> None:
        """Call a native function that takes this net and a float32 buffer."""
        N.check(function(self.ptr, array.ctypes.data_as(POINTER(c_float)), array.size))

    def get_weights(self, out: np.ndarray) -> None:
        self._floats(N.sn_net_get_weights, out)

    def set_weights(self, flat: np.ndarray) -> None:
        self._floats(N.sn_net_set_weights, flat)

    def share_weights(self, flat: np.ndarray) -> None:
        self._floats(N.sn_net_share_weights, flat)
        self._shared = flat  # after the call: a refused one leaves the last buffer in use

    def sync_shared_weights(self) -> None:
        N.check(N.sn_net_sync_shared_weights(self.ptr))

    def history_size(self) -> int:
        count = c_int64()
        N.check(N.sn_net_history_size(self.ptr, byref(count)))
        return count.value

    def get_history(self, out: np.ndarray) -> None:
        self._floats(N.sn_net_get_history, out)

    def set_history(self, flat: np.ndarray) -> None:
        self._floats(N.sn_net_set_history, flat)

    def save_caffemodel(self, path: str) -> None:
        N.check(N.sn_net_save_caffemodel(self.ptr, path.encode()))

    def load_caffemodel(self, path: str) -> None:
        N.check(N.sn_net_load_caffemodel(self.ptr, path.encode()))

    def save_state(self, path: str, model_path: str) -> None:
        N.check(N.sn_net_save_state(self.ptr, path.encode(), model_path.encode()))

    def restore_state(self, path: str, model_path: str | None) -> None:
        N.check(N.sn_net_restore_state(self.ptr, path.encode(),
                                       model_path.encode() if model_path else None))
