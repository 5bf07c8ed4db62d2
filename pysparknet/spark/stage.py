"""A stage: one Spark stage of K tasks, one per partition, stepped through rounds
by the driver over their links (link_driver_end.py).

The schedules (schedule_segments.py, schedule_jobs.py) differ only in how
many rounds a stage runs and whether it is a barrier stage; opening a stage,
carrying the data to workers that lost their solvers, and rerunning a stage
whose worker was lost are the same for both, and live here.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from functools import partial
from typing import Optional

from pyspark import InheritableThread  # carries the job group's properties

from ..errors import TransportError
from . import slots
from .failures import lost_executors, worker_failure
from .link_driver_end import DriverLinks
from .link_protocol import LinkBroken
from .ring_driver_end import RingRounds
from .sockets import Deadline
from .transport import LinkListener

_LOG = logging.getLogger("pysparknet")
JOIN_S = 60.0  # how long the driver waits for a stage's tasks to end after it


def _first_line(error: Exception) -> str:
    """The line of a Spark job's error that says why (Py4J puts a preamble first)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [line for line in lines if "failure" in line.lower() or "Reason" in line]
    return (reasons or lines or [type(error).__name__])[-1][:400]


class Stage:
    """One Spark stage of K tasks running rounds first..last-1 over their links."""

    def __init__(self, sc, listener: LinkListener, partitions: int, last: int, name: str,
                 description: str, barrier: bool):
        self.sc, self.listener, self.last, self.barrier = sc, listener, last, barrier
        self.group, self.description = name, description
        self.links = DriverLinks(secrets.randbits(63), partitions,
                                 ring=RingRounds if listener.ring is not None else None)
        self.error: Optional[Exception] = None  # the Spark job's, if it failed by itself
        self._cancelled = False  # after this, the job's error is our cancelling it
        self._thread: Optional[InheritableThread] = None

    def start(self, rdd, task, deadline_s: float) -> list:
        """Submit the stage (each task runs task(index, records, ticket=...)); wait for
        every worker's first word: the partitions whose worker has no solver and
        whose task carried no data (empty: all are ready)."""
        self.listener.expect(self.links.attach)
        ticket = self.listener.ticket(self.links.serial, deadline_s)
        stage_rdd = rdd.barrier() if self.barrier else rdd
        tasks = stage_rdd.mapPartitionsWithIndex(partial(task, ticket=ticket))
        self._thread = InheritableThread(target=self._run, args=(tasks,), daemon=True)
        self._thread.start()
        needs_data = self.links.ready(Deadline(deadline_s))
        if self.links.ring and not needs_data:
            self.links.send_peers()
        return needs_data

    def _run(self, tasks) -> None:
        self.sc.setJobGroup(self.group, self.description)
        try:
            tasks.collect()
        except Exception as error:  # noqa: BLE001 - the round loop reports it
            if not self._cancelled:
                self.error = error
        finally:
            self.links.abort("the stage's Spark job ended")  # wake any wait on a link

    def round(self, round_no: int, tau: int, weights, deadline_s: float, **gather):
        """(sum of the workers' weights, what divides it for the mean, their RoundStats
        in partition order); gather: DriverLinks.round's weighted, quorum, wire and
        next_tau."""
        return self.links.round(round_no, tau, weights, Deadline(deadline_s), **gather)

    def close(self) -> None:
        """The stage's last round is done: the tasks end, and so does the job."""
        self.links.close()
        self._join()

    def abort(self) -> Optional[Exception]:
        """Tear the stage down after a failure; the Spark job's own error, if any
        (a task that raised, rather than reported over its link)."""
        self.links.abort()
        self._join(cancel=True)
        return self.error

    def _join(self, cancel: bool = False) -> None:
        if cancel:
            self._cancelled = True
            self.sc.cancelJobGroup(self.group)
        if self._thread is not None:
            self._thread.join(JOIN_S)
            if self._thread.is_alive():
                self.sc.cancelJobGroup(self.group)
                _LOG.warning("SparkNet stage %s: its Spark job did not end within %.0f s "
                             "of its last round; cancelled", self.group, JOIN_S)
        self.listener.expect(None)


@dataclass(frozen=True)
class RoundPlan:
    """What the driver asks of one round."""

    number: int  # 0-based
    of: int  # the rounds the fit (or the batch) runs
    tau: int
    start_iter: int  # solver iterations done before it
    deadline_s: float  # for its results
    checkpoint_every: Optional[int] = None  # None: no checkpoints (stages run to `of`)
    next_tau: Optional[int] = None  # the next round's tau (None: this is the last)


