"""The trainer's grouped options, and the checks that name a bad value.

SparkNetTrainer takes these groups (exchange=, stragglers=, faults=) or their
fields as flat keywords (tls=, round_seconds=, round_timeout=, ...), as
earlier versions did.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

SOLVER_STATES = ("local", "reset", "average")
SCHEDULES = ("segments", "jobs")


@dataclass(frozen=True)
class Exchange:
    """How the weights travel between the driver and the workers each round.

    Args:
        kind: 'driver' (the default, SparkNet's star: the driver sends the weights
            to the K workers and sums what comes back; 2K model copies cross its
            one link a round) or 'ring' (the workers sum among themselves in a
            ring, 2(K-1)/K of the model on every link whatever K; the driver gets
            weights to them in a stage's first round and one chunk of the sum
            from each after every round, while the next round trains).
        tls: TLS 1.3 on every link, pinned to a certificate the run issues in its
            tasks (the default). False sends weights and the run secret in clear:
            for networks where every host is trusted.
        dtype: what the ring's chunks travel in: 'float32' (the default: the
            mean exact to float32 rounding), or 'bfloat16' / 'float16' (half the
            bytes: each round's update, trained minus start, travels rounded to
            16 bits and is summed and applied in float32).
    """

    kind: str = "driver"
    tls: bool = True
    dtype: str = "float32"


@dataclass(frozen=True)
class Stragglers:
    """Rounds that do not wait for the slowest worker.

    Args:
        round_seconds: each worker trains tau iterations or this many seconds,
            whichever comes first; the mean weighs each worker by the iterations
            it did.
        min_workers: a round closes once this many of the K workers have reported;
            the others stop at their next iteration and their results are dropped.
    """

    round_seconds: Optional[float] = None
    min_workers: Optional[int] = None

    @property
    def active(self) -> bool:
        return self.round_seconds is not None or self.min_workers is not None


@dataclass(frozen=True)
class Faults:
    """How long the driver waits before it calls something lost.

    Args:
        round_timeout: seconds a round's results may take before the fit fails
            (default: 10x the slowest recent round, at least 300 s; an hour for
            the first, which builds the solvers).
        slots_timeout: how long fit() (and a stage's rerun) waits for executors
            that could still register to offer num_workers task slots at once
            (default 300 s, as YARN or Kubernetes executors take 30-120 s to
            start); a cluster whose settings can never offer them fails at once.
    """

    round_timeout: Optional[float] = None
    slots_timeout: float = 300.0


def merged(group, given, flat: dict):
    """The group (given, or its defaults) with the flat keywords that were passed;
    ValueError when one is passed both ways."""
    group_type = type(group)
    chosen = given if given is not None else group
    passed = {name: value for name, value in flat.items() if value is not None}
    if given is not None and passed:
        raise ValueError(f"pass {', '.join(passed)} either inside "
                         f"{group_type.__name__}(...) or as keywords, not both")
    known = {f.name for f in fields(group_type)}
    return replace(chosen, **{k: v for k, v in passed.items() if k in known})


def check_schedule(schedule: Optional[str], conf) -> str:
    """'segments' (the default) or 'jobs', refused where Spark cannot run it."""
    schedule = schedule or "segments"
    if schedule not in SCHEDULES:
        raise ValueError(f"rounds must be 'segments' (many rounds in one barrier stage) or "
                         f"'jobs' (one Spark job a round), got {schedule!r}")
    if schedule == "segments" and conf.get("spark.dynamicAllocation.enabled",
                                           "false").lower() == "true":
        raise ValueError("rounds='segments' runs barrier stages, which Spark does not run "
                         "with spark.dynamicAllocation.enabled: turn it off, or use "
                         "rounds='jobs'")
    return schedule


def check_sync(sync: Optional[str]) -> None:
    if sync in (None, "socket"):
        return
    if sync == "spark":
        raise ValueError("sync='spark' (weights by Spark broadcast and task results) was "
                         "removed: the weights travel over the run's TLS links in every "
                         "schedule; drop the argument")
    raise ValueError(f"sync must be 'socket', got {sync!r}")


EXCHANGES = ("driver", "ring")
EXCHANGE_DTYPES = ("float32", "bfloat16", "float16")


def check_exchange(exchange: Exchange, stragglers: Stragglers, outer_name: str) -> None:
    if exchange.kind not in EXCHANGES:
        raise ValueError(f"exchange must be one of {EXCHANGES}, got {exchange.kind!r}")
    if exchange.dtype not in EXCHANGE_DTYPES:
        raise ValueError(f"the exchange dtype must be one of {EXCHANGE_DTYPES}, got "
                         f"{exchange.dtype!r}")
    if exchange.kind != "ring":
        if exchange.dtype != "float32":
            raise ValueError(f"dtype={exchange.dtype!r} compresses the ring's chunks: use it "
                             "with kind='ring' (the driver's star sends float32)")
        return
    if exchange.dtype != "float32" and stragglers.round_seconds is not None:
        raise ValueError(f"dtype={exchange.dtype!r} sums the rounds' updates over K, "
                         "equally weighted: drop round_seconds, or use dtype='float32'")
    if stragglers.min_workers is not None:
        raise ValueError("exchange='ring' sums every worker's weights among the workers, "
                         "so a round cannot close without some of them: drop min_workers "
                         "(round_seconds works with the ring)")
    if outer_name != "plain":
        raise ValueError(f"exchange='ring' leaves each worker on the round's mean, which "
                         f"the outer optimizer {outer_name!r} replaces on the driver: use "
                         "outer='plain' with the ring, or exchange='driver'")


def check_stragglers(stragglers: Stragglers, num_workers: int) -> None:
    seconds, minimum = stragglers.round_seconds, stragglers.min_workers
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(
            seconds, (int, float)) or not seconds > 0):
        raise ValueError(f"round_seconds must be a number of seconds > 0, got {seconds!r}")
    if minimum is not None and (isinstance(minimum, bool) or not isinstance(
            minimum, int) or not 1 <= minimum <= num_workers):
        raise ValueError(f"min_workers must be a whole number from 1 to num_workers "
                         f"({num_workers}), got {minimum!r}")


def check_options(num_workers, on_unassigned_gpu: str, solver_state: str) -> None:
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers <= 0:
        raise ValueError(f"num_workers must be >= 1, got {num_workers!r}")
    if on_unassigned_gpu not in ("warn", "error"):
        raise ValueError(f"on_unassigned_gpu must be 'warn' or 'error', got "
                         f"{on_unassigned_gpu!r}")
    if solver_state not in SOLVER_STATES:
        raise ValueError(f"solver_state must be one of {SOLVER_STATES}, got {solver_state!r}")
