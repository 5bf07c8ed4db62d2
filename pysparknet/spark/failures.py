"""Errors that come back from the workers, as pysparknet's own."""
from __future__ import annotations


def worker_failure(error: Exception) -> Exception:
    """Spark wraps a worker's exception in Java's; surface pysparknet's own message."""
    text = str(error)
    for kind in ("DataError", "NetArgumentError", "CaffeError", "FeedError", "TransportError"):
        marker = f"pysparknet.errors.{kind}: "
        if marker in text:
            # the last one: Python prints an exception's causes before it
            message = text.rsplit(marker, 1)[1].splitlines()[0]
            from .. import errors
            return getattr(errors, kind)(f"on a worker: {message}")
    return error
