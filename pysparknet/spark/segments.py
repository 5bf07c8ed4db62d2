"""Segments: many SparkNet rounds in one barrier-mode Spark stage (the driver's side).

A per-round Spark job costs its scheduling (72-98 ms on local-cluster,
bench/bench_spark_job_latency.py) every round. A segment pays it once: K
barrier tasks (gang-scheduled, one per partition) each open a link to the
driver's exchange and train the rounds the driver sends over it until it
says the segment is over (segment_link.py). The Spark UI shows one job per
segment, named with its round range.
"""
from __future__ import annotations

import logging
import secrets
from functools import partial
from typing import Optional

from pyspark import InheritableThread  # carries the job group's properties

from ..errors import TransportError
from . import slots
from .failures import worker_failure
from .links import Links
from .segment_link import LinkBroken
from .transport import Deadline, WeightExchange
from .worker import train_segment

_LOG = logging.getLogger("pysparknet")
JOIN_S = 60.0  # how long the driver waits for a segment's tasks to end after it


def _first_line(error: Exception) -> str:
    """The line of a Spark job's error that says why (Py4J puts a preamble first)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [line for line in lines if "failure" in line.lower() or "Reason" in line]
    return (reasons or lines or [type(error).__name__])[-1][:400]


class Segment:
    """One barrier stage of K tasks running rounds first..last-1 over their links."""

    def __init__(self, sc, exchange: WeightExchange, partitions: int, first: int, last: int,
                 name: str, description: str):
        self.sc, self.exchange = sc, exchange
        self.first, self.last = first, last
        self.group, self.description = name, description
        self.links = Links(secrets.randbits(63), partitions)
        self.error: Optional[Exception] = None  # the Spark job's, if it failed by itself
        self._cancelled = False  # after this, the job's error is our cancelling it
        self._thread: Optional[InheritableThread] = None

    def start(self, rdd, job, deadline_s: float) -> list:
        """Submit the stage (each task runs job(index, records, ticket=...)); wait for
        every worker's first word: the partitions whose worker has no solver and
        whose task carried no data (empty: all are ready)."""
        self.exchange.open_segment(self.links)
        ticket = self.exchange.ticket(self.links.serial, deadline_s)
        tasks = rdd.barrier().mapPartitionsWithIndex(partial(job, ticket=ticket))
        self._thread = InheritableThread(target=self._run, args=(tasks,), daemon=True)
        self._thread.start()
        return self.links.ready(Deadline(deadline_s))

    def _run(self, tasks) -> None:
        self.sc.setJobGroup(self.group, self.description)
        try:
            tasks.collect()
        except Exception as error:  # noqa: BLE001 - the round loop reports it
            if not self._cancelled:
                self.error = error
        finally:
            self.links.abort("the segment's Spark job ended")  # wake any wait on a link

    def round(self, round_no: int, tau: int, weights, deadline_s: float, **gather):
        """(sum of the workers' weights, what divides it for the mean, their stats in
        partition order); gather: Links.round's weighted and quorum."""
        return self.links.round(round_no, tau, weights, Deadline(deadline_s), **gather)

    def close(self) -> None:
        """The segment's last round is done: the tasks end, and so does the job."""
        self.links.end()
        self._join()

    def abort(self) -> Optional[Exception]:
        """Tear the segment down after a failure; the Spark job's own error, if any
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
                _LOG.warning("SparkNet segment %s: its Spark job did not end within %.0f s "
                             "of its last round; cancelled", self.group, JOIN_S)
        self.exchange.close_segment()


class SegmentRounds:
    """A fit's rounds in segments: opens one when a round needs it, closes it after
    its last round, and reruns it from the round at hand when a worker is lost."""

    def __init__(self, sc, num_workers: int, slots_timeout: float, max_attempts: int,
                 weighted: bool = False, quorum: Optional[int] = None):
        self.sc, self.num_workers = sc, num_workers
        self.slots_timeout, self.max_attempts = slots_timeout, max_attempts
        self.gather = {"weighted": weighted, "quorum": quorum}
        self.segment: Optional[Segment] = None

    def round(self, r: int, last: int, rounds: int, tau: int, start_iter: int, run,
              weights, deadline_s: float):
        """Round r (0-based) in the open segment, or a new one of rounds r..last-1:
        (sum of the workers' weights, what divides it for the mean, their stats
        dicts in partition order)."""
        attempts = 0
        while True:
            try:
                if self.segment is None:
                    self._open(r, last, rounds, start_iter, run, deadline_s)
                result = self.segment.round(r, tau, weights, deadline_s, **self.gather)
            except LinkBroken as broken:
                attempts += 1
                self._rerun_or_raise(r, broken, attempts, run)
                continue
            except BaseException:
                self.abort()
                raise
            if r + 1 == self.segment.last:
                # Ended now, not when the next round starts: checkpoints and `until`
                # run with the cluster's slots free.
                self.finish()
            return result

    def _rerun_or_raise(self, r: int, broken: LinkBroken, attempts: int, run) -> None:
        cause = self.abort()
        if cause is not None and worker_failure(cause) is not cause:
            raise worker_failure(cause) from broken  # a task raised: not a lost process
        if attempts >= self.max_attempts:
            spark_says = "" if cause is None else f"; Spark: {_first_line(cause)}"
            raise TransportError(f"round {r + 1}: {broken}; the segment was run {attempts} "
                                 f"time(s), spark.task.maxFailures allows "
                                 f"{self.max_attempts}{spark_says}") from broken
        _LOG.warning("SparkNet round %d: %s; rerunning its segment from round %d, its "
                     "solvers rebuilt from their data where lost", r + 1, broken, r + 1)
        run.train.solvers_built = False  # the rerun's tasks carry their data

    def _open(self, r: int, last: int, rounds: int, start_iter: int, run,
              deadline_s: float) -> None:
        train = run.train
        for _ in range(2):  # a second pass only when a worker lost its solver meanwhile
            slots.wait_for_slots(self.sc, self.num_workers, self.slots_timeout)
            span = f"{r + 1}-{last}" if last > r + 1 else f"{r + 1}"
            self.segment = Segment(
                self.sc, run.exchange, self.num_workers, r, last,
                f"sparknet-{run.run_id[:8]}-rounds-{span}",
                f"SparkNet rounds {span}/{rounds}: K={self.num_workers} workers, one barrier "
                "stage" + ("" if train.solvers_built else " (building the solvers)"))
            rdd = train.data_free if train.solvers_built else train.with_data
            job = partial(train_segment, spec_bc=run.spec, first_round=r, start_iter=start_iter,
                          stream_bc=train.stream)
            needs_data = self.segment.start(rdd, job, deadline_s)
            if not needs_data:
                train.solvers_built = True
                return
            self.finish()
            train.solvers_built = False
        raise TransportError(f"round {r + 1}: partition(s) {needs_data} had no solver even "
                             "in a segment that carried their data")

    def finish(self) -> None:
        """End the open segment, if any, its workers keeping their solvers."""
        if self.segment is not None:
            segment, self.segment = self.segment, None
            segment.close()

    def abort(self) -> Optional[Exception]:
        if self.segment is None:
            return None
        segment, self.segment = self.segment, None
        return segment.abort()
