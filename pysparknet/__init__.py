"""pysparknet: SparkNet in Python - Caffe nets trained data-parallel on Spark."""
import os as _os

from . import _native
from .build_info import caffe_tool, caffe_tools, build_info
from .errors import (CaffeError, CaffeIOError, ClusterError, DataError, FeedError,
                     NetArgumentError, PrototxtError, RoundTimeoutError, SparkNetError,
                     TransportError, WorkerError)
from .net import Net
from .weights import BlobSpec, WeightCollection

# Caffe logs every layer it builds at INFO; show warnings and errors unless asked.
_native.sn_set_log_level(int(_os.environ.get("PYSPARKNET_CAFFE_LOG_LEVEL", "1")))

__version__ = "0.1.0"
__all__ = ["Net", "WeightCollection", "BlobSpec", "caffe_tool", "caffe_tools", "build_info",
           "SparkNetError", "CaffeError", "CaffeIOError", "DataError", "FeedError",
           "NetArgumentError", "PrototxtError", "RoundTimeoutError", "TransportError",
           "ClusterError", "WorkerError"]
