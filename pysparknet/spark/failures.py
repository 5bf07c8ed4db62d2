"""Errors that come back from the workers, as pysparknet's own."""
from __future__ import annotations

import re

from .. import errors

_RAISED = re.compile(r"pysparknet\.errors\.(\w+): (.*)")


def worker_failure(error: Exception) -> Exception:
    """Spark wraps a worker's exception in Java's; surface pysparknet's own message
    (the last one named: Python prints an exception's causes before it)."""
    for name, message in reversed(_RAISED.findall(str(error))):
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, errors.SparkNetError):
            return kind(f"on a worker: {message}")
    return error
