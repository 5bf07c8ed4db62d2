"""Reading a job's results one at a time, as they are deserialized.

RDD.collect() unpickles every partition's result before returning; with K
model-sized weight vectors that is K copies on the driver at once. Spark's
collect already serves the results over a local socket in partition order,
so reading that stream lazily lets the caller fold each result in and drop it.
"""
from __future__ import annotations

from typing import Any, Iterator


def collect_stream(rdd) -> Iterator[Any]:
    """rdd.collect(), but yielded element by element in partition order."""
    try:
        from pyspark.util import _load_from_socket  # private: checked, with a fallback
        from pyspark.traceback_utils import SCCallSiteSync
    except ImportError:
        yield from rdd.collect()
        return
    with SCCallSiteSync(rdd.context):
        sock_info = rdd.ctx._jvm.PythonRDD.collectAndServe(rdd._jrdd.rdd())
    with _load_from_socket(sock_info, rdd._jrdd_deserializer) as stream:
        yield from stream
