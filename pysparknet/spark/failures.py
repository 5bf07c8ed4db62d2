"""Errors that come back from the workers, as pysparknet's own."""
from __future__ import annotations

import re
from typing import Optional

from .. import errors

_RAISED = re.compile(r"pysparknet\.errors\.(\w+): (.*)")
_EXECUTOR_LOST = re.compile(r"ExecutorLostFailure \(executor (\S+) ")


def own_error(name: str, message: str) -> Optional[errors.SparkNetError]:
    """pysparknet's error of that class name with that message (None: not one of ours)."""
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, errors.SparkNetError):
        return kind(message)
    return None


def own_error_name(error: BaseException) -> str:
    """The nearest pysparknet error class an exception is (else its own class's name)."""
    return next((cls.__name__ for cls in type(error).__mro__
                 if cls.__module__ == errors.__name__), type(error).__name__)


def worker_failure(error: Exception) -> Exception:
    """Spark wraps a worker's exception in Java's; surface pysparknet's own message
    (the last one named: Python prints an exception's causes before it)."""
    for name, message in reversed(_RAISED.findall(str(error))):
        found = own_error(name, f"on a worker: {message}")
        if found is not None:
            return found
    return error


def lost_executors(sc, error: Optional[Exception]) -> str:
    """'executor 0 on 198.18.0.12' for each executor a Spark job's error says was
    lost (a barrier stage's message names no host; Spark's status store does),
    '' when it names none."""
    ids = list(dict.fromkeys(_EXECUTOR_LOST.findall(str(error or ""))))
    if not ids:
        return ""
    hosts = {}
    try:  # the status store keeps removed executors, with the host they ran on
        summaries = sc._jsc.sc().statusStore().executorList(False).iterator()
        while summaries.hasNext():
            summary = summaries.next()
            hosts[summary.id()] = summary.hostPort().rpartition(":")[0]
    except Exception:  # noqa: BLE001 - a name without its host is still the cause
        pass
    return ", ".join(f"executor {i} on {hosts[i]}" if i in hosts else f"executor {i}"
                     for i in ids)
