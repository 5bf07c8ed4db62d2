"""ctypes declarations of native/sparknet_caffe.h, and nothing else.

Loads the shim shipped in the wheel (pysparknet/_caffe/lib), declares the
argument and result types of every function, and turns a failed status into
the matching Python exception.
"""
from __future__ import annotations

import ctypes
import os
import sys
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int64, c_size_t, c_void_p
from pathlib import Path
from typing import Optional

from ._cuda_libs import preload as preload_cuda_libraries
from ._thread_pools import settle_openmp_wait_policy
from .errors import CaffeError, CaffeIOError, FeedError, NetArgumentError

CAFFE_DIR = Path(__file__).resolve().parent / "_caffe"
LIBRARY = CAFFE_DIR / "lib" / "libsparknet_caffe.so"

SN_OK, SN_ERR_CAFFE, SN_ERR_ARGUMENT, SN_ERR_IO, SN_ERR_FEED, SN_ERR_INTERNAL = range(6)
SN_PHASE_TRAIN, SN_PHASE_TEST = 0, 1
SN_FLOAT32, SN_UINT8 = 0, 1
SN_MAX_TOPS, SN_MAX_DIMS = 8, 8

_ERRORS = {
    SN_ERR_CAFFE: CaffeError,
    SN_ERR_ARGUMENT: NetArgumentError,
    SN_ERR_IO: CaffeIOError,
    SN_ERR_FEED: FeedError,
    SN_ERR_INTERNAL: CaffeError,
}


class sn_batch(ctypes.Structure):
    _fields_ = [
        ("num_tops", c_int),
        ("data", c_void_p * SN_MAX_TOPS),
        ("dtype", c_int * SN_MAX_TOPS),
        ("ndim", c_int * SN_MAX_TOPS),
        ("shape", (c_int64 * SN_MAX_DIMS) * SN_MAX_TOPS),
    ]


sn_net_p = c_void_p
sn_feed_fn = ctypes.CFUNCTYPE(c_int, c_void_p, c_int, c_char_p, POINTER(sn_batch))


def _installed_elsewhere() -> Optional[Path]:
    """Another pysparknet on sys.path with its native part built (an installed one that
    this folder - the source tree, say - shadows), if any."""
    here = Path(__file__).resolve().parent
    for entry in sys.path:
        candidate = Path(entry or ".").resolve() / "pysparknet"
        if candidate != here and (candidate / LIBRARY.relative_to(here)).exists():
            return candidate
    return None


def _missing_library() -> ImportError:
    shadowed = _installed_elsewhere()
    if shadowed is not None:
        return ImportError(
            f"this pysparknet is {Path(__file__).parent} (the source tree, imported because "
            f"Python looks in the current folder first), which has no native part; the "
            f"installed one at {shadowed} has it. Run from another folder (or `python -P`, "
            "which leaves the current folder off sys.path)")
    return ImportError(f"{LIBRARY} is missing: pysparknet's native part was not built "
                       "(install with `pip install .` from the source tree)")


def _load() -> ctypes.CDLL:
    if not LIBRARY.exists():
        raise _missing_library()
    not_in_wheels = preload_cuda_libraries(CAFFE_DIR)
    settle_openmp_wait_policy()
    try:
        # RTLD_GLOBAL: Caffe's layer registry must be one object for libcaffe and the shim.
        return ctypes.CDLL(str(LIBRARY), mode=os.RTLD_NOW | ctypes.RTLD_GLOBAL)
    except OSError as error:
        if not not_in_wheels:
            raise
        raise ImportError(f"{error}: this is a CUDA build of pysparknet, and no nvidia-* "
                          f"wheel on sys.path provides {', '.join(not_in_wheels)}; "
                          "install them with pip install 'pysparknet[cuda]'") from error


lib = _load()


def _declare(name: str, argtypes: list, restype=c_int):
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = restype
    return fn