class StagedRounds:
    """A fit's rounds in stages (the schedules' shared part): opens a stage when a
    round needs one, closes it after its last round, and reruns it from the round
    at hand when a worker is lost. Subclasses say how far a stage runs."""

    barrier = True
    kind = "stage"

    def __init__(self, sc, task, num_workers: int, slots_timeout: float, max_attempts: int,
                 weighted: bool = False, quorum: Optional[int] = None, wire: str = "float32"):
        """task: what each task runs (worker_task.run_stage_task, given here so that the
        driver's side does not import the executors')."""
        self.sc, self.task, self.num_workers = sc, task, num_workers
        self.slots_timeout, self.max_attempts = slots_timeout, max_attempts
        self.gather = {"weighted": weighted, "quorum": quorum, "wire": wire}
        self.stage: Optional[Stage] = None

    def last_round(self, r: int, rounds: int, checkpoint_every: Optional[int]) -> int:
        """One past the last round a stage opened at round r runs."""
        raise NotImplementedError

    def round(self, plan: RoundPlan, run, weights):
        """The planned round in the open stage, or a new one: (sum of the workers'
        weights, what divides it for the mean, their RoundStats)."""
        attempts, r = 0, plan.number
        while True:
            try:
                if self.stage is None:
                    self._open(plan, run)
                # the ring's next round in this stage starts as soon as this one's sum is in
                ahead = plan.next_tau if r + 1 < self.stage.last else None
                result = self.stage.round(r, plan.tau, weights, plan.deadline_s,
                                          next_tau=ahead, **self.gather)
            except LinkBroken as broken:
                attempts += 1
                self._rerun_or_raise(r, broken, attempts, run)
                continue
            except BaseException:
                self.abort()
                raise
            if r + 1 == self.stage.last:
                # Ended now, not when the next round starts: checkpoints and `until`
                # run with the cluster's slots free.
                self.close()
            return result

    def _rerun_or_raise(self, r: int, broken: LinkBroken, attempts: int, run) -> None:
        cause = self.abort()
        if cause is not None and worker_failure(cause) is not cause:
            raise worker_failure(cause) from broken  # a task raised: not a lost process
        lost = lost_executors(self.sc, cause)
        # Spark's loss of a host stops the stage's other tasks too: name the lost one first.
        what = f"Spark lost {lost} (and with it the stage: {broken})" if lost else str(broken)
        if attempts >= self.max_attempts:
            spark_says = "" if cause is None else f"; Spark: {_first_line(cause)}"
            raise TransportError(f"round {r + 1}: {what}; its stage was run {attempts} "
                                 f"time(s), spark.task.maxFailures allows "
                                 f"{self.max_attempts}{spark_says}") from broken
        _LOG.warning("SparkNet round %d: %s; rerunning its stage from round %d, its "
                     "solvers rebuilt from their data where lost", r + 1, what, r + 1)
        run.train.solvers_built = False  # the rerun's tasks carry their data

    def _open(self, plan: RoundPlan, run) -> None:
        train, r = run.train, plan.number
        last = self.last_round(r, plan.of, plan.checkpoint_every)
        for _ in range(2):  # a second pass only when a worker lost its solver meanwhile
            slots.wait_for_slots(self.sc, self.num_workers, self.slots_timeout)
            self.stage = self._new_stage(r, last, plan.of, run)
            rdd = train.data_free if train.solvers_built else train.with_data
            task = partial(self.task, spec_bc=run.spec, first_round=r,
                           start_iter=plan.start_iter, stream_bc=train.stream)
            needs_data = self.stage.start(rdd, task, plan.deadline_s)
            if not needs_data:
                train.solvers_built = True
                return
            self.close()
            train.solvers_built = False
        raise TransportError(f"round {r + 1}: partition(s) {needs_data} had no solver even "
                             "in a stage that carried their data")

    def _new_stage(self, r: int, last: int, rounds: int, run) -> Stage:
        span = f"{r + 1}-{last}" if last > r + 1 else f"{r + 1}"
        building = "" if run.train.solvers_built else " (building the solvers)"
        return Stage(self.sc, run.listener, self.num_workers, last,
                     f"sparknet-{run.run_id[:8]}-rounds-{span}",
                     f"SparkNet rounds {span}/{rounds}: K={self.num_workers} workers, "
                     f"{self.kind}{building}", self.barrier)

    def close(self) -> None:
        """End the open stage, if any, its workers keeping their solvers."""
        if self.stage is not None:
            stage, self.stage = self.stage, None
            stage.close()

    def abort(self) -> Optional[Exception]:
        if self.stage is None:
            return None
        stage, self.stage = self.stage, None
        return stage.abort()
