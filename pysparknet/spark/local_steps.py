"""How a worker's round trains: tau solver steps, or fewer when time is up or the
driver has closed the round without it (straggler-tolerant rounds).

SparkNet's paper lets a worker train for tau iterations or for a fixed time.
With `round_seconds` a worker stops at whichever comes first; with
`min_workers` the driver may close a round before a late worker is done, and
the worker stops at its next iteration and its result is dropped. Both need
the solver stepped one iteration at a time (the check between them costs a
few microseconds); plain rounds train tau steps in one call.

PYSPARKNET_STRAGGLER="P:F" (set in the executors' environment, for example
spark.executorEnv.PYSPARKNET_STRAGGLER) makes partition P's worker F times
slower - it sleeps (F - 1) times each step's time after the step - so tests
and bench/bench_stragglers.py can measure rounds with one slow worker on
one machine.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Optional

STRAGGLER_ENV = "PYSPARKNET_STRAGGLER"


@dataclass
class Steps:
    outputs: dict  # the train outputs' means over the steps done
    iterations: int
    stopped: bool = False  # the driver closed the round first: the result is dropped


def slowdown(part: int) -> float:
    """How many times slower this partition's worker is made (1: not at all)."""
    spec = os.environ.get(STRAGGLER_ENV, "")
    if not spec:
        return 1.0
    try:
        slow_part, factor = spec.split(":")
        factor_value = float(factor)
    except ValueError:
        raise ValueError(f"{STRAGGLER_ENV}={spec!r}: expected PARTITION:FACTOR, e.g. "
                         "1:3") from None
    return factor_value if int(slow_part) == part else 1.0


def train_steps(net, tau: int, seconds: Optional[float] = None,
                stopped: Optional[Callable[[], bool]] = None, slow: float = 1.0) -> Steps:
    """Up to tau solver steps: all of them in one call unless a time limit, the
    driver's stop or a slowdown asks for one at a time (at least one is done)."""
    if seconds is None and stopped is None and slow == 1.0:
        return Steps(net.train(tau), tau)
    end = None if seconds is None else time.monotonic() + seconds
    sums: dict = {}
    done = 0
    while done < tau:
        tic = time.perf_counter()
        for name, value in net.train(1).items():
            sums[name] = sums.get(name, 0.0) + value
        done += 1
        if slow > 1.0:
            time.sleep((slow - 1.0) * (time.perf_counter() - tic))
        if stopped is not None and stopped():
            return Steps(_means(sums, done), done, stopped=True)
        if end is not None and time.monotonic() >= end:
            break
    return Steps(_means(sums, done), done)


def _means(sums: dict, done: int) -> dict:
    return {name: total / done for name, total in sums.items()}
