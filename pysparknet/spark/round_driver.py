"""A SparkNet round as the driver sees it (Moritz et al., ICLR 2016, Algorithm 1):
send the weights (after the outer optimizer's look-ahead), let the schedule run
the round on the workers, take the mean of what comes back, step the outer
optimizer, and write the round's record."""
from __future__ import annotations

import math
import time
import warnings
from typing import Optional

import numpy as np

from ..errors import TrainingDivergedError
from ..outer import OuterOptimizer
from ..weights import WeightCollection
from .stage import RoundPlan
from .tau import TauSchedule

FIRST_ROUND_TIMEOUT_S = 3600.0  # no round times known yet: solvers build, data caches
ROUND_TIMEOUT_FLOOR_S = 300.0
ROUND_TIMEOUT_FACTOR = 10.0  # x the slowest of the last rounds


def training_loss(outputs: dict) -> float:
    """A worker's training loss: its output 'loss', or for nets with several (GoogLeNet's
    loss1/loss1, loss2/loss2, loss3/loss3) their sum, unweighted."""
    if "loss" in outputs:
        return outputs["loss"]
    losses = [value for name, value in outputs.items() if "loss" in name]
    return float(sum(losses or outputs.values()))


def _wall(stats: list, tic: float) -> float:
    """The round's time: from tic to now; a ring round's, from its header to the last
    worker's stats (its chunks to the driver travel while the next round trains)."""
    if stats and all(s.began and s.reported for s in stats):
        return max(s.reported for s in stats) - min(s.began for s in stats)
    return time.perf_counter() - tic


class RoundDriver:
    """Runs rounds on a schedule (schedule_segments.py or schedule_jobs.py)."""

    def __init__(self, schedule, tau: TauSchedule, batch_size: int, outer: OuterOptimizer,
                 round_timeout: Optional[float], stragglers: bool):
        """stragglers: rounds may close early or short, so records say who did what."""
        self.schedule, self.tau, self.batch_size = schedule, tau, batch_size
        self.outer, self.round_timeout, self.stragglers = outer, round_timeout, stragglers
        self.warned_skips = False
        # solver_state='average': the solvers' history, averaged like the weights
        self.averaged_history: Optional[np.ndarray] = None

    def run(self, r: int, rounds: int, run, weights: WeightCollection, log):
        """Round r (0-based) of `rounds`: (the driver's new weights, the round's record).
        run: the fit's FitRun; log: its RoundLog (history, clock, checkpoint rounds)."""
        tau = self.tau(r)
        tic = time.perf_counter()
        sent = self.outer.to_workers(weights.flat)
        shipped = sent if self.averaged_history is None else \
            np.concatenate([sent, self.averaged_history])
        plan = RoundPlan(r, rounds, tau, self.tau.iterations_before(r),
                         self.round_deadline(log.history), log.checkpoint_every,
                         self.tau(r + 1) if r + 1 < rounds else None)
        total, divisor, stats = self.schedule.round(plan, run, shipped)
        losses = [training_loss(s.outputs) for s in stats if not s.dropped]
        if not all(math.isfinite(loss) for loss in losses):
            raise TrainingDivergedError(f"round {r + 1}: a worker's loss is {losses}; the "
                                        f"weights of round {r} are kept")
        total /= np.float32(divisor)
        if self.averaged_history is not None:
            self.averaged_history = total[sent.size:]
        record = self._record(r, tau, losses, stats, _wall(stats, tic), log.started)
        if run.train.stream is not None:  # streamed sources meet bad records as they train
            self._note_skips(r, record, sum(s.skipped for s in stats))
        stepped = self.outer.step(weights.flat, sent, total[:sent.size])
        return WeightCollection(weights.layout, stepped), record

    def close(self) -> None:
        """After a fit's last round (or its end by `until` or an error): end the open
        stage, if any; the workers keep their solvers."""
        self.schedule.close()

    def _record(self, r: int, tau: int, losses: list, stats: list, wall: float,
                started: float) -> dict:
        compute = max(s.compute_s for s in stats)
        trained = sum(s.iterations for s in stats if not s.dropped)
        record = {"round": r + 1, "iterations": self.tau.iterations_before(r) + tau,
                  "tau": tau, "loss": float(np.mean(losses)),
                  "images_per_s": trained * self.batch_size / wall,
                  "compute_s": compute, "sync_s": max(wall - compute, 0.0), "round_s": wall,
                  "rebuilt_solvers": sum(s.rebuilt for s in stats),
                  "elapsed_s": time.perf_counter() - started}
        if self.stragglers:  # who did how much, and whose result the round went without
            record["worker_iterations"] = [s.iterations for s in stats]
            record["dropped"] = [s.index for s in stats if s.dropped]
        return record

    def _note_skips(self, r: int, record: dict, skipped: int) -> None:
        record["skipped_records"] = skipped
        if skipped and not self.warned_skips:
            warnings.warn(f"round {r + 1}: the workers skipped {skipped} bad record(s) so "
                          "far (on_bad_record='skip')", stacklevel=4)
            self.warned_skips = True

    def round_deadline(self, history: list) -> float:
        """How long a round's results may take: the user's, or from recent rounds."""
        if self.round_timeout is not None:
            return float(self.round_timeout)
        recent = [h["round_s"] for h in history[-5:] if "round_s" in h]
        if not recent:
            return FIRST_ROUND_TIMEOUT_S
        return max(ROUND_TIMEOUT_FLOOR_S, ROUND_TIMEOUT_FACTOR * max(recent))
