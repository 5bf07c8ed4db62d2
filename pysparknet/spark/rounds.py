"""A SparkNet round, as the driver runs it: one Spark job whose K tasks each set
the round's weights on their persistent solver, train tau iterations and send
their weights back; the driver takes the mean and its outer step.

The weights travel over the driver's WeightExchange (transport.py, the
default) or by Spark broadcast and task results (sync="spark"). Rounds after a
fit's first run data-free, on the solvers the workers kept; a task whose
worker has none asks for its data and its partition reruns with it.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Optional

import numpy as np

from ..errors import RoundTimeoutError, SparkNetError
from ..outer import OuterOptimizer
from ..weights import WeightCollection
from .failures import worker_failure
from .results import collect_stream
from .slots import max_task_attempts
from .socket_round import Gathering, Reruns
from .tau import TauSchedule
from .transport import WeightExchange
from .segments import SegmentRounds
from .worker import RoundStats, train_round


FIRST_ROUND_TIMEOUT_S = 3600.0  # no round times known yet: solvers build, data caches
ROUND_TIMEOUT_FLOOR_S = 300.0
ROUND_TIMEOUT_FACTOR = 10.0  # x the slowest of the last rounds


class TrainingDivergedError(SparkNetError, FloatingPointError):
    """A round produced a non-finite loss; the last good weights were kept."""


def _loss(outputs: dict) -> float:
    """A worker's training loss: its output 'loss', or for nets with several (GoogLeNet's
    loss1/loss1, loss2/loss2, loss3/loss3) their sum, unweighted."""
    if "loss" in outputs:
        return outputs["loss"]
    losses = [value for name, value in outputs.items() if "loss" in name]
    return float(sum(losses or outputs.values()))


@dataclass
class TrainingSet:
    """The training partitions as the rounds use them."""

    with_data: object  # an RDD whose tasks carry their data (or a stream's index)
    data_free: object  # the same partitions, placed alike, carrying nothing
    count: int  # records
    stream: object = None  # the broadcast StreamSource, when streamed
    solvers_built: bool = False  # after the first round: rounds may run data-free
    slices: list = field(default_factory=list)  # broadcast array slices behind with_data

    def unpersist(self) -> None:
        self.with_data.unpersist()
        self.data_free.unpersist()
        for broadcast in self.slices + ([self.stream] if self.stream is not None else []):
            broadcast.unpersist()


@dataclass
class Run:
    """What one fit holds open: its id (keys the workers' solvers), the broadcast
    net definition, the weight exchange, the training partitions."""

    run_id: str
    spec: object
    exchange: Optional[WeightExchange]
    train: TrainingSet


class RoundRunner:
    """Runs rounds for one trainer's settings: each its own Spark job (mode 'jobs'),
    or many in one barrier stage (mode 'segments', over the weight exchange)."""

    def __init__(self, sc, num_workers: int, tau: TauSchedule, batch_size: int,
                 outer: OuterOptimizer, round_timeout: Optional[float], mode: str = "jobs",
                 slots_timeout: float = 15.0, timed: bool = False,
                 min_workers: Optional[int] = None):
        """timed: workers may stop short of tau (round_seconds), so their results are
        weighted by the iterations each did; min_workers: a round closes with that
        many results (segments only)."""
        self.sc, self.num_workers, self.tau = sc, num_workers, tau
        self.batch_size, self.outer, self.round_timeout = batch_size, outer, round_timeout
        self.mode, self.stragglers = mode, timed or (min_workers or num_workers) < num_workers
        self.segments = SegmentRounds(sc, num_workers, slots_timeout, max_task_attempts(sc),
                                      weighted=timed, quorum=min_workers)
        self.warned_skips = False
        self.history: Optional[np.ndarray] = None  # the averaged solver history, if averaged

    def run(self, r: int, rounds: int, run: Run, weights: WeightCollection, loop):
        """Round r (0-based) of `rounds`: (the driver's new weights, the round's record).
        loop: the fit's FitLoop (its history, clock and checkpoint rounds)."""
        tau = self.tau(r)
        tic = time.perf_counter()
        sent = self.outer.to_workers(weights.flat)
        # solver_state='average': the solvers' history travels after the weights
        shipped = sent if self.history is None else np.concatenate([sent, self.history])
        if self.mode == "segments":
            total, divisor, results = self._sync_by_segment(r, rounds, run, shipped, loop)
        else:
            total, results = self._sync_by_job(r, rounds, run, shipped, loop.history)
            divisor = self.num_workers
        losses = [_loss(s.outputs) for s in results if s.outputs is not None and not s.dropped]
        if not all(math.isfinite(loss) for loss in losses):
            raise TrainingDivergedError(f"round {r + 1}: a worker's loss is {losses}; the "
                                        f"weights of round {r} are kept")
        total /= np.float32(divisor)
        if self.history is not None:
            self.history = total[sent.size:]
        record = self._record(r, tau, self.tau.iterations_before(r), losses, results,
                              time.perf_counter() - tic, loop.started)
        if run.train.stream is not None:  # streamed sources meet bad records as they train
            self._note_skips(r, record, sum(s.skipped for s in results))
        stepped = self.outer.step(weights.flat, sent, total[:sent.size])
        return WeightCollection(weights.layout, stepped), record

    def finish(self) -> None:
        """After a fit's last round (or its end by `until` or an error): end the open
        segment, if any; the workers keep their solvers."""
        self.segments.finish()

    def _sync_by_job(self, r: int, rounds: int, run: Run, shipped: np.ndarray, history):
        """Round r as one Spark job: its weights over the exchange, or by Spark."""
        tau = self.tau(r)
        self.sc.setJobGroup(f"sparknet-{run.run_id[:8]}-round-{r + 1}",
                            f"SparkNet round {r + 1}/{rounds}: K={self.num_workers} workers "
                            f"x tau={tau} iterations")
        job = partial(train_round, spec_bc=run.spec, tau=tau, round_no=r,
                      start_iter=self.tau.iterations_before(r), stream_bc=run.train.stream)
        if run.exchange is not None:
            return self._sync_by_socket(r, run, job, shipped, history)
        return self._sync_by_spark(run.train.with_data, job, shipped)

    def _sync_by_segment(self, r: int, rounds: int, run: Run, shipped: np.ndarray, loop):
        """Round r in the open segment, or in a new one that runs to the next
        checkpoint (or the fit's end)."""
        last = rounds
        if loop.checkpoint_dir is not None:
            last = min(rounds, (r // loop.checkpoint_every + 1) * loop.checkpoint_every)
        total, divisor, metas = self.segments.round(r, last, rounds, self.tau(r),
                                                    self.tau.iterations_before(r), run,
                                                    shipped, self._round_deadline(loop.history))
        return total, divisor, [RoundStats(part, **meta) for part, meta in enumerate(metas)]

    def _record(self, r, tau, start_iter, losses, results, wall, started) -> dict:
        compute = max(s.compute_s for s in results)
        used = [s for s in results if not s.dropped]
        trained = sum(tau if s.iterations is None else s.iterations for s in used)
        record = {"round": r + 1, "iterations": start_iter + tau, "tau": tau,
                  "loss": float(np.mean(losses)),
                  "images_per_s": trained * self.batch_size / wall,
                  "compute_s": compute, "sync_s": max(wall - compute, 0.0), "round_s": wall,
                  "rebuilt_solvers": sum(s.rebuilt for s in results),
                  "elapsed_s": time.perf_counter() - started}
        if self.stragglers:  # who did how much, and whose result the round went without
            record["worker_iterations"] = [s.iterations for s in results]
            record["dropped"] = [s.index for s in results if s.dropped]
        return record

    def _note_skips(self, r: int, record: dict, skipped: int) -> None:
        record["skipped_records"] = skipped
        if skipped and not self.warned_skips:
            warnings.warn(f"round {r + 1}: the workers skipped {skipped} bad record(s) so "
                          "far (on_bad_record='skip')", stacklevel=4)
            self.warned_skips = True

    def _round_deadline(self, history: list) -> float:
        """How long a round's results may take: the user's, or from recent rounds."""
        if self.round_timeout is not None:
            return float(self.round_timeout)
        recent = [h["round_s"] for h in history[-5:] if "round_s" in h]
        if not recent:
            return FIRST_ROUND_TIMEOUT_S
        return max(ROUND_TIMEOUT_FLOOR_S, ROUND_TIMEOUT_FACTOR * max(recent))

    def _sync_by_socket(self, r, run: Run, job, flat: np.ndarray, history):
        """Weights over the WeightExchange; Spark runs the tasks and returns their stats.

        Rounds after a fit's first run data-free, on the solvers the workers kept; a
        task whose worker has none asks the exchange for its data, and its partition
        reruns with it in a job of its own while the round goes on.
        """
        exchange, train = run.exchange, run.train
        deadline_s = self._round_deadline(history)
        job = partial(job, exchange=exchange.ticket(r, deadline_s))
        with_data = train.with_data.mapPartitionsWithIndex(job)
        reruns = Reruns(self.sc, r, with_data, exchange)
        gathering = Gathering(self.sc, exchange, self.num_workers, flat.size,
                               deadline_s)
        exchange.start_round(r, flat, self.num_workers, on_needs_data=reruns.start)
        gathering.start()
        try:
            tasks = with_data if not train.solvers_built else \
                train.data_free.mapPartitionsWithIndex(job)
            stats = tasks.collect()
        except Exception as error:  # noqa: BLE001 - re-raised with the worker's cause
            exchange.abort()
            self.sc.cancelJobGroup(reruns.group)
            reruns.join(raise_errors=False)
            gathering.join()
            if isinstance(gathering.error, RoundTimeoutError):
                raise gathering.error from None
            raise worker_failure(error) from error
        gathering.join()
        stats += reruns.join()
        if gathering.error is not None:
            raise gathering.error
        train.solvers_built = True
        # One report per partition: the one that trained (an attempt that found its
        # result already held, or asked for its data, reports nothing).
        by_part = {s.index: s for s in stats if s.outputs is None}
        by_part.update({s.index: s for s in stats if s.outputs is not None})
        return gathering.total, [by_part[i] for i in sorted(by_part)]

    def _sync_by_spark(self, train, job, flat: np.ndarray):
        """Weights by Spark broadcast out and task results back, summed as they arrive."""
        shipped = self.sc.broadcast(flat)
        total, results = None, []
        try:
            # In partition order, one result at a time: the driver never holds all K.
            for stats, flat in collect_stream(
                    train.mapPartitionsWithIndex(partial(job, weights_bc=shipped))):
                if total is None:
                    total = flat if flat.flags.writeable else flat.copy()
                else:
                    total += flat
                del flat
                results.append(stats)
        except Exception as error:  # noqa: BLE001 - re-raised with the worker's cause
            raise worker_failure(error) from error
        finally:
            shipped.unpersist()
        return total, results