sn_last_error = _declare("sn_last_error", [], c_char_p)
sn_version = _declare("sn_version", [], c_char_p)
sn_has_cuda = _declare("sn_has_cuda", [], c_int)
sn_gpu_count = _declare("sn_gpu_count", [POINTER(c_int)])
sn_set_log_level = _declare("sn_set_log_level", [c_int], None)
sn_decode_image = _declare("sn_decode_image", [c_char_p, c_size_t, c_int, c_int, c_int, c_void_p,
                                               c_size_t, POINTER(c_int64)])
sn_net_create = _declare("sn_net_create", [c_void_p, c_size_t, c_void_p, c_size_t, c_int,
                                           c_int64, POINTER(sn_net_p)])
sn_net_destroy = _declare("sn_net_destroy", [sn_net_p], None)
sn_net_set_feed = _declare("sn_net_set_feed", [sn_net_p, sn_feed_fn, c_void_p])
sn_net_has_solver = _declare("sn_net_has_solver", [sn_net_p, POINTER(c_int)])
sn_net_iter = _declare("sn_net_iter", [sn_net_p, POINTER(c_int)])
sn_net_set_iter = _declare("sn_net_set_iter", [sn_net_p, c_int])
sn_net_set_threads = _declare("sn_net_set_threads", [sn_net_p, c_int])
sn_net_num_outputs = _declare("sn_net_num_outputs", [sn_net_p, c_int, POINTER(c_int)])
sn_net_output_name = _declare("sn_net_output_name", [sn_net_p, c_int, c_int, POINTER(c_char_p)])
sn_net_blob_shape = _declare("sn_net_blob_shape", [sn_net_p, c_int, c_char_p, POINTER(c_int),
                                                   POINTER(c_int64)])
sn_net_blob_data = _declare("sn_net_blob_data", [sn_net_p, c_int, c_char_p, POINTER(c_float),
                                                 c_int64])
sn_net_train = _declare("sn_net_train", [sn_net_p, c_int, POINTER(c_double), c_int])
sn_net_forward_backward = _declare("sn_net_forward_backward", [sn_net_p, c_int])
sn_net_test = _declare("sn_net_test", [sn_net_p, c_int, POINTER(c_double), c_int])
sn_net_num_params = _declare("sn_net_num_params", [sn_net_p, POINTER(c_int), POINTER(c_int64)])
sn_net_param_info = _declare("sn_net_param_info", [sn_net_p, c_int, POINTER(c_char_p),
                                                   POINTER(c_int), POINTER(c_int),
                                                   POINTER(c_int64)])
sn_net_get_weights = _declare("sn_net_get_weights", [sn_net_p, POINTER(c_float), c_int64])
sn_net_history_size = _declare("sn_net_history_size", [sn_net_p, POINTER(c_int64)])
sn_net_get_history = _declare("sn_net_get_history", [sn_net_p, POINTER(c_float), c_int64])
sn_net_set_history = _declare("sn_net_set_history", [sn_net_p, POINTER(c_float), c_int64])
sn_net_set_weights = _declare("sn_net_set_weights", [sn_net_p, POINTER(c_float), c_int64])
sn_net_share_weights = _declare("sn_net_share_weights", [sn_net_p, POINTER(c_float), c_int64])
sn_net_sync_shared_weights = _declare("sn_net_sync_shared_weights", [sn_net_p])
sn_net_save_caffemodel = _declare("sn_net_save_caffemodel", [sn_net_p, c_char_p])
sn_net_load_caffemodel = _declare("sn_net_load_caffemodel", [sn_net_p, c_char_p])
sn_net_save_state = _declare("sn_net_save_state", [sn_net_p, c_char_p, c_char_p])
sn_net_restore_state = _declare("sn_net_restore_state", [sn_net_p, c_char_p, c_char_p])


def check(status: int) -> None:
    """Raise the exception that a failed status stands for."""
    if status != SN_OK:
        message = (sn_last_error() or b"").decode("utf-8", "replace")
        raise _ERRORS.get(status, CaffeError)(message)
