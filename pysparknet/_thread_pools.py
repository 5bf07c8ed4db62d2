"""One pool of busy threads on the cores, not two.

Caffe's CPU layers run their loops on OpenMP (patches 0013, 0014). An OpenBLAS built on
OpenMP shares that pool; its pthreads build keeps a pool of its own, and
OpenMP's threads, which by default spin a while after each loop, then take the
cores the BLAS's threads need (LeNet on 2 threads ran 2-3x slower than on one).
With that BLAS, OpenMP's idle threads sleep instead (OMP_WAIT_POLICY=PASSIVE),
unless the user chose a policy. It must be set before libgomp starts, which is
when libcaffe loads.
"""
from __future__ import annotations

import ctypes
import os

OPENBLAS_PTHREADS = 1  # openblas_get_parallel(): 0 sequential, 1 pthreads, 2 OpenMP


def settle_openmp_wait_policy(openblas: str = "libopenblas.so.0") -> None:
    """OMP_WAIT_POLICY=PASSIVE where the OpenBLAS libcaffe loads runs its own pthreads."""
    if "OMP_WAIT_POLICY" in os.environ:
        return
    try:
        parallel = ctypes.CDLL(openblas).openblas_get_parallel()
    except (OSError, AttributeError):  # another BLAS, or one bundled under another name
        return
    if parallel == OPENBLAS_PTHREADS:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
