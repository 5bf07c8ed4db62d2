"""How many CPU threads a Net's passes use (its BLAS's and OpenMP's)."""
from __future__ import annotations

import os
from typing import Optional

# The settings a user may already have made for these libraries, in the order read.
THREAD_SETTINGS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_threads(requested: Optional[int] = None) -> int:
    """`requested`, else the first of OMP_NUM_THREADS / OPENBLAS_NUM_THREADS that is
    set, else the cores this process may run on."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"threads must be a whole number >= 1, not {requested!r}")
        return requested
    for name in THREAD_SETTINGS:
        value = os.environ.get(name, "").split(",")[0].strip()  # OMP allows "4,2"
        if value:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"{name}={os.environ[name]!r} is not a thread count >= 1")
            return int(value)
    return len(os.sched_getaffinity(0))
